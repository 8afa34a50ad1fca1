package view_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/outcome"
	"calculator/view"
)

// scriptedLog delivers the batches the test sends it, one at a time.
type scriptedLog struct {
	batches chan eventlog.Batch
}

func (l *scriptedLog) End(context.Context, string) (eventlog.Offsets, error) {
	return eventlog.Offsets{0: 2}, nil
}

func (l *scriptedLog) Follow(ctx context.Context, _ string, _ eventlog.Offsets, fn func(eventlog.Batch) error) error {
	for {
		select {
		case b := <-l.batches:
			if err := fn(b); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (l *scriptedLog) Read(context.Context, string, int32, []int64) ([]eventlog.Record, error) {
	return nil, errors.New("the scripted log keeps no records")
}

func record(offset int64, e domain.Event) eventlog.Record {
	return eventlog.Record{Offset: offset, Key: []byte(e.ValueID.String()), Value: e.AppendJSON(nil)}
}

// serve runs v and serves its routes until the test ends: its cleanup
// closes the server, cancels Run, waits for it and closes v.
func serve(t *testing.T, v *view.View) *httptest.Server {
	t.Helper()
	srv, stop := serveUntil(t, v)
	t.Cleanup(stop)
	return srv
}

// serveUntil runs v and serves its routes until stop, which closes the
// server, cancels Run, waits for it and closes v (its history file); stop
// may be called more than once.
func serveUntil(t *testing.T, v *view.View) (srv *httptest.Server, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	r := chi.NewRouter()
	v.Routes(r)
	srv = httptest.NewServer(r)
	var once sync.Once
	return srv, func() {
		once.Do(func() {
			srv.Close()
			cancel()
			<-done
			if err := v.Close(); err != nil {
				t.Errorf("close the view: %v", err)
			}
		})
	}
}

func get(t *testing.T, url string) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp, body
}

// Until the view has replayed the log as it was at startup, queries get 503
// with Retry-After rather than the partial state.
func TestQueriesWaitForTheReplay(t *testing.T) {
	log := &scriptedLog{batches: make(chan eventlog.Batch)}
	var applied []outcome.Applied
	v := view.New(log, "events", zerolog.Nop(), func(a []outcome.Applied) { applied = append(applied, a...) })
	srv := serve(t, v)

	id := uuid.New()
	created := domain.Event{ID: uuid.New(), ParentID: uuid.New(), Action: domain.ValueCreated, ValueID: id, Value: domain.DecimalFromInt(2), Timestamp: time.Now()}
	updated := domain.Event{ID: uuid.New(), ParentID: uuid.New(), Action: domain.ValueUpdated, ValueID: id, Operation: domain.Add, Value: domain.DecimalFromInt(2), Result: domain.DecimalFromInt(4), Timestamp: time.Now()}
	log.batches <- eventlog.Batch{Records: []eventlog.Record{record(0, created)}, Next: eventlog.Offsets{0: 1}}
	log.batches <- eventlog.Batch{} // Follow has handed over the previous batch once this one is taken

	resp, body := get(t, srv.URL+"/values/"+id.String())
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("during replay: %d %v, want 503 with Retry-After", resp.StatusCode, body)
	}
	if got, want := v.Progress(), (view.Progress{EventsRead: 1, Position: 1, EndAtStart: 2}); got != want {
		t.Fatalf("Progress = %+v, want %+v", got, want)
	}

	// A transaction marker follows the last event: the position is past it.
	log.batches <- eventlog.Batch{Records: []eventlog.Record{record(1, updated)}, Next: eventlog.Offsets{0: 3}, CaughtUp: true}
	log.batches <- eventlog.Batch{} // Follow has handed over the previous batch once this one is taken
	resp, body = get(t, srv.URL+"/values/"+id.String())
	if resp.StatusCode != http.StatusOK || body["value"] != 4.0 || body["version"] != 2.0 {
		t.Fatalf("after replay: %d %v, want 200 value 4 version 2", resp.StatusCode, body)
	}
	if got, want := v.Progress(), (view.Progress{Ready: true, EventsRead: 2, Position: 3, EndAtStart: 2}); got != want {
		t.Fatalf("Progress = %+v, want %+v", got, want)
	}
	if len(applied) != 2 || !applied[0].Replay || applied[1].Value.Value != domain.DecimalFromInt(4) {
		t.Fatalf("listener saw %+v", applied)
	}
}
