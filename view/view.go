// Package view is the read model: an in-memory materialized view of the
// values, folded from the events topic, and the HTTP queries it answers.
//
// Run replays the events topic from offset 0 and then follows it. Until the
// replay has reached the end of the topic as it was at startup, Ready is
// false and queries answer 503 rather than stale state. The view applies
// events with domain's State.Apply, the same fold the processor uses, so a
// value it shows is always the fold of the events log.
//
// Beside the values it keeps an index (index.go): the value ids in order,
// for GET /values (list.go), and where each value's events are in the log,
// packed a few bytes an event (trail.go), for GET /values/{id}/history
// (history.go) and time travel, GET /values/{id}?version=N or ?at=T
// (timetravel.go). Those read the events back from the log (Log.Read):
// the view holds positions, the log holds the history. The positions
// themselves are kept in blocks of 128 events; only each value's last,
// unfinished block is in memory, the completed ones are in the history
// file (WithHistoryFile: history.blocks in the data directory, blocks.go),
// read back for the queries that need them. So the view's memory follows
// the values, not the events.
//
// The view is also where snapshots are taken (snapshot.go): it knows,
// between two batches, exactly where it is in the events topic. With
// WithSnapshots it keeps what a processor would rebuild beside the values
// and hands Take a snapshot now and then; Restore makes it start from one
// and read only the events after it.
package view

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/httpapi"
	"calculator/outcome"
)

// Log is what the view needs of the log.
type Log interface {
	Follow(ctx context.Context, topic string, from eventlog.Offsets, fn func(eventlog.Batch) error) error
	End(ctx context.Context, topic string) (eventlog.Offsets, error)
	// Read finds events again by their positions, for histories and time
	// travel (history.go).
	Read(ctx context.Context, topic string, partition int32, offsets []int64) ([]eventlog.Record, error)
}

// View is the materialized view. Create it with New, call Run once; Get,
// Ready and Progress may be called from any goroutine.
type View struct {
	log    Log
	topic  string
	logger zerolog.Logger

	mu    sync.RWMutex
	state *domain.State
	index index // where each value's events are, and the ids in order

	listener func([]outcome.Applied) // called after each batch, outside the lock
	outcomes Outcomes                // for ?after= (after.go); nil until SetOutcomes

	// from is where Run starts reading: offset 0, or a snapshot's
	// position (Restore, which sets restored). split counts the values
	// whose history is split (see splitPartition). snap is nil unless the
	// view takes snapshots (snapshot.go). All four are Run's.
	from     eventlog.Offsets
	restored bool
	split    int
	snap     *snapshots

	ready      atomic.Bool
	read       atomic.Int64 // event records read since start
	position   atomic.Int64 // the reader's position, summed over the partitions
	endAtStart atomic.Int64 // the events topic's end at startup, summed likewise
}

// New returns a view of the events topic. listener, if not nil, is called
// by Run's goroutine after every batch of events, in log order; it must not
// block (the subscriptions hand events on through bounded buffers).
func New(log Log, eventsTopic string, logger zerolog.Logger, listener func([]outcome.Applied)) *View {
	return &View{
		log:      log,
		topic:    eventsTopic,
		logger:   logger.With().Str("component", "view").Logger(),
		state:    domain.NewState(),
		index:    newIndex(newMemBlocks()),
		listener: listener,
	}
}

// WithHistoryFile makes the view keep the completed blocks of its history
// index in the file at path (history.blocks in the data directory) rather
// than in memory. It opens the file and locks it: it fails when another
// process has it open. It is called once, before Restore and Run; Close
// closes the file. Run starts the file afresh unless the view starts from
// a snapshot, which Restore checks against the file.
func (v *View) WithHistoryFile(path string) error {
	store, err := openFileBlocks(path, v.logger)
	if err != nil {
		return err
	}
	v.index.store = store
	return nil
}

// Close closes the history file, once Run has returned and no query is
// served any more.
func (v *View) Close() error { return v.index.store.close() }

// Ready reports whether the view has caught up with the log as it was at
// startup.
func (v *View) Ready() bool { return v.ready.Load() }

// Progress is how far the view has read the events topic.
type Progress struct {
	Ready bool
	// EventsRead counts the event records read since startup.
	EventsRead int64
	// Position is where the reader is, and EndAtStart the end of the topic
	// when the view started, both as offsets summed over the partitions.
	// On Kafka offsets also count transaction markers, so they run ahead
	// of EventsRead; Position reaches EndAtStart when the replay is over.
	Position, EndAtStart int64
}

// Progress returns how far the view has read.
func (v *View) Progress() Progress {
	return Progress{
		Ready:      v.ready.Load(),
		EventsRead: v.read.Load(),
		Position:   v.position.Load(),
		EndAtStart: v.endAtStart.Load(),
	}
}

// Get returns the current value with the given id.
func (v *View) Get(id uuid.UUID) (domain.Value, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.state.Get(id)
}

