package subscriptions

import (
	"context"
	"errors"
	"maps"
	"net/http"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/httpapi"
)

// streamEvents serves GET /subscriptions/events: every event from a
// position on, then live. The start is the Last-Event-ID header if there is
// one (resume exactly after that message), else ?from= (start at that
// position, inclusive), else the present (live only).
//
// Old events are read from the log by the stream's own Follow, at the
// client's pace: a slow reader of old events costs a file handle and its
// goroutine, and slows nobody else. At most MaxCatchUps streams read the log
// at once. Once the Follow has caught up, the stream registers with the Hub
// and reads the log a little further, until it has passed every event the
// Hub had delivered when it registered; from then on it takes live events
// from its queue, skipping those it has sent already. So the switch from log
// to live neither drops nor repeats an event.
func (h *Hub) streamEvents(w http.ResponseWriter, r *http.Request) {
	if !h.awaitReady(w, r) {
		return
	}
	var cursor eventlog.Offsets
	var err error
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		cursor, err = cursorAfter(last)
	} else if from := r.URL.Query().Get("from"); from != "" {
		cursor, err = cursorFrom(from)
	}
	if err != nil {
		httpapi.Error(w, httpapi.InvalidPosition, err.Error())
		return
	}
	h.serve(w, r, func(ctx context.Context, s *stream) error {
		var q *queue
		if cursor == nil {
			q, cursor = h.subscribeEvents()
		} else if q, err = h.catchUp(ctx, s, cursor); err != nil {
			return err
		}
		defer h.unsubscribeEvents(q)
		return h.pumpQueue(ctx, s, q, func(b *liveBatch) error {
			frames := b.encoded()
			for i := range b.items {
				rec := &b.items[i].Record
				if rec.Offset < cursor[rec.Partition] {
					continue // sent during the catch-up
				}
				cursor[rec.Partition] = rec.Offset + 1
				if err := s.frame(formatID(cursor), frames[i]); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// subscribeEvents registers a queue for live events and returns it with the
// position up to which the Hub has delivered events.
func (h *Hub) subscribeEvents() (*queue, eventlog.Offsets) {
	q := newQueue(h.opt.Buffer)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.eventSubs[q] = struct{}{}
	return q, maps.Clone(h.eventsNext)
}

func (h *Hub) unsubscribeEvents(q *queue) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.eventSubs, q)
}

var errHandedOver = errors.New("handed over to the live queue")

// catchUp sends the events from cursor on, read from the log, and registers
// a live queue; it returns once cursor has passed everything the queue
// will not hold. cursor is updated as events are sent.
func (h *Hub) catchUp(ctx context.Context, s *stream, cursor eventlog.Offsets) (*queue, error) {
	select {
	case h.catchUps <- struct{}{}:
		defer func() { <-h.catchUps }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var q *queue
	var target eventlog.Offsets
	var frame []byte
	err := h.cfg.Log.Follow(ctx, h.cfg.EventsTopic, maps.Clone(cursor), func(b eventlog.Batch) error {
		for _, rec := range b.Records {
			if rec.Offset < cursor[rec.Partition] {
				continue
			}
			cursor[rec.Partition] = rec.Offset + 1
			e, err := domain.DecodeEvent(rec.Value)
			if err != nil {
				continue // the view skips it too
			}
			frame = eventFrame(frame[:0], &e)
			if err := s.frame(formatID(cursor), frame); err != nil {
				return err
			}
		}
		if err := s.flush(); err != nil {
			return err
		}
		if q == nil && b.CaughtUp {
			q, target = h.subscribeEvents()
		}
		if q != nil && covers(cursor, target) {
			return errHandedOver
		}
		return nil
	})
	if errors.Is(err, errHandedOver) {
		return q, nil
	}
	if q != nil {
		h.unsubscribeEvents(q)
	}
	return nil, err
}
