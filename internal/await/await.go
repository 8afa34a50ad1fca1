// Package await polls a condition with a deadline, for the tests that wait
// for something another goroutine or process does: one way to wait, with
// the bound each test chooses.
package await

import (
	"testing"
	"time"
)

// Until polls cond, first every millisecond and then less often (up to
// every 20 ms), until it holds; when within has passed first, it fails the
// test saying what it waited for.
func Until(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	end := time.Now().Add(within)
	for wait := time.Millisecond; !cond(); wait = min(2*wait, 20*time.Millisecond) {
		if time.Now().After(end) {
			tb.Fatalf("timed out after %s waiting until %s", within, what)
		}
		time.Sleep(wait)
	}
}
