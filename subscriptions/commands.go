package subscriptions

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"calculator/httpapi"
	"calculator/outcome"
)

// getCommandTimeout bounds how long GET /commands/{id} waits, for an id it
// does not know, until it has read the commands topic to its end.
const getCommandTimeout = 2 * time.Second

// getCommand serves GET /commands/{id}: the command's status, without the
// value.
func (h *Hub) getCommand(w http.ResponseWriter, r *http.Request) {
	id, ok := httpapi.ParseID(w, chi.URLParam(r, "id"), "command id")
	if !ok || h.unavailable(w) {
		return
	}
	st, _, ok := h.status(id, nil)
	if !ok {
		// The 202 for this command may have been sent a moment before Run
		// read it: read up to the end of the commands topic before
		// answering 404.
		ctx, cancel := context.WithTimeout(r.Context(), getCommandTimeout)
		h.waitForCommands(ctx)
		cancel()
		st, _, ok = h.status(id, nil)
	}
	if !ok {
		httpapi.Error(w, httpapi.CommandNotFound,
			fmt.Sprintf("command %s is unknown: it was never accepted, or it is older than the %d most recent commands whose status is kept", id, h.opt.Capacity))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, st.WithoutValue())
}

// streamCommand serves GET /subscriptions/commands/{id}: "accepted", then
// "succeeded" or "rejected", then "applied", then the end of the stream.
//
// The outcome is learnt from the view, so the outcome and "applied" are
// sent together. "accepted" has no id; the outcome and "applied" have the
// event's position. A client that reconnects with the id of the final
// messages (as EventSource does when the stream ends) gets 204 No Content,
// which tells EventSource to stop reconnecting. An unknown command is waited
// for up to CommandWait; then an "unknown" message ends the stream.
func (h *Hub) streamCommand(w http.ResponseWriter, r *http.Request) {
	id, ok := httpapi.ParseID(w, chi.URLParam(r, "id"), "command id")
	if !ok || !h.awaitReady(w, r) {
		return
	}
	watcher := h.watch(id)
	defer h.unwatch(id, watcher)
	lastID := r.Header.Get("Last-Event-ID")
	st, at, known := h.status(id, watcher)
	if known && st.Status.Final() {
		if lastID == at.id() {
			w.WriteHeader(http.StatusNoContent) // the client has seen it all
			return
		}
		// An outcome from before the watch: the value after it may need a
		// read, done before the stream starts so that a failure is a 503.
		if err := h.withValue(r.Context(), &st); err != nil {
			h.logger.Warn().Err(err).Msg("cannot read the value after a command's outcome")
			httpapi.Error(w, httpapi.HistoryUnavailable, fmt.Sprintf("the value after command %s could not be read from the events log: %v", id, err))
			return
		}
	}
	// CommandWait from now on, an unknown command gets "unknown".
	var expired atomic.Bool
	timer := time.AfterFunc(h.opt.CommandWait, func() { expired.Store(true); watcher.signal() })
	defer timer.Stop()
	sentAccepted := lastID != "" // a reconnection: "accepted" came before
	h.serve(w, r, func(ctx context.Context, s *stream) error {
		return h.pump(ctx, s, watcher.wake, func() (bool, error) {
			if !st.Status.Final() { // a final status does not change
				st, at, known = h.status(id, watcher)
			}
			if !known {
				if !expired.Load() {
					return true, nil
				}
				return false, s.message("", "unknown", mustJSON(map[string]any{
					"command_id": id,
					"detail":     fmt.Sprintf("no command with this id was accepted within %s", h.opt.CommandWait),
				}))
			}
			if !sentAccepted {
				accepted := outcome.CommandStatus{CommandID: st.CommandID, ValueID: st.ValueID, Status: outcome.Accepted}
				if err := s.message("", string(outcome.Accepted), mustJSON(accepted)); err != nil {
					return false, err
				}
				sentAccepted = true
			}
			if !st.Status.Final() {
				return true, nil
			}
			// The value after the outcome is in st already: read before the
			// stream for an outcome from before the watch, handed in by
			// Apply for one that came while watched.
			if err := h.withValue(ctx, &st); err != nil {
				return false, err
			}
			if err := s.message(at.id(), string(st.Status), mustJSON(st.WithoutValue())); err != nil {
				return false, err
			}
			return false, s.message(at.id(), "applied", mustJSON(st))
		})
	})
}
