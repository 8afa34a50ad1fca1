package processor

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/decided"
	"calculator/internal/loggen"
	"calculator/internal/memtest"
	"calculator/view"
)

// TestStateMemory reports the heap that the processor's Run and the view
// hold for 1,000,000 values (1,000,000 CreateValue commands and their
// events in a file log): what a restart rebuilds, per value. It measures and
// reports; it fails only if the decided ids' share is above 64 bytes.
func TestStateMemory(t *testing.T) {
	if testing.Short() || raceDetector {
		t.Skip("replays a million values and measures the heap: not with -short or -race")
	}
	const n = 1_000_000
	l := loggen.FileLog(t, t.TempDir(), loggen.Spec{CommandsTopic: "commands", EventsTopic: "events", Values: n})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waitReady := func(what string, ready func() bool) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); !ready(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s not ready after 2 minutes", what)
			}
		}
	}

	base := memtest.HeapInUse()
	p := New(l, "commands", "events", zerolog.Nop())
	procDone := make(chan error, 1)
	go func() { procDone <- p.Run(ctx) }()
	waitReady("the processor", p.Ready)
	withProcessor := memtest.HeapInUse()

	v := view.New(l, "events", zerolog.Nop(), nil)
	viewDone := make(chan error, 1)
	go func() { viewDone <- v.Run(ctx) }()
	waitReady("the view", v.Ready)
	withView := memtest.HeapInUse()

	// The decided ids alone, as the Run holds them.
	d, rng := decided.New(decided.Window{}), rand.New(rand.NewPCG(9, 10))
	start := time.Now()
	for i := range n {
		var id uuid.UUID
		for k := range id {
			id[k] = byte(rng.Uint32())
		}
		d.Add(id, start.Add(time.Duration(i)*time.Microsecond))
	}
	withDecided := memtest.HeapInUse()
	runtime.KeepAlive(d)

	cancel()
	for _, done := range []chan error{procDone, viewDone} {
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
	}
	perValue := func(from, to uint64) float64 { return float64(int64(to)-int64(from)) / n }
	processor, ids := perValue(base, withProcessor), perValue(withView, withDecided)
	t.Logf("1,000,000 values: processor %.1f B a value (of which %.1f the decided ids, %.1f the state), view %.1f B, together %.1f B",
		processor, ids, processor-ids, perValue(withProcessor, withView), perValue(base, withView))
	if ids > 64 {
		t.Errorf("the decided ids take %.1f bytes each, want at most 64", ids)
	}
}
