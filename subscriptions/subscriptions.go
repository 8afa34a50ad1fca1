// Package subscriptions tracks the status of every recent command and serves
// the live side of the API: GET /commands/{id}, the Server-Sent Events
// streams under /subscriptions/, and the outcome that POST and PUT wait for
// with ?wait=.
//
// Where its knowledge comes from:
//
//   - A command is "accepted" once it is in the commands topic. Run follows
//     that topic from offset 0.
//   - Its outcome comes from the view: the Hub's Apply is the view's listener,
//     called after each batch of events the view has folded in. So a status
//     says "succeeded" or "rejected", a command stream sends "applied", and a
//     ?wait answers, only once a GET of the value shows the outcome. The Hub
//     does not read the events topic for itself: one decode, one order, and
//     no way to announce an outcome the view does not show yet.
//
// Protocol:
//
//  1. Replay. Run reads the commands topic from 0 while the view replays the
//     events topic and hands its batches to Apply. Both sides only upsert,
//     in any interleaving. Until Run has caught up with the commands topic
//     and the view is ready, the endpoints answer 503 with Retry-After.
//  2. Live. Apply updates the statuses, wakes who waits for those commands
//     and pushes the batch to every stream's queue. It never blocks: each
//     queue is bounded, and a subscriber whose queue is full is dropped (its
//     stream ends; the client resumes with Last-Event-ID).
//  3. Shutdown. Close (the app calls it when the HTTP server shuts down) ends
//     every stream and every wait; Run returns when its context is done.
//
// The streams (text/event-stream, Cache-Control: no-cache) start with a
// retry hint and send each message as "id:" (a log position), "event:" and a
// one-line JSON "data:", flushed as soon as nothing else is ready to go; a
// comment line every Heartbeat keeps idle connections open. The events
// stream resumes exactly after a Last-Event-ID; a command stream ends after
// "applied" and answers a reconnection that has seen it all with 204.
//
// Memory is bounded: the table keeps the statuses of the most recent
// Capacity commands (in the order they were first seen) and forgets older
// ones: 64 bytes a command, about 107 in all with the index. A stream costs
// one goroutine (its HTTP handler), a queue of at most Buffer events (shared
// with every other stream) and a kernel send buffer of SendBuffer bytes.
package subscriptions

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"os"
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

// Applied is an event the view has folded in, with the value it left behind
// (view.Applied; the app converts, so that neither package imports the
// other).
type Applied struct {
	Record eventlog.Record
	Event  domain.Event
	Value  domain.Value
	Exists bool
}

// Options tune the Hub; the zero value means the defaults.
type Options struct {
	// Capacity is how many command statuses are kept (DefaultCapacity).
	Capacity int
	// Heartbeat is the period of the comment line on idle streams (15 s).
	Heartbeat time.Duration
	// Retry is the reconnection delay suggested to clients (1 s).
	Retry time.Duration
	// WriteTimeout bounds each write to a stream; a client that does not
	// read for that long is disconnected (10 s).
	WriteTimeout time.Duration
	// Buffer is how many events may wait for one subscriber before it is
	// dropped (4096).
	Buffer int
	// CommandWait is how long a command stream waits for a command id that
	// is not known yet (30 s).
	CommandWait time.Duration
	// MaxCatchUps bounds the streams that read old events from the log at the
	// same time; others wait for a turn (8).
	MaxCatchUps int
	// SendBuffer is the kernel send buffer of a stream's connection, in
	// bytes (256 KiB; negative: the kernel's default). It needs ConnContext
	// on the http.Server.
	SendBuffer int
}

