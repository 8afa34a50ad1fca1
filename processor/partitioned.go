package processor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"calculator/eventlog"
	"calculator/internal/retry"
)

// Partitioned mode (WithGroup): several instances share the commands topic
// through a group (Kafka's consumer group, SPEC §6), and each decides only
// the partitions the group gives it. The events topic has as many partitions
// as the commands topic, and the outcome of a command goes to the events
// partition of the same number, so a partition is a small processor of its
// own: its state is the fold of its events partition alone.
//
// Protocol of Run in partitioned mode:
//
//  1. Join. Run joins the group and serves it until ctx is done. Ready is
//     true, and Checked closed, from the start: the partitions are the
//     group's, not this instance's, and it may own none for a while (a
//     group waits out the session timeout of a member that crashed before
//     it gives its partitions to anyone, the crashed instance's successor
//     included), while the instance serves the whole API. Ownership says
//     whether it has joined, which partitions it owns and which of those
//     still replay.
//  2. Assigned. Each partition given to this instance gets an owner: a
//     goroutine that opens the partition's writer first (on Kafka a
//     transactional producer whose id is the events topic and the partition:
//     opening it fences the partition's former owner and aborts what it left
//     open), then replays that events partition from offset 0 into a fresh
//     state, or from this instance's newest usable snapshot of it (as Run's
//     step 1, for one partition; a partition that moved here from another
//     instance starts from this instance's snapshot), checks that the commands
//     partition holds every command those events answer (Run's step 2; when
//     it does not, ErrCommandsLost ends the whole Run), then decides the
//     commands of that commands partition from just after the last one with
//     an outcome, single-threaded and in order, one transaction per batch.
//     Each owner keeps its own window of decided command ids (Window, per
//     partition: a repeat lands in the partition of its first, since both
//     have the same key), so an instance owning k partitions may hold up to
//     k windows.
//  3. Revoked. The owner is cancelled; it finishes the batch in flight (its
//     transaction commits or fails as a whole), closes its writer and ends
//     before the group may give the partition to another instance. When the
//     group took the partition without asking (this instance missed its
//     session timeout: a pause, say), another owner may exist already and
//     has fenced this one's writer: its next commit fails with
//     eventlog.ErrFenced and nothing of it becomes visible.
//  4. Failures. An owner whose log fails rebuilds its partition from the log
//     after a backoff. One that is fenced while the group still says the
//     partition is its own waits FencedWait before it takes it back: the
//     group's verdict (a revocation) normally comes first, and retaking at
//     once would fence the rightful owner in turn.
//  5. Shutdown. When ctx is done, every owner stops as in 3 before the
//     instance leaves the group, so the others take over at once.

// Group shares the partitions of the commands topic among the processors
// of every instance. kafkalog.Group implements it; see its Join for the
// contract: assigned and revoked come from one goroutine, one at a time,
// and the group gives a revoked partition to nobody else before revoked
// returns (unless lost).
type Group interface {
	Join(ctx context.Context, assigned func(partitions []int32), revoked func(partitions []int32, lost bool)) error
}

// PartitionLog reads given partitions of a topic, as eventlog.Log's Follow
// reads all of them (CaughtUp then speaks of those partitions alone).
type PartitionLog interface {
	FollowPartitions(ctx context.Context, topic string, partitions []int32, from eventlog.Offsets, fn func(eventlog.Batch) error) error
}

// DefaultFencedWait is how long a fenced owner waits for the group's verdict
// before it takes its partition back (see the protocol, step 4).
const DefaultFencedWait = 20 * time.Second

// WithGroup switches Run to partitioned mode (see above): group says which
// commands partitions this instance decides, log reads single partitions,
// and open returns the writer of one events partition, which writes every
// event to that partition and fences the partition's former writers when it
// is opened. fencedWait is step 4's wait (DefaultFencedWait when 0).
func WithGroup(group Group, log PartitionLog, open func(ctx context.Context, partition int32) (EventWriter, error), fencedWait time.Duration) Option {
	if fencedWait <= 0 {
		fencedWait = DefaultFencedWait
	}
	return func(p *Processor) {
		p.group = &groupMode{group: group, log: log, open: open, fencedWait: fencedWait, owners: map[int32]*owner{}}
	}
}

