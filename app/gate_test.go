package app

import (
	"context"
	"errors"
	"testing"
	"time"

	"calculator/eventlog"
)

// countingLog counts the appends that reach it.
type countingLog struct{ appends chan struct{} }

func (l countingLog) Append(context.Context, string, ...eventlog.Message) error {
	l.appends <- struct{}{}
	return nil
}

// The gate holds appends until the processor's check passes, refuses them
// at once when it failed, and gives up when the caller's context does.
func TestCommandsGate(t *testing.T) {
	passed := make(chan struct{})
	log := countingLog{appends: make(chan struct{}, 10)}
	g := newCommandsGate(log, passed)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := g.Append(ctx, "commands"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append before the check = %v, want it to wait for the check until its deadline", err)
	}
	if len(log.appends) != 0 {
		t.Fatal("an append reached the log before the check")
	}

	done := make(chan error, 1)
	go func() { done <- g.Append(context.Background(), "commands") }()
	select {
	case err := <-done:
		t.Fatalf("Append returned %v before the check passed", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(passed)
	if err := <-done; err != nil {
		t.Fatalf("Append once the check passed = %v", err)
	}
	if len(log.appends) != 1 {
		t.Fatalf("%d appends reached the log, want 1", len(log.appends))
	}

	lost := errors.New("commands lost")
	g.fail(lost)
	if err := g.Append(context.Background(), "commands"); !errors.Is(err, lost) {
		t.Fatalf("Append after a failed check = %v, want %v", err, lost)
	}
	if len(log.appends) != 1 {
		t.Fatal("an append reached the log after the check failed")
	}
}
