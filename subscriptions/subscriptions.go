// Package subscriptions tracks the status of every recent command and serves
// the live side of the API: GET /commands/{id}, the Server-Sent Events
// streams under /subscriptions/, and the outcome that POST and PUT wait for
// with ?wait= (the commander answers the request; Await here does the
// waiting).
//
// Where its knowledge comes from:
//
//   - A command is "accepted" once it is in the commands topic. Run follows
//     that topic from offset 0 (follow.go), or from where the snapshot that
//     DecodeSnapshot read was taken (snapshot.go).
//   - Its outcome comes from the view: the Hub's Apply is the view's listener,
//     called after each batch of events the view has folded in (apply.go).
//     So a status says "succeeded" or "rejected", a command stream sends
//     "applied", and a ?wait answers, only once a GET of the value shows the
//     outcome. The Hub does not read the events topic for itself: one
//     decode, one order, and no way to announce an outcome the view does
//     not show yet.
//   - The value after an outcome (in a command stream's "applied" and a
//     ?wait answer) is not kept with the status: who waits gets it from Apply
//     with the outcome; for an older outcome it is the view's current value
//     if the value is still at the status's version, and otherwise the view
//     reads it back from the events log (Config.ValueAt) (wait.go).
//
// Protocol:
//
//  1. Replay. Run reads the commands topic from 0 while the view replays the
//     events topic and hands its batches to Apply. Both sides only upsert,
//     in any interleaving. Until Run has caught up with the commands topic
//     and the view is ready, GET /commands/{id} answers 503 with
//     Retry-After, and a stream waits (Options.ReadyWait) before it does.
//  2. Live. Apply updates the statuses, wakes who waits for those commands
//     (wait.go) and pushes the batch to every stream's queue (queue.go). It
//     never blocks: each queue is bounded, and a subscriber whose queue is
//     full is dropped (its stream ends; the client resumes with
//     Last-Event-ID).
//  3. Shutdown. Close (the app calls it when the HTTP server shuts down) ends
//     every stream and every wait; Run returns when its context is done.
//
// The streams (text/event-stream, Cache-Control: no-cache; sse.go) start
// with a retry hint and send each message as "id:" (a log position,
// position.go), "event:" and a one-line JSON "data:", flushed as soon as
// nothing else is ready to go; a comment line every Heartbeat keeps idle
// connections open (streams.go). The events stream resumes exactly after a
// Last-Event-ID; a command stream ends after "applied" and answers a
// reconnection that has seen it all with 204.
//
// Memory is bounded: the table (statuses.go) keeps the statuses of the most
// recent Capacity commands (in the order they were first seen) and forgets
// older ones: 48 bytes a command and at most 8 of index (index.go), 56 MiB
// in all at the default capacity (BenchmarkStatuses). A stream
// costs its HTTP handler's goroutine and one that ends it when the Hub
// closes, a queue of at most Buffer events (shared with every other stream)
// and a kernel send buffer of SendBuffer bytes.
package subscriptions