// groupMode is the partitioned mode's part of a Processor.
type groupMode struct {
	group      Group
	log        PartitionLog
	open       func(ctx context.Context, partition int32) (EventWriter, error)
	fencedWait time.Duration
	fenced     atomic.Int64
	// stop ends the current runPartitioned (its Join) with fatal, when an
	// owner finds an error that no new attempt can mend.
	stop  context.CancelFunc
	fatal atomic.Pointer[error]

	mu     sync.Mutex
	owners map[int32]*owner // the partitions this instance owns now
	// joined is set by the first assignment (possibly of no partition).
	joined bool
}

// owner is the goroutine that decides one partition.
type owner struct {
	cancel     context.CancelFunc
	done       chan struct{}
	processing atomic.Bool // replayed, deciding commands
}

// Ownership is what a processor in partitioned mode owns.
type Ownership struct {
	Joined     bool    // the group has assigned partitions (possibly none) to this instance
	Partitions []int32 // owned now, in order
	Replaying  []int32 // of those, the ones still replaying
	Fenced     int64   // times an owner found its writer fenced, since start
}

// Ownership returns the partitions this processor owns, and false when it
// is not in partitioned mode (it then decides every partition).
func (p *Processor) Ownership() (Ownership, bool) {
	g := p.group
	if g == nil {
		return Ownership{}, false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	o := Ownership{Joined: g.joined, Partitions: slices.Sorted(maps.Keys(g.owners)), Fenced: g.fenced.Load()}
	for _, partition := range o.Partitions {
		if !g.owners[partition].processing.Load() {
			o.Replaying = append(o.Replaying, partition)
		}
	}
	return o, true
}

// Behind returns how many commands of end (the commands topic's end) this
// processor has still to handle: in every partition before Position, or
// in partitioned mode in the partitions it owns (the others are another
// instance's). A partition missing from Position counts from offset 0.
func (p *Processor) Behind(end eventlog.Offsets) int64 {
	var owned []int32
	if p.group != nil {
		owned = p.ownedPartitions()
	}
	position := p.Position()
	var n int64
	for partition, offset := range end {
		if p.group != nil && !slices.Contains(owned, partition) {
			continue
		}
		n += max(0, offset-position[partition])
	}
	return n
}

// runPartitioned is Run in partitioned mode.
func (p *Processor) runPartitioned(parent context.Context) error {
	g := p.group
	p.ready.Store(false)
	defer p.ready.Store(false)
	p.replayed.Store(0)
	ctx, stop := context.WithCancel(parent)
	defer stop()
	g.mu.Lock()
	g.joined, g.stop = false, stop
	g.mu.Unlock()
	g.fatal.Store(nil)
	p.positionMu.Lock()
	p.position = eventlog.Offsets{}
	p.positionMu.Unlock()
	p.ready.Store(true) // protocol, step 1
	p.checkedOnce.Do(func() { close(p.checked) })

	assigned := func(partitions []int32) { p.assign(ctx, partitions) }
	revoked := func(partitions []int32, lost bool) { p.revoke(partitions, lost) }
	err := g.group.Join(ctx, assigned, revoked)
	p.revoke(p.ownedPartitions(), false) // Join revokes all; this is for a Join that failed early
	if fatal := g.fatal.Load(); fatal != nil {
		return *fatal
	}
	if parent.Err() != nil {
		return parent.Err()
	}
	return fmt.Errorf("consumer group: %w", err)
}

func (p *Processor) ownedPartitions() []int32 {
	p.group.mu.Lock()
	defer p.group.mu.Unlock()
	return slices.Sorted(maps.Keys(p.group.owners))
}

// assign starts an owner for each partition (the group's goroutine).
func (p *Processor) assign(ctx context.Context, partitions []int32) {
	g := p.group
	g.mu.Lock()
	for _, partition := range partitions {
		if _, ok := g.owners[partition]; ok {
			continue
		}
		octx, cancel := context.WithCancel(ctx)
		o := &owner{cancel: cancel, done: make(chan struct{})}
		g.owners[partition] = o
		go func() {
			defer close(o.done)
			p.own(octx, partition, o)
		}()
	}
	first := !g.joined
	g.joined = true
	owned := slices.Sorted(maps.Keys(g.owners))
	g.mu.Unlock()
	event := p.logger.Info()
	if len(partitions) == 0 && !first {
		event = p.logger.Debug() // a rebalance that gave this instance nothing new
	}
	event.Ints32("assigned", partitions).Ints32("owned", owned).Msg("partitions assigned")
}

// revoke stops the owners of the partitions and waits until they have
// stopped writing (the group's goroutine, or runPartitioned at the end).
func (p *Processor) revoke(partitions []int32, lost bool) {
	g := p.group
	g.mu.Lock()
	var stopping []*owner
	for _, partition := range partitions {
		if o, ok := g.owners[partition]; ok {
			o.cancel()
			stopping = append(stopping, o)
		}
	}
	g.mu.Unlock()
	if len(stopping) == 0 {
		return
	}
	began := time.Now()
	for _, o := range stopping {
		<-o.done
	}
	g.mu.Lock()
	for _, partition := range partitions {
		delete(g.owners, partition)
	}
	owned := slices.Sorted(maps.Keys(g.owners))
	g.mu.Unlock()
	p.positionMu.Lock()
	for _, partition := range partitions {
		delete(p.position, partition)
	}
	p.positionMu.Unlock()
	event := p.logger.Info()
	if lost {
		event = p.logger.Warn().Str("why", "this instance missed its session timeout; another may own them already and has fenced their writers")
	}
	event.Ints32("revoked", partitions).Bool("lost", lost).Ints32("owned", owned).
		Dur("stopped_in", time.Since(began)).Msg("partitions revoked")
}

// replayedPartition notes that an owner has replayed its partition.
func (p *Processor) replayedPartition(partition int32, o *owner, resume int64) {
	p.positionMu.Lock()
	p.position[partition] = resume
	p.positionMu.Unlock()
	o.processing.Store(true)
}

// own decides one partition until ctx is done (the partition is revoked),
// rebuilding it from the log after a failure (protocol, step 4).
func (p *Processor) own(ctx context.Context, partition int32, o *owner) {
	backoff := retry.Default.New()
	for {
		started := time.Now()
		err := p.runPartition(ctx, partition, o)
		o.processing.Store(false)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrCommandsLost) {
			// The same logs would give the same answer: the instance stops.
			p.group.fatal.CompareAndSwap(nil, &err)
			p.group.stop()
			return
		}
		if time.Since(started) > time.Minute {
			backoff.Reset() // it ran well for a while: this is a new problem
		}
		wait := backoff.Next()
		if errors.Is(err, eventlog.ErrFenced) {
			p.group.fenced.Add(1)
			wait = max(wait, p.group.fencedWait)
			p.logger.Warn().Err(err).Int32("partition", partition).Dur("retry_in", wait).
				Msg("another owner has fenced this partition's writer; waiting for the group to revoke it")
		} else {
			p.logger.Error().Err(err).Int32("partition", partition).Dur("retry_in", wait).
				Msg("partition owner stopped; rebuilding the partition from the log")
		}
		if retry.Sleep(ctx, wait) != nil {
			return
		}
	}
}

