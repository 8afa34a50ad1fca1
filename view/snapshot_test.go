package view_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/decided"
	"calculator/domain"
	"calculator/eventlog"
	"calculator/internal/await"
	"calculator/internal/loggen"
	"calculator/snapshot"
	"calculator/view"
)

// hotValues appends events of a few values with long histories: n updates
// and n/4 rejections, spread over hot (created first when create), so
// that their trails have several blocks in the history file.
func hotValues(t *testing.T, log eventlog.Log, s *script, hot []uuid.UUID, create bool, n int) {
	t.Helper()
	var msgs []eventlog.Message
	add := func(e domain.Event) {
		msgs = append(msgs, eventlog.Message{Key: []byte(e.ValueID.String()), Value: e.AppendJSON(nil)})
	}
	if create {
		for _, id := range hot {
			add(s.created(id, 1))
		}
	}
	for i := range n {
		id := hot[i%len(hot)]
		add(s.updated(id, domain.Add, 0, 1))
		if i%4 == 0 {
			add(s.rejected(id, domain.Overflow))
		}
	}
	if err := log.Append(context.Background(), "events", msgs...); err != nil {
		t.Fatal(err)
	}
}

// A view that takes snapshots while it folds a file log (under -race: the
// encoding runs on its goroutine while queries read), stopped, then
// restored from a snapshot into a new view on the same history file that
// reads on from there, answers every listing page, value and history as a
// view that replays the log from offset 0 with its index in memory, also
// for events appended after the snapshot: before the restart (their
// blocks, past the snapshot's end of the file, are passed over) and after
// it. A few values have histories of several blocks, stored before the
// snapshot, between it and the restart, and after the restart.
func TestSnapshotRestoreEqualsFullReplay(t *testing.T) {
	dir := t.TempDir()
	log := loggen.FileLog(t, dir, loggen.Spec{EventsTopic: "events", Values: 300, Updates: 3000, Seed: 3})
	s := &script{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	hot := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	hotValues(t, log, s, hot, true, 3*300)

	var mu sync.Mutex
	var taken [][]byte
	v := view.New(log, "events", zerolog.Nop(), nil)
	history := filepath.Join(dir, "history.blocks")
	if err := v.WithHistoryFile(history); err != nil {
		t.Fatal(err)
	}
	var busy atomic.Bool // one snapshot at a time, as the app takes them
	var encoding sync.WaitGroup
	v.WithSnapshots(view.Snapshots{Every: 500, Take: func(freeze func() func(*snapshot.Encoder) error) bool {
		if !busy.CompareAndSwap(false, true) {
			return false
		}
		encode := freeze()
		encoding.Go(func() { // encodes while the view goes on, as the app's writer does; ends once it has
			var e snapshot.Encoder
			if err := encode(&e); err != nil {
				t.Errorf("encode a snapshot: %v", err)
			}
			mu.Lock()
			taken = append(taken, e.Bytes())
			mu.Unlock()
			busy.Store(false)
		})
		return true
	}})
	srv, stop := serveUntil(t, v)
	t.Cleanup(stop)
	snapshots := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(taken)
	}
	await.Until(t, 10*time.Second, "the first snapshot", func() bool { return snapshots() == 1 })
	// More events while the view runs and queries read it; the next
	// snapshot is taken live.
	more := loggen.Spec{EventsTopic: "events", Values: 50, Updates: 700, Batch: 50, Seed: 4}
	if err := loggen.Write(context.Background(), log, more, func(int) { get(t, srv.URL+"/values?limit=1000") }); err != nil {
		t.Fatal(err)
	}
	hotValues(t, log, s, hot, false, 3*150)
	await.Until(t, 10*time.Second, "a second snapshot", func() bool { return snapshots() >= 2 })
	mu.Lock()
	chosen := taken[len(taken)-1]
	mu.Unlock()
	// Blocks after the snapshot, before the restart: the restored view
	// does not refer to them.
	hotValues(t, log, s, hot, false, 3*200)
	end, err := log.End(context.Background(), "events")
	if err != nil {
		t.Fatal(err)
	}
	await.Until(t, 10*time.Second, "the view read the log", func() bool { return v.Progress().Position == end[0] })
	stop()
	encoding.Wait()

	d := snapshot.NewDecoder(chosen)
	fold, state, err := snapshot.DecodeFold(d.Section(), decided.Window{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	restored := view.New(log, "events", zerolog.Nop(), nil)
	if err := restored.WithHistoryFile(history); err != nil {
		t.Fatal(err)
	}
	part, err := view.DecodeSnapshotPart(d.Section())
	if err != nil {
		t.Fatal(err)
	}
	install, err := restored.Restore(fold, state, part)
	if err != nil || d.Done() != nil {
		t.Fatalf("Restore: %v, %v", err, d.Done())
	}
	install()
	// And more after the restart, before and while the restored view runs.
	more.Values, more.Updates, more.Seed = 20, 300, 5
	if err := loggen.Write(context.Background(), log, more, nil); err != nil {
		t.Fatal(err)
	}
	hotValues(t, log, s, hot, false, 3*200)
	full := view.New(log, "events", zerolog.Nop(), nil) // its blocks in memory
	restoredURL, fullURL := serve(t, restored).URL, serve(t, full).URL
	hotValues(t, log, s, hot, false, 3*130)
	if end, err = log.End(context.Background(), "events"); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*view.View{restored, full} {
		await.Until(t, 10*time.Second, "the views read the whole log", func() bool { return w.Ready() && w.Progress().Position == end[0] })
	}
	if got := restored.Progress().EventsRead; got >= end[0] {
		t.Fatalf("the restored view read %d events of %d: it did not start from the snapshot", got, end[0])
	}

	_, page := get(t, fullURL+"/values?limit=1000")
	values := page["values"].([]any)
	if _, got := get(t, restoredURL+"/values?limit=1000"); !reflect.DeepEqual(got, page) || len(values) != 373 {
		t.Fatalf("listing: restored %d values, full replay %d (want 373); they differ", len(got["values"].([]any)), len(values))
	}
	for i, v := range values {
		id := v.(map[string]any)["value_id"].(string)
		paths := []string{"/values/" + id}
		if i%10 == 0 {
			paths = append(paths, "/values/"+id+"/history?include=rejected&limit=1000", "/values/"+id+"?version=1")
		}
		sameAnswers(t, restoredURL, fullURL, paths...)
	}
	for _, id := range hot {
		_, value := get(t, fullURL+"/values/"+id.String())
		versions := int(value["version"].(float64))
		if versions < 5*markEvery {
			t.Fatalf("value %s has %d versions: want several blocks", id, versions)
		}
		var paths []string
		for _, limit := range []int{1000, 97} {
			for after := 0; after < versions; after += 7 * limit / 3 {
				paths = append(paths, fmt.Sprintf("/values/%s/history?include=rejected&limit=%d&after_version=%d", id, limit, after))
			}
		}
		for version := 1; version <= versions; version += markEvery {
			for _, at := range []int{version - 1, version, version + 1} {
				if at >= 1 && at <= versions {
					paths = append(paths, fmt.Sprintf("/values/%s?version=%d", id, at))
				}
			}
		}
		sameAnswers(t, restoredURL, fullURL, paths...)
	}
}

// markEvery is the length of the history index's blocks (view's own).
const markEvery = 128

// sameAnswers fails unless the two views answer each path with 200 and the
// same body.
func sameAnswers(t *testing.T, gotURL, wantURL string, paths ...string) {
	t.Helper()
	for _, path := range paths {
		r1, got := get(t, gotURL+path)
		r2, want := get(t, wantURL+path)
		if r1.StatusCode != http.StatusOK || r1.StatusCode != r2.StatusCode || !reflect.DeepEqual(got, want) {
			t.Fatalf("GET %s: %d %v\nwant %d %v", path, r1.StatusCode, got, r2.StatusCode, want)
		}
	}
}
