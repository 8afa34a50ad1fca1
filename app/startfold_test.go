package app

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/snapshot"
)

// The processor takes a copy of the first fold offered, once; a later offer
// changes nothing, and the copy does not change with the view's.
func TestStartFoldIsTakenOnce(t *testing.T) {
	s := startFold{ready: make(chan struct{})}
	id := uuid.New()
	state, err := domain.StateOf(func(yield func(uuid.UUID, domain.Value) bool) { yield(id, domain.Value{Version: 1}) })
	if err != nil {
		t.Fatal(err)
	}
	fold := &snapshot.Fold{Position: eventlog.Offsets{0: 7}}
	s.offer(fold, state)
	s.offer(&snapshot.Fold{Position: eventlog.Offsets{0: 9}}, domain.NewState())
	fold.Position[0] = 8
	if _, _, err := state.Apply(domain.Event{Action: domain.ValueUpdated, ValueID: id}); err != nil {
		t.Fatal(err)
	}
	gotFold, gotState, ok := s.take(context.Background())
	if !ok || gotFold.Position[0] != 7 || gotState.Len() != 1 {
		t.Fatalf("take = %v, %v, %v; want the first fold as it was offered", gotFold, gotState, ok)
	}
	if v, _ := gotState.Get(id); v.Version != 1 {
		t.Fatalf("the copy changed with the view's state: version %d", v.Version)
	}
	if _, _, ok := s.take(context.Background()); ok {
		t.Fatal("a second take got a fold")
	}
}

// Without an offer, take answers once restoreSnapshot is done, or its
// context is.
func TestStartFoldWithoutOffer(t *testing.T) {
	s := startFold{ready: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, ok := s.take(ctx); ok {
		t.Fatal("take got a fold that was never offered")
	}
	s.close()
	if _, _, ok := s.take(context.Background()); ok {
		t.Fatal("take got a fold after close without an offer")
	}
}
