package view_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/subscriptions"
	"calculator/view"
)

// GET /values/{id}?after=<command_id> answers once the view has applied that
// command's outcome: the view asks the real subscriptions Hub, which learns
// each outcome from the view's listener.
func TestAfterWaitsForTheCommandsOutcome(t *testing.T) {
	log := &scriptedLog{batches: make(chan eventlog.Batch)}
	var v *view.View
	hub := subscriptions.New(subscriptions.Config{
		Log: log, CommandsTopic: "commands", EventsTopic: "events",
		Value: func(id uuid.UUID) (domain.Value, bool) { return v.Get(id) },
		ValueAt: func(ctx context.Context, id uuid.UUID, version int64) (domain.Decimal, error) {
			return v.ValueAt(ctx, id, version)
		},
		ViewReady: func() bool { return v.Ready() },
		Logger:    zerolog.Nop(), Options: subscriptions.Options{Capacity: 1024},
	})
	defer hub.Close()
	v = view.New(log, "events", zerolog.Nop(), hub.Apply)
	v.SetOutcomes(hub)
	srv := serve(t, v)

	id := uuid.New()
	created := domain.Event{ID: uuid.New(), ParentID: uuid.New(), Action: domain.ValueCreated, ValueID: id, Value: domain.DecimalFromInt(2), Timestamp: time.Now()}
	updated := domain.Event{ID: uuid.New(), ParentID: uuid.New(), Action: domain.ValueUpdated, ValueID: id, Operation: domain.Add, Value: domain.DecimalFromInt(2), Result: domain.DecimalFromInt(4), Timestamp: time.Now()}
	log.batches <- eventlog.Batch{Records: []eventlog.Record{record(0, created)}, CaughtUp: true}
	log.batches <- eventlog.Batch{} // Follow has handed over the previous batch once this one is taken
	url := srv.URL + "/values/" + id.String()

	// An outcome applied already: at once.
	if resp, body := get(t, url+"?after="+created.ParentID.String()); resp.StatusCode != http.StatusOK || body["version"] != 1.0 {
		t.Fatalf("after an applied command: %d %v, want 200 version 1", resp.StatusCode, body)
	}

	// An outcome still to come: the answer waits for it, so it shows the
	// update (version 2), not the value as it was when the request came.
	type answer struct {
		status int
		body   map[string]any
	}
	answered := make(chan answer, 1)
	go func() {
		resp, body := get(t, url+"?after="+updated.ParentID.String()+"&wait=10s")
		answered <- answer{resp.StatusCode, body}
	}()
	log.batches <- eventlog.Batch{Records: []eventlog.Record{record(1, updated)}}
	select {
	case a := <-answered:
		if a.status != http.StatusOK || a.body["value"] != 4.0 || a.body["version"] != 2.0 {
			t.Fatalf("after the update's command: %d %v, want 200 value 4 version 2", a.status, a.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer 10s after the outcome was applied")
	}

	// An outcome that never comes: 504 once the wait runs out.
	began := time.Now()
	resp, body := get(t, url+"?after="+uuid.NewString()+"&wait=200ms")
	if resp.StatusCode != http.StatusGatewayTimeout || body["type"] != "urn:calculator:problem:not-yet-applied" {
		t.Fatalf("after an unknown command: %d %v, want 504 not-yet-applied", resp.StatusCode, body)
	}
	if took := time.Since(began); took < 200*time.Millisecond {
		t.Fatalf("the 504 came after %s, before the 200ms wait ran out", took)
	}

	for _, bad := range []struct{ query, problem string }{
		{"?after=42", "urn:calculator:problem:invalid-id"},
		{"?after=" + updated.ParentID.String() + "&wait=forever", "urn:calculator:problem:invalid-wait"},
		{"?after=" + updated.ParentID.String() + "&wait=31s", "urn:calculator:problem:invalid-wait"},
	} {
		if resp, body := get(t, url+bad.query); resp.StatusCode != http.StatusBadRequest || body["type"] != bad.problem {
			t.Errorf("GET %s: %d %v, want 400 %s", bad.query, resp.StatusCode, body, bad.problem)
		}
	}
}
