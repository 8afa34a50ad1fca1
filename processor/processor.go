// Package processor is the write model: one goroutine that owns the
// validation state, reads commands from the commands topic and answers each
// with exactly one event on the events topic.
//
// Protocol of Run:
//
//  0. Open the events writer (WithEventWriter). On Kafka it is a
//     transactional producer, and opening it fences every earlier one and
//     aborts the transaction a crashed one left open: from then on the events
//     topic can only change through this Run.
//  1. Replay. Fold the events topic from offset 0 into a fresh state (or,
//     WithSnapshots, from the newest usable snapshot's position into the
//     state, window and positions it recorded), note
//     which command ids already have an outcome and, from each event's
//     command-partition/command-offset headers, the position of the last
//     command with an outcome in every commands partition.
//  2. Check. The commands topic must hold every command the events refer
//     to: its end must be past those positions. If it is not, commands
//     that were acknowledged are gone (the file was damaged at its end,
//     emptied or deleted; the topic was deleted and created again), and
//     reading on from its end would skip every new command up to the old
//     positions: Run returns an error wrapping ErrCommandsLost, which a
//     new Run cannot mend (see LostCommandsError).
//  3. Caught up. Once the replay has reached the end of the events topic
//     as it was when the replay began, and the check passed, Ready reports
//     true, Checked is closed, and the processor starts reading commands
//     exactly after those positions.
//  4. Process. For each batch of commands: decode each record (an
//     undecodable one is logged with its position, counted and skipped),
//     skip a command id that already has an outcome (a command written twice;
//     see the window of decided command ids below),
//     Decide the outcome, Apply it to the state, and append the batch's events
//     with one Append. The events carry their command's position, so the
//     events topic alone says how far the processor got: a crash between two
//     appends, or in the middle of one, loses nothing and repeats nothing,
//     because the next Run starts from what the events topic holds. On
//     Kafka each Append is one transaction, so a batch's events, and the
//     positions they carry, become visible together or not at all.
//  5. Shutdown. When ctx is done, Run finishes the append in flight and
//     returns ctx.Err(). Any other error (the log failed) also ends Run;
//     the state may then be ahead of the log, so the caller starts a new Run,
//     which rebuilds everything from the log. ErrCommandsLost is the
//     exception: a new Run would find the same logs, and the caller stops.
//
// That is the single-writer protocol, for the embedded log and one process.
// With WithGroup, Run is in partitioned mode instead (partitioned.go):
// several instances split the partitions through a group, and each owned
// partition goes through the same steps on its own.
//
// # The window of decided command ids
//
// Step 4 skips a command whose id already has an outcome, but a Run does not
// keep every such id: it keeps those of the outcomes of the last 24 hours (by
// the events' timestamps) and of the last 1,000,000 outcomes, whichever are
// more, and never more than 5,000,000 (decided.Window, WithWindow; about 30 bytes an
// id: 30 MB for a million, about 235 MB at the ceiling). The replay rebuilds
// the same window from the events log.
//
// A command id is written twice only by a repeat: a log client that retried
// an append, or a retry of a request sent with an Idempotency-Key (its
// command id is computed from the key and the request). The Idempotency-Key
// index (package idempotency) remembers a key for at least 24 hours or the
// last 1,000,000 keys, at most 5,000,000, and while it remembers one it
// appends a repeat only if it does not yet know the first command to be in
// the log: while that append is in flight or ended in an error, until the
// index reads the record (it follows the commands log, and reads it all
// again at a start). That is seconds after the first append (its timeout is
// 5 s), and the window covers at least 24 hours, or, at the ceiling, 5,000,000
// outcomes, which even at 20,000 commands a second is more than 4 minutes.
// So every repeat that can reach the log while its key is remembered finds
// its id here and gets no second outcome.
//
// A repeat older than the window is decided again: a second outcome (applied
// to the value's state as it is then, or rejected). This happens to a retry
// of a keyed request after its key was forgotten (older than 24 hours and
// more than 1,000,000 keys ago, or more than 5,000,000 keys ago), which the
// index then appends as a new command, and to a command record copied into
// the log by hand long after the first.
package processor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"calculator/decided"
	"calculator/domain"
	"calculator/eventlog"
	"calculator/snapshot"
)

