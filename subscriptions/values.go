package subscriptions

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"calculator/domain"
	"calculator/httpapi"
)

// valueMessage is the data of the values stream's messages.
type valueMessage struct {
	ValueID uuid.UUID `json:"value_id"`
	Value   float64   `json:"value"`
	Version int64     `json:"version"`
}

// streamValue serves GET /subscriptions/values/{id}: the current value, then
// each change, as "value" messages.
//
// It is a stream of states, not of events: on every (re)connection it starts
// with the value as it is now, so a client that was away gets the latest
// value (the changes it missed are in /subscriptions/events). The first
// message's id is the events-log position the stream had reached when the
// value was read; each change has its event's position.
func (h *Hub) streamValue(w http.ResponseWriter, r *http.Request) {
	id, ok := httpapi.ParseID(w, chi.URLParam(r, "id"), "value id")
	if !ok || h.unavailable(w) {
		return
	}
	q := newQueue(h.opt.Buffer)
	h.mu.Lock()
	h.valueSubs[id] = append(h.valueSubs[id], q)
	cursor := maps.Clone(h.eventsNext)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.removeValueSubscriber(id, q)
		h.mu.Unlock()
	}()
	// Read the value after registering: a change from now on is in the
	// queue. The view may already show changes the queue will also get;
	// their versions tell them apart.
	current, ok := h.cfg.Value(id)
	if !ok {
		httpapi.Error(w, http.StatusNotFound, "value-not-found", fmt.Sprintf("value %s does not exist", id))
		return
	}
	ctx, done := h.streamContext(r)
	defer done()
	s, err := h.startStream(w, r)
	if err != nil {
		return
	}
	defer s.end()
	h.streamEnded(r, h.sendValue(ctx, s, q, id, current, formatID(cursor)))
}

func (h *Hub) sendValue(ctx context.Context, s *stream, q *queue, id uuid.UUID, current domain.Value, firstID string) error {
	if err := s.message(firstID, "value", mustJSON(valueMessage{id, current.Value, current.Version})); err != nil {
		return err
	}
	if err := s.flush(); err != nil {
		return err
	}
	version := current.Version
	heartbeat := time.NewTicker(h.opt.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-heartbeat.C:
			s.comment("keep-alive")
		case <-q.wake:
			batches, overflowed := q.take()
			if overflowed {
				return errFellBehind
			}
			for _, b := range batches {
				for _, a := range b.items {
					if a.Value.Version <= version {
						continue // already in the first message
					}
					version = a.Value.Version
					err := s.message(a.Record.Position(), "value", mustJSON(valueMessage{id, a.Value.Value, a.Value.Version}))
					if err != nil {
						return err
					}
				}
			}
		}
		if err := s.flush(); err != nil {
			return err
		}
	}
}