// runPartition opens the partition's writer, replays its events partition
// and decides its commands partition until ctx is done or the log fails.
func (p *Processor) runPartition(ctx context.Context, partition int32, o *owner) error {
	g := p.group
	writer, err := g.open(ctx, partition)
	if err != nil {
		return fmt.Errorf("open the events writer of partition %d: %w", partition, err)
	}
	defer writer.Close()
	r := p.newRun(writer)
	defer r.end()
	start := time.Now()
	var events int64
	from := r.restore(ctx, []int32{partition})
	err = g.log.FollowPartitions(ctx, p.eventsTopic, []int32{partition}, from, func(b eventlog.Batch) error {
		events += int64(len(b.Records))
		return r.replayEvents(b)
	})
	if !errors.Is(err, eventlog.ErrStopFollowing) {
		return fmt.Errorf("replay events partition %d: %w", partition, err)
	}
	if err := r.checkCommands(ctx); err != nil {
		return err
	}
	r.handled.Advance(p.now())
	r.reportWindow()
	resume := r.resume[partition]
	p.logger.Info().Int32("partition", partition).Int64("events", events).Int64("from", from[partition]).Int("values", r.state.Len()).
		Int64("resume_at", resume).Dur("took", time.Since(start)).Msg("replayed events partition; processing its commands")
	p.replayedPartition(partition, o, resume)
	err = g.log.FollowPartitions(ctx, p.commandsTopic, []int32{partition}, eventlog.Offsets{partition: resume}, r.processCommands)
	return fmt.Errorf("process commands partition %d: %w", partition, err)
}
