package retry

import (
	"context"
	"testing"
	"time"
)

func TestBackoffGrowsWithJitterUpToMax(t *testing.T) {
	p := Policy{Initial: 100 * time.Millisecond, Max: 800 * time.Millisecond}
	b := p.New()
	interval := p.Initial
	for i := range 10 {
		d := b.Next()
		lo := time.Duration(float64(interval) * (1 - Jitter))
		hi := time.Duration(float64(interval) * (1 + Jitter))
		if d < lo || d > hi {
			t.Fatalf("wait %d = %v, want within [%v, %v]", i, d, lo, hi)
		}
		interval = min(2*interval, p.Max)
	}
	b.Reset()
	if d := b.Next(); d > time.Duration(float64(p.Initial)*(1+Jitter)) {
		t.Fatalf("after Reset the wait is %v, want about %v", d, p.Initial)
	}
}

func TestSleepEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); err != context.Canceled {
		t.Fatalf("Sleep on a cancelled context = %v, want context.Canceled", err)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep(1ms) = %v, want nil", err)
	}
}
