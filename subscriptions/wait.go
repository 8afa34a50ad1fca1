package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"calculator/domain"
	"calculator/outcome"
)

// watcher is someone waiting for a command's status to change: a command
// stream, a ?wait= (Await) or a ?after= (AwaitApplied).
type watcher struct {
	wake chan struct{} // capacity 1
	// The value after the command's outcome, when it exists, as Apply had
	// it in hand when it recorded the outcome (h.mu guards them): the
	// status then needs no read (see withValue).
	value    domain.Value
	hasValue bool
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

// wake signals the watchers of a command whose status may have changed,
// handing them the value after its outcome if the change is that outcome
// and the value exists (value is nil otherwise). h.mu is held.
func (h *Hub) wake(id uuid.UUID, value *domain.Value) {
	for _, w := range h.watchers[id] {
		if value != nil {
			w.value, w.hasValue = *value, true
		}
		w.signal()
	}
}

// status returns what is known of a command (see statusTable.get), with the
// value after its outcome if w (the caller's watcher, or nil) was handed it.
func (h *Hub) status(id uuid.UUID, w *watcher) (outcome.CommandStatus, position, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, at, ok := h.statuses.get(id)
	if ok && st.Version != 0 && w != nil && w.hasValue && w.value.Version == st.Version {
		value := w.value.Value
		st.Value = &value
	}
	return st, at, ok
}

// withValue completes a final status with the value after its outcome, when
// that value exists and st does not have it yet. It is the view's current
// value when the value is still at the status's version, the common case;
// otherwise the view reads the value at that version back from the events
// log (Config.ValueAt), which may fail. It must not be called with h.mu
// held.
func (h *Hub) withValue(ctx context.Context, st *outcome.CommandStatus) error {
	if st.Version == 0 || st.Value != nil {
		return nil
	}
	if v, ok := h.cfg.Value(st.ValueID); ok && v.Version == st.Version {
		st.Value = &v.Value
		return nil
	}
	value, err := h.cfg.ValueAt(ctx, st.ValueID, st.Version)
	if err != nil {
		return fmt.Errorf("read value %s at version %d, after command %s: %w", st.ValueID, st.Version, st.CommandID, err)
	}
	st.Value = &value
	return nil
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
// behind when that value exists. That value comes with the outcome; only
// for an outcome applied before Await (a repeat of a stored command) may it
// need a read of the events log, whose failure wait returns (and logs).
func (h *Hub) Await(commandID uuid.UUID) (wait func(context.Context) (outcome.CommandStatus, error), stop func()) {
	final, stop := h.awaitFinal(commandID)
	wait = func(ctx context.Context) (outcome.CommandStatus, error) {
		st, err := final(ctx)
		if err != nil {
			return st, err
		}
		if err := h.withValue(ctx, &st); err != nil {
			h.logger.Warn().Err(err).Msg("cannot tell the value after a command's outcome to a ?wait=")
			return outcome.CommandStatus{}, err
		}
		return st, nil
	}
	return wait, stop
}

// AwaitApplied implements view.Outcomes, for ?after= on GET /values/{id}:
// Await for who needs only to know that the outcome is applied, and not the
// value after it. wait returns nil then.
func (h *Hub) AwaitApplied(commandID uuid.UUID) (wait func(context.Context) error, stop func()) {
	final, stop := h.awaitFinal(commandID)
	wait = func(ctx context.Context) error {
		_, err := final(ctx)
		return err
	}
	return wait, stop
}

// awaitFinal is Await without withValue: the final status has the value
// only if Apply handed it in.
func (h *Hub) awaitFinal(commandID uuid.UUID) (wait func(context.Context) (outcome.CommandStatus, error), stop func()) {
	w := h.watch(commandID)
	var once sync.Once
	stop = func() { once.Do(func() { h.unwatch(commandID, w) }) }
	wait = func(ctx context.Context) (outcome.CommandStatus, error) {
		for {
			if st, _, ok := h.status(commandID, w); ok && st.Status.Final() {
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