import (
	"context"
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

// Log is what the Hub needs of the log: it reads the commands topic, and the
// events topic when a subscriber catches up from an old position.
type Log interface {
	Follow(ctx context.Context, topic string, from eventlog.Offsets, fn func(eventlog.Batch) error) error
	End(ctx context.Context, topic string) (eventlog.Offsets, error)
}

// Config is what New needs.
type Config struct {
	Log           Log
	CommandsTopic string
	EventsTopic   string
	// Value returns a value as the view shows it now (required).
	Value func(uuid.UUID) (domain.Value, bool)
	// ValueAt returns a value right after its version-th event, as the view
	// reads it back from the events log (required). The Hub does not keep
	// the value after each command's outcome: it asks Value, and ValueAt
	// when the value has moved on since.
	ValueAt func(ctx context.Context, id uuid.UUID, version int64) (domain.Decimal, error)
	// ViewReady reports whether the view has replayed the events topic
	// (required).
	ViewReady func() bool
	Logger    zerolog.Logger
	Options
}

// Stats are the Hub's counters.
type Stats struct {
	Subscribers int64 // streams open now
	Dropped     int64 // subscribers disconnected for falling behind, since start
	Statuses    int   // command statuses held
	Evicted     int64 // statuses forgotten to make room, since start
}

// Hub is the subscriptions part. Create it with New, hand Apply to the view,
// call Run once; everything else may be called from any goroutine.
type Hub struct {
	cfg      Config
	opt      Options
	logger   zerolog.Logger
	catchUps chan struct{} // a token per catch-up that may read the log

	closed    chan struct{} // closed by Close: every stream and wait ends
	closeOnce sync.Once
	caughtUp  atomic.Bool // Run has read the commands topic up to its end once
	streams   atomic.Int64
	dropped   atomic.Int64
	lastDrops atomic.Int64 // unix nanoseconds of the last drop warning

	mu       sync.Mutex
	statuses *statusTable
	// How far the Hub has taken each source in.
	commandsNext eventlog.Offsets // commands topic: next offset Run will read
	outcomesNext eventlog.Offsets // commands topic: after the last command with an applied outcome
	eventsNext   eventlog.Offsets // events topic: after the last event Apply got
	progress     chan struct{}    // closed and replaced after each commands batch
	// Who listens.
	watchers  map[uuid.UUID][]*watcher
	valueSubs map[uuid.UUID][]*queue
	eventSubs map[*queue]struct{}
}

// New returns a Hub. It reads nothing until Run.
func New(cfg Config) *Hub {
	opt := cfg.Options.withDefaults()
	return &Hub{
		cfg:          cfg,
		opt:          opt,
		logger:       cfg.Logger.With().Str("component", "subscriptions").Logger(),
		catchUps:     make(chan struct{}, opt.MaxCatchUps),
		closed:       make(chan struct{}),
		statuses:     newStatusTable(opt.Capacity),
		commandsNext: eventlog.Offsets{},
		outcomesNext: eventlog.Offsets{},
		eventsNext:   eventlog.Offsets{},
		progress:     make(chan struct{}),
		watchers:     make(map[uuid.UUID][]*watcher),
		valueSubs:    make(map[uuid.UUID][]*queue),
		eventSubs:    make(map[*queue]struct{}),
	}
}

// Routes registers the endpoints on r.
func (h *Hub) Routes(r chi.Router) {
	r.Get("/commands/{id}", h.getCommand)                  // commands.go
	r.Get("/subscriptions/commands/{id}", h.streamCommand) // commands.go
	r.Get("/subscriptions/events", h.streamEvents)         // events.go
	r.Get("/subscriptions/values/{id}", h.streamValue)     // values.go
}

// Ready reports whether the statuses are rebuilt: Run has read the commands
// topic up to its end, and the view has replayed the events topic.
func (h *Hub) Ready() bool { return h.caughtUp.Load() && h.cfg.ViewReady() }

// unavailable answers 503 while the statuses are being rebuilt.
func (h *Hub) unavailable(w http.ResponseWriter) bool {
	if h.Ready() {
		return false
	}
	httpapi.Error(w, httpapi.Replaying, "command statuses are being rebuilt from the log")
	return true
}

// readyPoll is how often a stream that waits for the statuses looks again.
const readyPoll = 20 * time.Millisecond

// awaitReady holds a stream opened while the statuses are being rebuilt
// until they are, for at most Options.ReadyWait, and answers 503 if they
// are not by then (or the request or the Hub ends first). It reports
// whether the stream may start.
func (h *Hub) awaitReady(w http.ResponseWriter, r *http.Request) bool {
	if h.Ready() || h.opt.ReadyWait < 0 {
		return !h.unavailable(w)
	}
	deadline := time.NewTimer(h.opt.ReadyWait)
	defer deadline.Stop()
	poll := time.NewTicker(readyPoll)
	defer poll.Stop()
	for !h.Ready() {
		select {
		case <-poll.C:
		case <-deadline.C:
			return !h.unavailable(w)
		case <-r.Context().Done():
			return false
		case <-h.closed:
			return !h.unavailable(w)
		}
	}
	return true
}

// Stats returns the Hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	n, evicted := h.statuses.len(), h.statuses.evicted
	h.mu.Unlock()
	return Stats{Subscribers: h.streams.Load(), Dropped: h.dropped.Load(), Statuses: n, Evicted: evicted}
}

// Close ends every stream and every wait. It may be called more than once.
func (h *Hub) Close() { h.closeOnce.Do(func() { close(h.closed) }) }