// Log is what the processor needs of the log: it reads both topics and is
// the only writer of the events topic.
type Log interface {
	Follow(ctx context.Context, topic string, from eventlog.Offsets, fn func(eventlog.Batch) error) error
	Append(ctx context.Context, topic string, msgs ...eventlog.Message) error
	End(ctx context.Context, topic string) (eventlog.Offsets, error)
}

// Stats are the processor's counters since the process started.
type Stats struct {
	Succeeded     int64 // commands answered with ValueCreated or ValueUpdated
	Rejected      int64 // commands answered with CommandRejected
	Duplicates    int64 // command records skipped because their id already had an outcome
	Malformed     int64 // command or event records that could not be decoded
	EventsReplay  int64 // events folded by the last replay
	CommandsSeen  int64 // command records read, of any kind
	DecidedIDs    int64 // command ids held in the windows of decided ids, over the partitions decided
	ReplayedReady bool
}

// EventWriter writes the processor's events: the only writer of the
// events topic. Append has the contract of eventlog.Log's Append.
type EventWriter interface {
	Append(ctx context.Context, topic string, msgs ...eventlog.Message) error
	Close() error
}

// Option configures a Processor.
type Option func(*Processor)

// WithEventWriter makes every Run write its events through a writer that
// open returns. Run calls open first, before the replay, and closes the
// writer when it ends: a writer that fences its predecessors (a Kafka
// transactional producer) does so when it is opened, so that nothing an
// earlier writer left unfinished can appear after the replay has read the
// topic. Without this option the events are appended to the Log.
func WithEventWriter(open func(ctx context.Context) (EventWriter, error)) Option {
	return func(p *Processor) { p.openWriter = open }
}

// Snapshot returns the fold of the newest usable snapshot (package
// snapshot) of the given events partitions (every one when nil), checked
// against the events topic, and the state it holds: the values of those
// partitions. It returns an error wrapping snapshot.ErrNone when there is
// none, and another error when none can be used; either way Run replays
// from offset 0.
type Snapshot func(ctx context.Context, partitions []int32) (*snapshot.Fold, *domain.State, error)

// WithSnapshots makes every Run (and in partitioned mode every owner)
// start from the newest snapshot that load finds, and replay only the
// events after it (protocol, step 1).
func WithSnapshots(load Snapshot) Option {
	return func(p *Processor) { p.snapshot = load }
}

// WithTopicNames gives the names that errors use for the topics: the file
// of the embedded log, say. The default is "topic <name>".
func WithTopicNames(name func(topic string) string) Option {
	return func(p *Processor) { p.topicName = name }
}

// WithWindow bounds the decided command ids that a Run keeps (see
// decided.Window and the package comment); the default is the zero Window.
func WithWindow(w decided.Window) Option {
	return func(p *Processor) { p.window = w }
}

// ErrCommandsLost is wrapped by the error of a Run that finds the events
// topic answering commands that the commands topic does not hold (step 2
// of the protocol). The error is a *LostCommandsError.
var ErrCommandsLost = errors.New("the commands log lost acknowledged commands")

// LostCommandsError says where the commands topic ends short of the
// commands that the events answer. Starting again does not help: the logs
// must be repaired (the commands restored from a backup) first.
type LostCommandsError struct {
	Commands, Events string // the topics, as WithTopicNames names them
	Partitions       []LostCommands
}

// LostCommands is one commands partition that ends short of the events.
type LostCommands struct {
	Partition int32
	// End is the commands partition's end; LastAnswered the offset of the
	// last command in it that an event answers.
	End, LastAnswered int64
}

func (e *LostCommandsError) Error() string {
	var b strings.Builder
	for i, p := range e.Partitions {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s ends at offset %d in partition %d, but %s holds the outcomes of its commands up to offset %d (offsets %d to %d are missing)",
			e.Commands, p.End, p.Partition, e.Events, p.LastAnswered, p.End, p.LastAnswered)
	}
	b.WriteString(": the commands log was damaged at its end, emptied, deleted or replaced; restore it from a backup (the process will not start until it holds those commands)")
	return b.String()
}

