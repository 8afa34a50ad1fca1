package subscriptions

import (
	"context"
	"fmt"
	"maps"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"calculator/domain"
	"calculator/httpapi"
)

// valueMessage is the data of the values stream's messages.
type valueMessage struct {
	ValueID uuid.UUID      `json:"value_id"`
	Value   domain.Decimal `json:"value"`
	Version int64          `json:"version"`
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
	if !ok || !h.awaitReady(w, r) {
		return
	}
	q := newQueue(h.opt.Buffer)
	h.mu.Lock()
	h.valueSubs[id] = append(h.valueSubs[id], q)
	cursor := maps.Clone(h.eventsNext)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		remove(h.valueSubs, id, q)
		h.mu.Unlock()
	}()
	// Read the value after registering: a change from now on is in the
	// queue. The view may already show changes the queue will also get;
	// their versions tell them apart.
	current, ok := h.cfg.Value(id)
	if !ok {
		httpapi.Error(w, httpapi.ValueNotFound, fmt.Sprintf("value %s does not exist", id))
		return
	}
	h.serve(w, r, func(ctx context.Context, s *stream) error {
		if err := s.message(formatID(cursor), "value", mustJSON(valueMessage{id, current.Value, current.Version})); err != nil {
			return err
		}
		version := current.Version
		return h.pumpQueue(ctx, s, q, func(b *liveBatch) error {
			for _, a := range b.items {
				if a.Value.Version <= version {
					continue // already in the first message
				}
				version = a.Value.Version
				if err := s.message(positionOf(&a.Record).id(), "value", mustJSON(valueMessage{id, a.Value.Value, a.Value.Version})); err != nil {
					return err
				}
			}
			return nil
		})
	})
}