func (o Options) withDefaults() Options {
	if o.Capacity <= 0 {
		o.Capacity = DefaultCapacity
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Buffer <= 0 {
		o.Buffer = 4096
	}
	if o.CommandWait <= 0 {
		o.CommandWait = 30 * time.Second
	}
	if o.MaxCatchUps <= 0 {
		o.MaxCatchUps = 8
	}
	if o.SendBuffer == 0 {
		o.SendBuffer = 256 << 10
	}
	return o
}

// Config is what New needs.
type Config struct {
	Log           Log
	CommandsTopic string
	EventsTopic   string
	// Value returns a value as the view shows it now (required).
	Value func(uuid.UUID) (domain.Value, bool)
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

	life      context.Context // done when the Hub closes
	close     context.CancelFunc
	caughtUp  atomic.Bool // Run has read the commands topic up to its end once
	streams   atomic.Int64
	dropped   atomic.Int64
	lastDrops atomic.Int64 // unix nanoseconds of the last drop warning

	mu           sync.Mutex
	statuses     *statusTable
	commandsAt   int              // statuses.findNext cursor of observeCommands
	outcomesAt   int              // statuses.findNext cursor of Apply
	commandsNext eventlog.Offsets // commands topic: next offset Run will read
	outcomesNext eventlog.Offsets // commands topic: after the last command with an applied outcome
	eventsNext   eventlog.Offsets // events topic: after the last event Apply got
	progress     chan struct{}    // closed and replaced after each commands batch
	watchers     map[uuid.UUID][]*watcher
	valueSubs    map[uuid.UUID][]*queue
	eventSubs    map[*queue]struct{}
}

// watcher is someone waiting for a command's status to change.
type watcher struct {
	wake chan struct{} // capacity 1
}

func (w *watcher) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// New returns a Hub. It reads nothing until Run.
func New(cfg Config) *Hub {
	opt := cfg.Options.withDefaults()
	life, cancel := context.WithCancel(context.Background())
	return &Hub{
		cfg:          cfg,
		opt:          opt,
		logger:       cfg.Logger.With().Str("component", "subscriptions").Logger(),
		catchUps:     make(chan struct{}, opt.MaxCatchUps),
		life:         life,
		close:        cancel,
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

// Ready reports whether the statuses are rebuilt: Run has read the commands
// topic up to its end, and the view has replayed the events topic.
func (h *Hub) Ready() bool { return h.caughtUp.Load() && h.cfg.ViewReady() }

// Stats returns the Hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	n, evicted := h.statuses.len(), h.statuses.evicted
	h.mu.Unlock()
	return Stats{Subscribers: h.streams.Load(), Dropped: h.dropped.Load(), Statuses: n, Evicted: evicted}
}

// Close ends every stream and every wait. It may be called more than once.
func (h *Hub) Close() { h.close() }

// Run follows the commands topic from offset 0 and records every command as
// accepted, until ctx is done. When the log fails it tries again from where
// it was. It returns nil, and closes the Hub.
func (h *Hub) Run(ctx context.Context) error {
	defer h.Close()
	backoff := 100 * time.Millisecond
	for {
		h.mu.Lock()
		from := maps.Clone(h.commandsNext)
		h.mu.Unlock()
		err := h.cfg.Log.Follow(ctx, h.cfg.CommandsTopic, from, h.observeCommands)
		if ctx.Err() != nil {
			return nil
		}
		h.logger.Error().Err(err).Dur("retry_in", backoff).Msg("reading the commands topic failed; trying again")
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (h *Hub) observeCommands(b eventlog.Batch) error {
	type seen struct {
		id, valueID uuid.UUID
		partition   int32
		offset      int64
	}
	commands := make([]seen, 0, len(b.Records))
	for _, rec := range b.Records {
		c, err := domain.DecodeCommand(rec.Value)
		if err != nil {
			continue // the processor logs and counts it; it gets no outcome
		}
		commands = append(commands, seen{c.ID, c.ValueID, rec.Partition, rec.Offset})
	}
	h.mu.Lock()
	for _, c := range commands {
		// A command before the last one with an outcome that is not in the
		// table had its outcome already, and was forgotten since: recording
		// it again would evict a newer one (this happens in the replay of a
		// log longer than the table, when the view runs ahead).
		_, known := h.statuses.findNext(c.id, &h.commandsAt)
		if !known && c.offset < h.outcomesNext[c.partition] {
			continue
		}
		if !known { // a known command keeps its status: written twice, or its outcome came first
			h.statuses.acceptNew(c.id, c.valueID)
		}
		for _, w := range h.watchers[c.id] {
			w.signal()
		}
	}
	for _, rec := range b.Records {
		h.commandsNext[rec.Partition] = rec.Offset + 1
	}
	close(h.progress)
	h.progress = make(chan struct{})
	h.mu.Unlock()
	if b.CaughtUp && !h.caughtUp.Load() {
		h.caughtUp.Store(true)
		h.logger.Info().Int("statuses", h.Stats().Statuses).Msg("command statuses rebuilt from the commands topic")
	}
	return nil
}

// Apply takes a batch of events the view has just folded in, in log order:
// it records their outcomes, wakes who waits for them and hands them to the
// streams. It never blocks on a subscriber. The view calls it from its own
// goroutine.
func (h *Hub) Apply(batch []Applied) {
	if len(batch) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range batch {
		a := &batch[i]
		h.eventsNext[a.Record.Partition] = a.Record.Offset + 1
		id := a.Event.ParentID
		partition, offset, hasPosition := eventlog.CommandPosition(a.Record.Headers)
		// The mirror image of observeCommands: an outcome for a command
		// that Run has read but the table no longer holds belongs to a
		// command older than the table keeps.
		if slot, known := h.statuses.findNext(id, &h.outcomesAt); known || !hasPosition || offset >= h.commandsNext[partition] {
			h.statuses.completeAt(a, slot, known)
		}
		if hasPosition && offset >= h.outcomesNext[partition] {
			h.outcomesNext[partition] = offset + 1
		}
		for _, w := range h.watchers[id] {
			w.signal()
		}
		if a.Exists && a.Event.Action != domain.CommandRejected {
			for _, q := range h.valueSubs[a.Event.ValueID] {
				if !q.push(&liveBatch{items: batch[i : i+1 : i+1]}) {
					h.dropValueSubscriber(a.Event.ValueID, q)
				}
			}
		}
	}
	if len(h.eventSubs) > 0 {
		lb := &liveBatch{items: batch}
		for q := range h.eventSubs {
			if !q.push(lb) {
				delete(h.eventSubs, q)
				h.noteDrop()
			}
		}
	}
}

// dropValueSubscriber removes a values subscriber that fell behind. h.mu is
// held.
func (h *Hub) dropValueSubscriber(id uuid.UUID, q *queue) {
	h.removeValueSubscriber(id, q)
	h.noteDrop()
}

func (h *Hub) removeValueSubscriber(id uuid.UUID, q *queue) {
	subs := h.valueSubs[id]
	for i, s := range subs {
		if s == q {
			subs = append(subs[:i:i], subs[i+1:]...)
			break
		}
	}
	if len(subs) == 0 {
		delete(h.valueSubs, id)
	} else {
		h.valueSubs[id] = subs
	}
}

// noteDrop counts a dropped subscriber and says so, at most once a second.
func (h *Hub) noteDrop() {
	n := h.dropped.Add(1)
	now := time.Now().UnixNano()
	if last := h.lastDrops.Load(); now-last > int64(time.Second) && h.lastDrops.CompareAndSwap(last, now) {
		h.logger.Warn().Int64("dropped_total", n).Int("buffer", h.opt.Buffer).
			Msg("a subscriber fell behind and is disconnected (it may resume with Last-Event-ID)")
	}
}

// status returns what is known of a command.
func (h *Hub) status(id uuid.UUID) (commandStatus, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.statuses.get(id)
}

// watch registers a watcher for the command and returns its status now, so
// that no change between the two can be missed.
func (h *Hub) watch(id uuid.UUID) (*watcher, commandStatus, bool) {
	w := &watcher{wake: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.watchers[id] = append(h.watchers[id], w)
	st, ok := h.statuses.get(id)
	return w, st, ok
}

func (h *Hub) unwatch(id uuid.UUID, w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ws := h.watchers[id]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(h.watchers, id)
	} else {
		h.watchers[id] = ws
	}
}

// ErrClosed is returned by a wait when the Hub closes.
var ErrClosed = errors.New("subscriptions: closed")

// Await implements commander.Outcomes: it registers interest in the outcome
// of a command (call it before the command is appended, so that no outcome
// is missed) and returns wait, which blocks until the view has applied the
// command's outcome, ctx is done (ctx.Err()) or the Hub closes (ErrClosed),
// and stop, which must be called once the caller is done with wait.
//
// The event that wait returns has ID, ParentID, Action, ValueID and, for a
// rejection, Reason and Message; the value is the one the event left behind
// (Version 0 when there is none).
func (h *Hub) Await(commandID uuid.UUID) (wait func(context.Context) (domain.Event, domain.Value, error), stop func()) {
	w, _, _ := h.watch(commandID)
	var once sync.Once
	stop = func() { once.Do(func() { h.unwatch(commandID, w) }) }
	wait = func(ctx context.Context) (domain.Event, domain.Value, error) {
		for {
			if st, ok := h.status(commandID); ok && st.finished() {
				return st.event(), st.Value, nil
			}
			select {
			case <-w.wake:
			case <-ctx.Done():
				return domain.Event{}, domain.Value{}, ctx.Err()
			case <-h.life.Done():
				return domain.Event{}, domain.Value{}, ErrClosed
			}
		}
	}
	return wait, stop
}

// event rebuilds the outcome event, as far as the status holds it.
func (s commandStatus) event() domain.Event {
	e := domain.Event{ID: s.EventID, ParentID: s.CommandID, ValueID: s.ValueID, Reason: s.Reason, Message: s.Message}
	switch {
	case s.State == StatusRejected:
		e.Action = domain.CommandRejected
	case s.Value.Version == 1:
		e.Action = domain.ValueCreated
	default:
		e.Action = domain.ValueUpdated
	}
	return e
}

// waitForCommands waits until Run has read the commands topic up to its end
// as of now, or ctx is done: a command that got its 202 before this call is
// then in the table, if it is anywhere.
func (h *Hub) waitForCommands(ctx context.Context) {
	end, err := h.cfg.Log.End(ctx, h.cfg.CommandsTopic)
	if err != nil {
		return
	}
	for {
		h.mu.Lock()
		done, progress := covers(h.commandsNext, end), h.progress
		h.mu.Unlock()
		if done {
			return
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return
		}
	}
}

// Routes registers the endpoints on r.
func (h *Hub) Routes(r chi.Router) {
	r.Get("/commands/{id}", h.getCommand)
	r.Get("/subscriptions/commands/{id}", h.streamCommand)
	r.Get("/subscriptions/events", h.streamEvents)
	r.Get("/subscriptions/values/{id}", h.streamValue)
}

// unavailable answers 503 while the statuses are being rebuilt.
func (h *Hub) unavailable(w http.ResponseWriter) bool {
	if h.Ready() {
		return false
	}
	httpapi.Unavailable(w, time.Second, "replaying", "command statuses are being rebuilt from the log")
	return true
}

// streamContext is the life of one stream: it ends when the client goes
// away or the Hub closes.
func (h *Hub) streamContext(r *http.Request) (context.Context, func()) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(h.life, cancel)
	h.streams.Add(1)
	return ctx, func() {
		stop()
		cancel()
		h.streams.Add(-1)
	}
}

// streamEnded logs, at debug level, why a stream ended when it was not the
// client leaving or the Hub closing.
func (h *Hub) streamEnded(r *http.Request, err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// A write to the client did not finish within WriteTimeout: it
		// fell behind as surely as one whose queue overflowed.
		h.noteDrop()
	}
	h.logger.Debug().Err(err).Str("path", r.URL.Path).Str("remote", r.RemoteAddr).Msg("stream ended")
}

// errFellBehind ends the stream of a subscriber whose queue overflowed.
var errFellBehind = errors.New("the subscriber fell behind")
