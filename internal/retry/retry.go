// Package retry is the calculator's one retry policy: exponential backoff
// with jitter and a cap, for every loop that waits for something outside the
// process (a broker, a topic's metadata, a log that failed under a part).
//
// The policy is written once, here; callers pick only where it starts and
// where it stops growing. It is built on cenkalti/backoff/v5.
package retry

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Policy is where a backoff starts and the most it grows to. Each wait is
// the current interval ± 50% (jitter), and the interval doubles after each
// failure until it reaches Max.
type Policy struct {
	Initial time.Duration
	Max     time.Duration
}

// Default suits waiting for the log or a broker: 100 ms at first, at most 10 s.
var Default = Policy{Initial: 100 * time.Millisecond, Max: 10 * time.Second}

// Jitter is the randomization factor of every backoff: a wait is the
// interval times a random factor in [1-Jitter, 1+Jitter].
const Jitter = 0.5

// Backoff is one loop's sequence of waits under a Policy. It is not safe for
// concurrent use; each loop owns its own.
type Backoff struct {
	b *backoff.ExponentialBackOff
}

// New returns the sequence of waits of p, starting at p.Initial.
func (p Policy) New() *Backoff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = p.Initial
	b.MaxInterval = p.Max
	b.Multiplier = 2
	b.RandomizationFactor = Jitter
	b.Reset()
	return &Backoff{b: b}
}

// Next returns how long to wait before the next attempt.
func (b *Backoff) Next() time.Duration { return b.b.NextBackOff() }

// Reset starts the sequence again from the policy's Initial, for a loop
// whose last attempt went well for a while.
func (b *Backoff) Reset() { b.b.Reset() }

// Wait sleeps for the next interval or until ctx is done, and says which:
// it returns ctx.Err() when ctx ended first, nil otherwise.
func (b *Backoff) Wait(ctx context.Context) error {
	return Sleep(ctx, b.Next())
}

// Sleep waits for d or until ctx is done; it returns ctx.Err() when ctx ended
// first.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
