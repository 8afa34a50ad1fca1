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
//  1. Replay. Fold the events topic from offset 0 into a fresh state, note
//     which command ids already have an outcome and, from each event's
//     command-partition/command-offset headers, the position of the last
//     command with an outcome in every commands partition.
//  2. Caught up. Once the replay has reached the end of the events topic,
//     Ready reports true and the processor starts reading commands exactly
//     after those positions.
//  3. Process. For each batch of commands: decode each record (an
//     undecodable one is logged with its position, counted and skipped),
//     skip a command id that already has an outcome (a command written twice),
//     Decide the outcome, Apply it to the state, and append the batch's events
//     with one Append. The events carry their command's position, so the
//     events topic alone says how far the processor got: a crash between two
//     appends, or in the middle of one, loses nothing and repeats nothing,
//     because the next Run starts from what the events topic holds. On
//     Kafka each Append is one transaction, so a batch's events, and the
//     positions they carry, become visible together or not at all.
//  4. Shutdown. When ctx is done, Run finishes the append in flight and
//     returns ctx.Err(). Any other error (the log failed) also ends Run;
//     the state may then be ahead of the log, so the caller starts a new Run,
//     which rebuilds everything from the log.
//
// That is the single-writer protocol, for the embedded log and one process.
// With WithGroup, Run is in partitioned mode instead (partitioned.go):
// several instances split the partitions through a group, and each owned
// partition goes through the same steps on its own.
package processor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/domain"
	"calculator/eventlog"
)

// Log is what the processor needs of the log: it reads both topics and is
// the only writer of the events topic.
type Log interface {
	Follow(ctx context.Context, topic string, from eventlog.Offsets, fn func(eventlog.Batch) error) error
	Append(ctx context.Context, topic string, msgs ...eventlog.Message) error
}

// Stats are the processor's counters since the process started.
type Stats struct {
	Succeeded     int64 // commands answered with ValueCreated or ValueUpdated
	Rejected      int64 // commands answered with CommandRejected
	Duplicates    int64 // command records skipped because their id already had an outcome
	Malformed     int64 // command or event records that could not be decoded
	EventsReplay  int64 // events folded by the last replay
	CommandsSeen  int64 // command records read, of any kind
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
		ReplayedReady: p.ready.Load(),
	}
}

// run is the state of one Run: owned by its goroutine alone.
type run struct {
	*Processor
	writer  EventWriter
	state   *domain.State
	handled map[uuid.UUID]struct{} // command ids that have an outcome
	resume  eventlog.Offsets       // next commands offset per partition
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
	r := &run{
		Processor: p,
		writer:    writer,
		state:     domain.NewState(),
		handled:   make(map[uuid.UUID]struct{}),
		resume:    eventlog.Offsets{},
	}
	start := time.Now()
	p.replayed.Store(0)
	err = p.log.Follow(ctx, p.eventsTopic, nil, r.replayEvents)
	if !errors.Is(err, eventlog.ErrStopFollowing) {
		return fmt.Errorf("replay events: %w", err)
	}
	p.logger.Info().Int64("events", p.replayed.Load()).Int("values", r.state.Len()).
		Any("resume_at", r.resume).Dur("took", time.Since(start)).Msg("replayed events; processing commands")
	p.setPosition(nil, r.resume)
	p.ready.Store(true)
	err = p.log.Follow(ctx, p.commandsTopic, r.resume, r.processCommands)
	return fmt.Errorf("process commands: %w", err)
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
		r.handled[e.ParentID] = struct{}{}
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
		if _, done := r.handled[c.ID]; done {
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
		r.handled[c.ID] = struct{}{}
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
	r.succeeded.Add(succeeded)
	r.rejected.Add(rejected)
	for _, e := range decided {
		r.logger.Debug().Stringer("command_id", e.ParentID).Stringer("event_id", e.ID).Str("action", string(e.Action)).
			Int("batch", len(events)).Msg("event sent")
	}
	return nil
}
