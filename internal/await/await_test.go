package await

import (
	"sync/atomic"
	"testing"
	"time"
)

// Until returns once the condition holds, which another goroutine makes
// true.
func TestUntil(t *testing.T) {
	var done atomic.Bool
	time.AfterFunc(30*time.Millisecond, func() { done.Store(true) })
	began := time.Now()
	Until(t, 10*time.Second, "the flag is set", done.Load)
	if !done.Load() || time.Since(began) < 30*time.Millisecond {
		t.Fatalf("Until returned after %s with the flag %v", time.Since(began), done.Load())
	}
}
