package app

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// drainer lets the HTTP server stop without cutting off a request that has
// reached it. http.Server.Shutdown alone loses two kinds:
//
//   - it closes every idle keep-alive connection at once, and a request that
//     a client has just sent on one is then reset;
//   - a response written a moment before it began said "keep-alive", so its
//     client sends the next request on a connection that Shutdown closes
//     after that response, unread.
//
// So the app stops in this order (Run): the listener closes (no new
// connections); drain starts, and from then on every response says
// "Connection: close", so clients stop sending on their connections; the
// SSE streams and ?wait requests end; drain waits until no connection has a
// request in progress and every one left has been idle for the grace period
// (counted from the drain's start at the earliest), by when a request that
// was on its way has arrived and been answered; then Shutdown closes what
// is left. A client that stays silent through the grace and sends exactly as
// its connection closes can still lose that request: HTTP/1.1 has no way to
// tell it first, as with any idle timeout.
type drainer struct {
	grace    time.Duration
	draining atomic.Bool
	changed  chan struct{} // a connection changed state during the drain

	mu      sync.Mutex
	conns   map[net.Conn]connState
	started time.Time // when the drain began
}

// connState is where a connection is and since when.
type connState struct {
	state http.ConnState
	since time.Time
}

func newDrainer(grace time.Duration) *drainer {
	return &drainer{grace: grace, changed: make(chan struct{}, 1), conns: map[net.Conn]connState{}}
}

// track is the http.Server's ConnState hook.
func (d *drainer) track(c net.Conn, state http.ConnState) {
	d.mu.Lock()
	if state == http.StateClosed || state == http.StateHijacked {
		delete(d.conns, c)
	} else {
		d.conns[c] = connState{state: state, since: time.Now()}
	}
	d.mu.Unlock()
	if d.draining.Load() {
		select {
		case d.changed <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// closeWhenDraining answers with "Connection: close" once the drain began.
func (d *drainer) closeWhenDraining(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// drain begins the drain and returns once the connections are quiet (see
// drainer), or when ctx is done.
func (d *drainer) drain(ctx context.Context) {
	d.mu.Lock()
	d.started = time.Now()
	d.mu.Unlock()
	d.draining.Store(true)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		timer.Stop()
		wait, quiet := d.quiet(time.Now())
		if quiet {
			return
		}
		var timeout <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			timeout = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-d.changed:
		case <-timeout:
		}
	}
}

// quiet says whether no connection has a request in progress and each has
// been idle for the grace period since the drain began; if not, how long
// until that would be (0: not before a request ends).
func (d *drainer) quiet(now time.Time) (wait time.Duration, quiet bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	last := d.started
	for _, c := range d.conns {
		if c.state == http.StateActive {
			return 0, false
		}
		if c.since.After(last) {
			last = c.since
		}
	}
	if len(d.conns) == 0 {
		return 0, true
	}
	wait = last.Add(d.grace).Sub(now)
	return wait, wait <= 0
}
