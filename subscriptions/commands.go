package subscriptions

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/httpapi"
)

// CommandStatus is the JSON of GET /commands/{id}, and the data of the
// command stream's messages.
type CommandStatus struct {
	CommandID uuid.UUID     `json:"command_id"`
	ValueID   uuid.UUID     `json:"value_id"`
	Status    string        `json:"status"`
	EventID   *uuid.UUID    `json:"event_id,omitempty"`
	Reason    domain.Reason `json:"reason,omitempty"`
	Message   string        `json:"message,omitempty"`
	// Value and Version: the value after the event (the "applied" message
	// only, and only when the value exists).
	Value   *float64 `json:"value,omitempty"`
	Version int64    `json:"version,omitempty"`
}

func (s commandStatus) json(withValue bool) CommandStatus {
	out := CommandStatus{CommandID: s.CommandID, ValueID: s.ValueID, Status: s.State}
	if s.finished() {
		id := s.EventID
		out.EventID = &id
		out.Reason, out.Message = s.Reason, s.Message
		if withValue && s.Exists {
			v := s.Value.Value
			out.Value, out.Version = &v, s.Value.Version
		}
	}
	return out
}

// position is the SSE id of the outcome and applied messages: the position
// of the event in the events topic.
func (s commandStatus) position() string {
	return eventlog.Record{Partition: s.EventPartition, Offset: s.EventOffset}.Position()
}

// getCommandTimeout bounds how long GET /commands/{id} waits, for an id it
// does not know, until it has read the commands topic to its end.
const getCommandTimeout = 2 * time.Second

func (h *Hub) getCommand(w http.ResponseWriter, r *http.Request) {
	id, ok := httpapi.ParseID(w, chi.URLParam(r, "id"), "command id")
	if !ok || h.unavailable(w) {
		return
	}
	st, ok := h.status(id)
	if !ok {
		// The 202 for this command may have been sent a moment before Run
		// read it: read up to the end of the commands topic before
		// answering 404.
		ctx, cancel := context.WithTimeout(r.Context(), getCommandTimeout)
		h.waitForCommands(ctx)
		cancel()
		st, ok = h.status(id)
	}
	if !ok {
		httpapi.Error(w, http.StatusNotFound, "command-not-found",
			fmt.Sprintf("command %s is unknown: it was never accepted, or it is older than the %d most recent commands whose status is kept", id, h.opt.Capacity))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, st.json(false))
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
	if !ok || h.unavailable(w) {
		return
	}
	watcher, st, known := h.watch(id)
	defer h.unwatch(id, watcher)
	lastID := r.Header.Get("Last-Event-ID")
	if known && st.finished() && lastID == st.position() {
		w.WriteHeader(http.StatusNoContent) // the client has seen it all
		return
	}
	ctx, done := h.streamContext(r)
	defer done()
	s, err := h.startStream(w, r)
	if err != nil {
		return
	}
	defer s.end()
	h.streamEnded(r, h.sendCommand(ctx, s, watcher, id, st, known, lastID != ""))
}

func (h *Hub) sendCommand(ctx context.Context, s *stream, w *watcher, id uuid.UUID, st commandStatus, known, sentAccepted bool) error {
	heartbeat := time.NewTicker(h.opt.Heartbeat)
	defer heartbeat.Stop()
	unknown := time.NewTimer(h.opt.CommandWait)
	defer unknown.Stop()
	for {
		if known && !sentAccepted {
			accepted := st
			accepted.State = StatusAccepted
			if err := s.message("", StatusAccepted, mustJSON(accepted.json(false))); err != nil {
				return err
			}
			sentAccepted = true
		}
		if known && st.finished() {
			if err := s.message(st.position(), st.State, mustJSON(st.json(false))); err != nil {
				return err
			}
			if err := s.message(st.position(), "applied", mustJSON(st.json(true))); err != nil {
				return err
			}
			return s.flush()
		}
		if err := s.flush(); err != nil {
			return err
		}
		select {
		case <-w.wake:
			st, known = h.status(id)
		case <-heartbeat.C:
			s.comment("keep-alive")
		case <-unknown.C:
			if !known {
				s.message("", "unknown", mustJSON(map[string]any{
					"command_id": id,
					"detail":     fmt.Sprintf("no command with this id was accepted within %s", h.opt.CommandWait),
				}))
				return s.flush()
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only the package's own types, which always encode
	}
	return b
}