func (e *LostCommandsError) Unwrap() error { return ErrCommandsLost }

// Processor validates commands. Create it with New and call Run; Ready and
// Stats may be called from any goroutine.
type Processor struct {
	log           Log
	openWriter    func(ctx context.Context) (EventWriter, error)
	commandsTopic string
	eventsTopic   string
	logger        zerolog.Logger
	now           func() time.Time
	writeTimeout  time.Duration
	ready         atomic.Bool
	replayed      atomic.Int64
	succeeded     atomic.Int64
	rejected      atomic.Int64
	duplicates    atomic.Int64
	malformed     atomic.Int64
	commandsSeen  atomic.Int64
	decidedIDs    atomic.Int64 // the sum of every run's reported window size

	topicName func(topic string) string
	window    decided.Window // of the decided command ids
	snapshot  Snapshot       // nil: every Run replays from offset 0
	// checked is closed when a Run has first passed the check of step 2.
	checked     chan struct{}
	checkedOnce sync.Once

	positionMu sync.Mutex
	position   eventlog.Offsets // next commands offset per partition, once handled

	group *groupMode // partitioned mode (WithGroup, partitioned.go); nil: Run decides every partition
}

// New returns a processor that reads commandsTopic and writes eventsTopic.
func New(log Log, commandsTopic, eventsTopic string, logger zerolog.Logger, opts ...Option) *Processor {
	p := &Processor{
		log:           log,
		commandsTopic: commandsTopic,
		eventsTopic:   eventsTopic,
		logger:        logger.With().Str("component", "processor").Logger(),
		now:           time.Now,
		writeTimeout:  30 * time.Second,
		topicName:     func(topic string) string { return "topic " + topic },
		checked:       make(chan struct{}),
	}
	p.openWriter = func(context.Context) (EventWriter, error) { return logWriter{log}, nil }
	for _, opt := range opts {
		opt(p)
	}
	return p
}

// logWriter appends events to the Log itself; closing it leaves the Log open.
type logWriter struct{ Log }

func (logWriter) Close() error { return nil }

// Ready reports whether the last Run has replayed the events topic and is
// processing commands.
func (p *Processor) Ready() bool { return p.ready.Load() }

// Checked is closed once a Run has replayed the events and found every
// command they answer in the commands topic (step 2 of the protocol): from
// then on, a command appended to the commands topic gets an offset after
// every decided one. It stays closed.
func (p *Processor) Checked() <-chan struct{} { return p.checked }

// Position returns, for each commands partition, the offset of the next
// command the processor will handle: everything before it has its outcome
// in the events log (or was skipped).
func (p *Processor) Position() eventlog.Offsets {
	p.positionMu.Lock()
	defer p.positionMu.Unlock()
	return maps.Clone(p.position)
}

func (p *Processor) setPosition(records []eventlog.Record, reset eventlog.Offsets) {
	p.positionMu.Lock()
	defer p.positionMu.Unlock()
	if reset != nil {
		p.position = maps.Clone(reset)
	}
	for _, rec := range records {
		p.position[rec.Partition] = rec.Offset + 1
	}
}

// Stats returns the processor's counters.
func (p *Processor) Stats() Stats {
	return Stats{
		Succeeded:     p.succeeded.Load(),
		Rejected:      p.rejected.Load(),
		Duplicates:    p.duplicates.Load(),
		Malformed:     p.malformed.Load(),
		EventsReplay:  p.replayed.Load(),
		CommandsSeen:  p.commandsSeen.Load(),
		DecidedIDs:    p.decidedIDs.Load(),
		ReplayedReady: p.ready.Load(),
	}
}

// run is the state of one Run: owned by its goroutine alone.
type run struct {
	*Processor
	writer  EventWriter
	state   *domain.State
	handled *decided.Set     // command ids that have an outcome, in the Window
	resume  eventlog.Offsets // next commands offset per partition
	// reported is the size of handled last added to the Processor's
	// decidedIDs (reportWindow); a run takes it back when it ends.
	reported int64
}