// Run folds the events topic into the view until ctx is done or the log
// fails. It is called once.
func (v *View) Run(ctx context.Context) error {
	if !v.restored {
		// A replay from offset 0 indexes every event again: the blocks
		// of a previous run are of no use.
		if err := v.index.store.reset(); err != nil {
			return fmt.Errorf("view: start the history file afresh: %w", err)
		}
	}
	end, err := v.log.End(ctx, v.topic)
	if err != nil {
		return fmt.Errorf("view: end of %s: %w", v.topic, err)
	}
	v.endAtStart.Store(sum(end))
	v.position.Store(sum(v.from))
	start := time.Now()
	err = v.log.Follow(ctx, v.topic, v.from, func(b eventlog.Batch) error {
		applied := v.apply(&b)
		if next := sum(b.Next); next > v.position.Load() {
			v.position.Store(next) // only this goroutine writes it
		}
		if v.listener != nil && len(applied) > 0 {
			v.listener(applied)
		}
		if b.CaughtUp && !v.ready.Load() {
			v.ready.Store(true)
			v.logger.Info().Int64("events", v.read.Load()).Int64("position", v.position.Load()).
				Int64("end_at_start", v.endAtStart.Load()).Int("values", v.state.Len()).
				Dur("took", time.Since(start)).Msg("view caught up")
		}
		if v.snap != nil && v.ready.Load() && v.snap.due() {
			v.takeSnapshot()
		}
		return nil
	})
	return fmt.Errorf("view: follow %s: %w", v.topic, err)
}

// sum adds up the offsets of every partition.
func sum(o eventlog.Offsets) int64 {
	var s int64
	for _, v := range o {
		s += v
	}
	return s
}

func (v *View) apply(b *eventlog.Batch) []outcome.Applied {
	records := b.Records
	replay := !v.ready.Load()
	var applied []outcome.Applied
	if v.listener != nil || v.logger.Debug().Enabled() {
		applied = make([]outcome.Applied, 0, len(records))
	}
	events, errs := decodeEvents(records)
	folded := make([]folded, len(events))
	v.mu.Lock()
	for i, e := range events {
		if errs[i] != nil {
			continue
		}
		value, changed, err := v.state.Apply(e)
		if err != nil {
			v.logger.Warn().Err(err).Int64("offset", records[i].Offset).Msg("skipping event that does not fit the view")
			continue
		}
		folded[i] = foldedAs(changed)
		if applied != nil {
			// A value that exists has a version (1 once created); Apply
			// returns the zero Value for a rejection of a missing one.
			exists := value.Version > 0
			applied = append(applied, outcome.Applied{Record: records[i], Event: e, Value: value, Exists: exists, Replay: replay})
		}
	}
	// The history index in a pass of its own: a short loop whose map
	// lookups the processor can overlap.
	for i := range events {
		if folded[i] != notFolded && v.index.add(v.state, &records[i], &events[i], folded[i] == foldedChanged) {
			v.split++
			v.logger.Error().Stringer("value_id", events[i].ValueID).Int32("partition", records[i].Partition).Int64("offset", records[i].Offset).
				Msg("an event of this value is in another partition than its first: its history is not served")
		}
	}
	v.mu.Unlock()
	if v.snap != nil {
		v.snap.observe(b, events, errs)
	}
	for i, err := range errs {
		if err != nil {
			rec := records[i]
			v.logger.Warn().Err(err).Int32("partition", rec.Partition).Int64("offset", rec.Offset).Msg("skipping undecodable event")
		}
	}
	v.read.Add(int64(len(records)))
	if !replay && v.logger.Debug().Enabled() {
		for _, a := range applied {
			v.logger.Debug().Stringer("command_id", a.Event.ParentID).Stringer("event_id", a.Event.ID).
				Stringer("value_id", a.Event.ValueID).Str("action", string(a.Event.Action)).
				Stringer("value", a.Value.Value).Int64("version", a.Value.Version).Msg("event applied")
		}
	}
	return applied
}

// parallelDecodeMin is the batch size from which decodeEvents uses a second
// goroutine. Only a replay reads batches this large (the file log delivers up
// to 4096 records); while the processor replays too, both cores are busy
// anyway, but the view usually finishes last, alone, with a core to spare.
const parallelDecodeMin = 1024

// decodeEvents decodes every record; errs[i] is not nil for a record that is
// not an event.
func decodeEvents(records []eventlog.Record) (events []domain.Event, errs []error) {
	events, errs = make([]domain.Event, len(records)), make([]error, len(records))
	decode := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			events[i], errs[i] = domain.DecodeEvent(records[i].Value)
		}
	}
	if len(records) < parallelDecodeMin {
		decode(0, len(records))
		return events, errs
	}
	half := len(records) / 2
	var wg sync.WaitGroup
	wg.Go(func() { decode(half, len(records)) })
	decode(0, half)
	wg.Wait()
	return events, errs
}

// valueResponse is the JSON of GET /values/{id}.
type valueResponse struct {
	ValueID uuid.UUID `json:"value_id"`
	Value   number    `json:"value"`
	Version int64     `json:"version"`
}

// number is the type of domain.Value's number: the responses carry it as
// it is, for encoding/json to write it as domain defines it (a
// domain.Decimal is a JSON number with exactly its digits).
type number = domain.Decimal

// Routes registers the view's queries on r.
func (v *View) Routes(r chi.Router) {
	r.Get("/values", v.listValues)
	r.Get("/values/{id}", v.getValue)
	r.Get("/values/{id}/history", v.getHistory)
}

func (v *View) getValue(w http.ResponseWriter, r *http.Request) {
	id, ok := httpapi.ParseID(w, chi.URLParam(r, "id"), "value id")
	if !ok {
		return
	}
	if v.replaying(w) {
		return
	}
	if !v.awaitAfter(w, r) {
		return
	}
	if q := r.URL.Query(); q.Has("version") || q.Has("at") {
		v.getPastValue(w, r, id, q)
		return
	}
	value, ok := v.Get(id)
	if !ok {
		httpapi.Error(w, httpapi.ValueNotFound, fmt.Sprintf("value %s does not exist", id))
		return
	}
	// The version is the value's entity tag, for If-Match on PUT.
	w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(value.Version, 10)))
	httpapi.WriteJSON(w, http.StatusOK, valueResponse{ValueID: id, Value: value.Value, Version: value.Version})
}
