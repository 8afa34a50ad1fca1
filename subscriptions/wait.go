package subscriptions

import (
	"context"
	"errors"
	"sync"

	"github.com/google/uuid"

	"calculator/outcome"
)

// watcher is someone waiting for a command's status to change: a command
// stream, or a ?wait= (Await).
type watcher struct {
	wake chan struct{} // capacity 1
}

func (w *watcher) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// watch registers a watcher for the command. A change of its status from
// now on signals the watcher, so a status read after watch returns misses
// no change.
func (h *Hub) watch(id uuid.UUID) *watcher {
	w := &watcher{wake: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.watchers[id] = append(h.watchers[id], w)
	return w
}

func (h *Hub) unwatch(id uuid.UUID, w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	remove(h.watchers, id, w)
}

// wake signals the watchers of a command whose status may have changed.
// h.mu is held.
func (h *Hub) wake(id uuid.UUID) {
	for _, w := range h.watchers[id] {
		w.signal()
	}
}

// status returns what is known of a command (see statusTable.get).
func (h *Hub) status(id uuid.UUID) (outcome.CommandStatus, position, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.statuses.get(id)
}

// ErrClosed is returned by a wait when the Hub closes.
var ErrClosed = errors.New("subscriptions: closed")

// Await implements commander.Outcomes, for ?wait= on POST and PUT: it
// registers interest in the outcome of a command (call it before the
// command is appended, so that no outcome is missed) and returns wait, which
// blocks until the view has applied the command's outcome, ctx is done
// (ctx.Err()) or the Hub closes (ErrClosed), and stop, which must be called
// once the caller is done with wait.
//
// The status that wait returns is final, with the value the event left
// behind when that value exists.
func (h *Hub) Await(commandID uuid.UUID) (wait func(context.Context) (outcome.CommandStatus, error), stop func()) {
	w := h.watch(commandID)
	var once sync.Once
	stop = func() { once.Do(func() { h.unwatch(commandID, w) }) }
	wait = func(ctx context.Context) (outcome.CommandStatus, error) {
		for {
			if st, _, ok := h.status(commandID); ok && st.Status.Final() {
				return st, nil
			}
			select {
			case <-w.wake:
			case <-ctx.Done():
				return outcome.CommandStatus{}, ctx.Err()
			case <-h.closed:
				return outcome.CommandStatus{}, ErrClosed
			}
		}
	}
	return wait, stop
}