// reportWindow brings the Processor's count of decided ids up to date.
func (r *run) reportWindow() {
	n := int64(r.handled.Len())
	r.decidedIDs.Add(n - r.reported)
	r.reported = n
}

// end takes the run's decided ids out of the Processor's count.
func (r *run) end() { r.decidedIDs.Add(-r.reported) }

// newRun returns the state of one run (or one owned partition's run) that
// writes through writer: empty, to be rebuilt by its replay.
func (p *Processor) newRun(writer EventWriter) *run {
	return &run{
		Processor: p,
		writer:    writer,
		state:     domain.NewState(),
		handled:   decided.New(p.window),
		resume:    eventlog.Offsets{},
	}
}

// Run replays, then processes commands until ctx is done or the log fails.
// See the package comment for the protocol.
func (p *Processor) Run(ctx context.Context) error {
	if p.group != nil {
		return p.runPartitioned(ctx)
	}
	p.ready.Store(false)
	defer p.ready.Store(false)
	writer, err := p.openWriter(ctx)
	if err != nil {
		return fmt.Errorf("open the events writer: %w", err)
	}
	defer writer.Close()
	r := p.newRun(writer)
	defer r.end()
	start := time.Now()
	p.replayed.Store(0)
	from := r.restore(ctx, nil)
	err = p.log.Follow(ctx, p.eventsTopic, from, r.replayEvents)
	if !errors.Is(err, eventlog.ErrStopFollowing) {
		return fmt.Errorf("replay events: %w", err)
	}
	if err := r.checkCommands(ctx); err != nil {
		return err
	}
	r.handled.Advance(p.now())
	r.reportWindow()
	p.logger.Info().Int64("events", p.replayed.Load()).Any("from", from).Int("values", r.state.Len()).
		Any("resume_at", r.resume).Dur("took", time.Since(start)).Msg("replayed events; processing commands")
	p.setPosition(nil, r.resume)
	p.ready.Store(true)
	p.checkedOnce.Do(func() { close(p.checked) })
	err = p.log.Follow(ctx, p.commandsTopic, r.resume, r.processCommands)
	return fmt.Errorf("process commands: %w", err)
}

// restore starts the run from the newest usable snapshot of the given
// events partitions (every one when nil), if there is one, and returns
// where the replay goes on: the snapshot's position, or nil (offset 0).
func (r *run) restore(ctx context.Context, partitions []int32) eventlog.Offsets {
	if r.snapshot == nil {
		return nil
	}
	fold, state, err := r.snapshot(ctx, partitions)
	if err == nil && partitions == nil && len(fold.Decided) > 1 {
		err = fmt.Errorf("the snapshot keeps a window of decided ids for each of %d partitions; this processor keeps one", len(fold.Decided))
	}
	switch {
	case errors.Is(err, snapshot.ErrNone):
		return nil
	case err != nil:
		r.logger.Warn().Err(err).Ints32("partitions", partitions).Msg("no snapshot can be used; replaying the events from offset 0")
		return nil
	}
	r.state = state
	for partition, ring := range fold.Decided {
		if partitions == nil || slices.Contains(partitions, partition) {
			r.handled = decided.FromRing(ring)
		}
	}
	from := eventlog.Offsets{}
	for partition, offset := range fold.Position {
		if partitions == nil || slices.Contains(partitions, partition) {
			from[partition] = offset
		}
	}
	for partition, offset := range fold.Resume {
		if partitions == nil || slices.Contains(partitions, partition) {
			r.resume[partition] = offset
		}
	}
	r.logger.Info().Any("position", from).Int("values", state.Len()).Int("decided_ids", r.handled.Len()).
		Msg("starting from a snapshot")
	return from
}

// checkCommands is step 2 of the protocol: the commands topic must end
// past every command that the replayed events answer.
func (r *run) checkCommands(ctx context.Context) error {
	end, err := r.log.End(ctx, r.commandsTopic)
	if err != nil {
		return fmt.Errorf("end of the commands topic: %w", err)
	}
	lost := &LostCommandsError{Commands: r.topicName(r.commandsTopic), Events: r.topicName(r.eventsTopic)}
	for _, partition := range slices.Sorted(maps.Keys(r.resume)) {
		if next := r.resume[partition]; end[partition] < next {
			lost.Partitions = append(lost.Partitions, LostCommands{Partition: partition, End: end[partition], LastAnswered: next - 1})
		}
	}
	if len(lost.Partitions) > 0 {
		return lost
	}
	return nil
}

