// Package view is the read model: an in-memory materialized view of the
// values, folded from the events topic, and the HTTP queries it answers.
//
// Run replays the events topic from offset 0 and then follows it. Until the
// replay has reached the end of the topic as it was at startup, Ready is
// false and queries answer 503 rather than stale state. The view applies
// events with domain's State.Apply, the same fold the processor uses, so a
// value it shows is always the fold of the events log.
package view

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/httpapi"
)

// Log is what the view needs of the log.
type Log interface {
	Follow(ctx context.Context, topic string, from eventlog.Offsets, fn func(eventlog.Batch) error) error
	End(ctx context.Context, topic string) (eventlog.Offsets, error)
}

// Applied describes one event the view has folded in, for listeners.
type Applied struct {
	Record eventlog.Record
	Event  domain.Event
	Value  domain.Value // the value after the event (unchanged by a rejection)
	Exists bool         // whether the value exists after the event
	Replay bool         // true while the view is replaying the log at startup
}

// View is the materialized view. Create it with New, call Run once; Get,
// Ready and Progress may be called from any goroutine.
type View struct {
	log    Log
	topic  string
	logger zerolog.Logger

	mu    sync.RWMutex
	state *domain.State

	listener func([]Applied) // called after each batch, outside the lock

	ready    atomic.Bool
	applied  atomic.Int64 // events read since start
	target   atomic.Int64 // the events topic's end at startup
	rejected atomic.Int64
}

// New returns a view of the events topic. listener, if not nil, is called
// by Run's goroutine after every batch of events, in log order; it must not
// block (the subscriptions hand events on through bounded buffers).
func New(log Log, eventsTopic string, logger zerolog.Logger, listener func([]Applied)) *View {
	return &View{
		log:      log,
		topic:    eventsTopic,
		logger:   logger.With().Str("component", "view").Logger(),
		state:    domain.NewState(),
		listener: listener,
	}
}

// Ready reports whether the view has caught up with the log as it was at
// startup.
func (v *View) Ready() bool { return v.ready.Load() }

// Progress returns how many events the view has read, and the end of the
// events topic at startup.
func (v *View) Progress() (read, target int64) { return v.applied.Load(), v.target.Load() }

// Get returns the current value with the given id.
func (v *View) Get(id uuid.UUID) (domain.Value, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.state.Get(id)
}

// Run folds the events topic into the view until ctx is done or the log
// fails. It is called once.
func (v *View) Run(ctx context.Context) error {
	end, err := v.log.End(ctx, v.topic)
	if err != nil {
		return fmt.Errorf("view: end of %s: %w", v.topic, err)
	}
	var target int64
	for _, o := range end {
		target += o
	}
	v.target.Store(target)
	start := time.Now()
	err = v.log.Follow(ctx, v.topic, nil, func(b eventlog.Batch) error {
		applied := v.apply(b.Records)
		if v.listener != nil && len(applied) > 0 {
			v.listener(applied)
		}
		if b.CaughtUp && !v.ready.Load() {
			v.ready.Store(true)
			v.logger.Info().Int64("events", v.applied.Load()).Dur("took", time.Since(start)).Msg("view caught up")
		}
		return nil
	})
	return fmt.Errorf("view: follow %s: %w", v.topic, err)
}

func (v *View) apply(records []eventlog.Record) []Applied {
	replay := !v.ready.Load()
	var applied []Applied
	if v.listener != nil || v.logger.Debug().Enabled() {
		applied = make([]Applied, 0, len(records))
	}
	events := make([]domain.Event, 0, len(records))
	positions := make([]int, 0, len(records))
	for i, rec := range records {
		e, err := domain.DecodeEvent(rec.Value)
		if err != nil {
			v.logger.Warn().Err(err).Int32("partition", rec.Partition).Int64("offset", rec.Offset).Msg("skipping undecodable event")
			continue
		}
		events = append(events, e)
		positions = append(positions, i)
	}
	v.mu.Lock()
	for i, e := range events {
		value, _, err := v.state.Apply(e)
		if err != nil {
			v.logger.Warn().Err(err).Int64("offset", records[positions[i]].Offset).Msg("skipping event that does not fit the view")
			continue
		}
		if applied != nil {
			_, exists := v.state.Get(e.ValueID)
			applied = append(applied, Applied{Record: records[positions[i]], Event: e, Value: value, Exists: exists, Replay: replay})
		}
	}
	v.mu.Unlock()
	v.applied.Add(int64(len(records)))
	if !replay && v.logger.Debug().Enabled() {
		for _, a := range applied {
			v.logger.Debug().Stringer("command_id", a.Event.ParentID).Stringer("event_id", a.Event.ID).
				Stringer("value_id", a.Event.ValueID).Str("action", string(a.Event.Action)).
				Float64("value", a.Value.Value).Int64("version", a.Value.Version).Msg("event applied")
		}
	}
	return applied
}

// valueResponse is the JSON of GET /values/{id}.
type valueResponse struct {
	ValueID uuid.UUID `json:"value_id"`
	Value   float64   `json:"value"`
	Version int64     `json:"version"`
}

// Routes registers the view's queries on r.
func (v *View) Routes(r chi.Router) {
	r.Get("/values/{id}", v.getValue)
}

func (v *View) getValue(w http.ResponseWriter, r *http.Request) {
	id, ok := httpapi.ParseID(w, chi.URLParam(r, "id"), "value id")
	if !ok {
		return
	}
	if !v.Ready() {
		read, target := v.Progress()
		httpapi.Unavailable(w, time.Second, "replaying", fmt.Sprintf("the view is replaying the events log (%d of %d events)", read, target))
		return
	}
	value, ok := v.Get(id)
	if !ok {
		httpapi.Error(w, http.StatusNotFound, "value-not-found", fmt.Sprintf("value %s does not exist", id))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, valueResponse{ValueID: id, Value: value.Value, Version: value.Version})
}
