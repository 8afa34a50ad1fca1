package view_test

import (
	"context"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"calculator/decided"
	"calculator/internal/await"
	"calculator/internal/loggen"
	"calculator/snapshot"
	"calculator/view"
)

// A view that takes snapshots while it folds a file log (under -race: the
// encoding runs on its goroutine while queries read), restored from its last
// one into a new view that reads on from there, answers every listing page,
// value and history as a view that replays the log from offset 0, also for
// events appended after the snapshot.
func TestSnapshotRestoreEqualsFullReplay(t *testing.T) {
	log := loggen.FileLog(t, t.TempDir(), loggen.Spec{EventsTopic: "events", Values: 300, Updates: 3000, Seed: 3})
	var mu sync.Mutex
	var taken [][]byte
	v := view.New(log, "events", zerolog.Nop(), nil)
	var busy atomic.Bool // one snapshot at a time, as the app takes them
	v.WithSnapshots(view.Snapshots{Every: 500, Take: func(freeze func() func(*snapshot.Encoder)) bool {
		if !busy.CompareAndSwap(false, true) {
			return false
		}
		encode := freeze()
		go func() { // encodes while the view goes on, as the app's writer does; ends once it has
			var e snapshot.Encoder
			encode(&e)
			mu.Lock()
			taken = append(taken, e.Bytes())
			mu.Unlock()
			busy.Store(false)
		}()
		return true
	}})
	srv := serve(t, v)
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
	await.Until(t, 10*time.Second, "a second snapshot", func() bool { return snapshots() >= 2 })

	mu.Lock()
	last := taken[len(taken)-1]
	mu.Unlock()
	d := snapshot.NewDecoder(last)
	fold, state, err := snapshot.DecodeFold(d.Section(), decided.Window{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	restored := view.New(log, "events", zerolog.Nop(), nil)
	part, err := view.DecodeSnapshotPart(d.Section())
	if err != nil {
		t.Fatal(err)
	}
	install, err := restored.Restore(fold, state, part)
	if err != nil || d.Done() != nil {
		t.Fatalf("Restore: %v, %v", err, d.Done())
	}
	install()
	// And more after the snapshot, before and while the restored view runs.
	more.Values, more.Updates, more.Seed = 20, 300, 5
	if err := loggen.Write(context.Background(), log, more, nil); err != nil {
		t.Fatal(err)
	}
	full := view.New(log, "events", zerolog.Nop(), nil)
	restoredURL, fullURL := serve(t, restored).URL, serve(t, full).URL
	end, err := log.End(context.Background(), "events")
	if err != nil {
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
	if _, got := get(t, restoredURL+"/values?limit=1000"); !reflect.DeepEqual(got, page) || len(values) != 370 {
		t.Fatalf("listing: restored %d values, full replay %d (want 370); they differ", len(got["values"].([]any)), len(values))
	}
	for i, v := range values {
		id := v.(map[string]any)["value_id"].(string)
		paths := []string{"/values/" + id}
		if i%10 == 0 {
			paths = append(paths, "/values/"+id+"/history?include=rejected&limit=1000", "/values/"+id+"?version=1")
		}
		for _, path := range paths {
			r1, got := get(t, restoredURL+path)
			r2, want := get(t, fullURL+path)
			if r1.StatusCode != http.StatusOK || r1.StatusCode != r2.StatusCode || !reflect.DeepEqual(got, want) {
				t.Fatalf("GET %s: restored %d %v\nfull replay %d %v", path, r1.StatusCode, got, r2.StatusCode, want)
			}
		}
	}
}