func (r *run) replayEvents(b eventlog.Batch) error {
	for _, rec := range b.Records {
		e, err := domain.DecodeEvent(rec.Value)
		if err != nil {
			r.malformed.Add(1)
			r.logger.Warn().Err(err).Int32("partition", rec.Partition).Int64("offset", rec.Offset).
				Str("topic", r.eventsTopic).Msg("skipping undecodable event")
			continue
		}
		if _, _, err := r.state.Apply(e); err != nil {
			r.logger.Warn().Err(err).Int64("offset", rec.Offset).Msg("skipping event that does not fit the state")
		}
		r.handled.Add(e.ParentID, e.Timestamp)
		if partition, offset, ok := eventlog.CommandPosition(rec.Headers); ok && offset >= r.resume[partition] {
			r.resume[partition] = offset + 1
		}
	}
	r.replayed.Add(int64(len(b.Records)))
	if b.CaughtUp {
		return eventlog.ErrStopFollowing
	}
	return nil
}

func (r *run) processCommands(b eventlog.Batch) error {
	if len(b.Records) == 0 {
		return nil
	}
	r.commandsSeen.Add(int64(len(b.Records)))
	events := make([]eventlog.Message, 0, len(b.Records))
	var decided []domain.Event // only kept for debug logging
	debug := r.logger.Debug().Enabled()
	now := r.now()
	var succeeded, rejected int64
	for _, rec := range b.Records {
		c, err := domain.DecodeCommand(rec.Value)
		if err != nil {
			r.malformed.Add(1)
			r.logger.Warn().Err(err).Str("topic", r.commandsTopic).Int32("partition", rec.Partition).
				Int64("offset", rec.Offset).Msg("skipping undecodable command")
			continue
		}
		if r.handled.Has(c.ID) {
			r.duplicates.Add(1)
			r.logger.Debug().Stringer("command_id", c.ID).Int64("offset", rec.Offset).
				Msg("command already has an outcome; skipping the repeat")
			continue
		}
		e := domain.Decide(r.state, c, now)
		if _, _, err := r.state.Apply(e); err != nil {
			// Decide only produces events that fit the state it saw.
			return fmt.Errorf("apply own decision for command %s: %w", c.ID, err)
		}
		r.handled.Add(c.ID, e.Timestamp)
		if e.Action == domain.CommandRejected {
			rejected++
		} else {
			succeeded++
		}
		if debug {
			decided = append(decided, e)
			r.logger.Debug().Stringer("command_id", c.ID).Stringer("value_id", c.ValueID).Str("outcome", string(e.Action)).
				Str("reason", string(e.Reason)).Msg("command validated")
		}
		events = append(events, eventlog.Message{
			Key:     []byte(c.ValueID.String()),
			Value:   e.AppendJSON(nil),
			Headers: eventlog.CommandPositionHeaders(rec.Partition, rec.Offset),
		})
	}
	if len(events) == 0 {
		r.setPosition(b.Records, nil)
		return nil
	}
	// Finish this batch even when shutdown has begun: the outcome of a
	// command we decided should reach the log if the log can take it.
	ctx, cancel := context.WithTimeout(context.Background(), r.writeTimeout)
	defer cancel()
	if err := r.writer.Append(ctx, r.eventsTopic, events...); err != nil {
		return fmt.Errorf("append %d events: %w", len(events), err)
	}
	r.setPosition(b.Records, nil)
	r.reportWindow()
	r.succeeded.Add(succeeded)
	r.rejected.Add(rejected)
	for _, e := range decided {
		r.logger.Debug().Stringer("command_id", e.ParentID).Stringer("event_id", e.ID).Str("action", string(e.Action)).
			Int("batch", len(events)).Msg("event sent")
	}
	return nil
}
