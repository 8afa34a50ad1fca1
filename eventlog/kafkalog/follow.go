package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"calculator/eventlog"
)

const (
	// maxBatchRecords bounds the records Follow delivers in one batch (and
	// so the commands the processor answers in one transaction).
	maxBatchRecords = 4096
	// pollInterval is how long Follow waits for a record before it looks at
	// its context and at Close again. A record that arrives wakes it at once.
	pollInterval = 100 * time.Millisecond
)

// Follow implements eventlog.Log.
//
// Each call has a consumer of its own, assigned every partition of topic
// from the given offsets (0 when missing; an offset Kafka no longer has
// starts at the earliest it has). The group id is unique and never
// committed to: the position lives in the caller. Transient broker errors
// are retried by librdkafka, so Follow only returns for ctx, Close, fn, or a
// fatal error.
//
// The end of the replay: before it reads, Follow asks for the topic's end
// (End: the last stable offset of each partition), and sets CaughtUp on the
// first batch after which the consumer's position has reached it in every
// partition. The position is the consumer's own (Consumer.Position), which
// moves past transaction markers and aborted records that no reader ever
// receives: the last offsets before the end are often such markers, so a
// record count, or the offset of the last record, would never get there. A
// partition-EOF event counts as reaching the end too. So a replay ends while
// writers keep appending; waiting for an EOF in every partition alone did
// not, because the consumer never sees one while records keep arriving.
func (l *Log) Follow(ctx context.Context, topic string, from eventlog.Offsets, fn func(eventlog.Batch) error) error {
	return l.FollowPartitions(ctx, topic, nil, from, fn)
}

// FollowPartitions is Follow restricted to the given partitions of topic
// (every partition when nil): CaughtUp then speaks of those alone. The
// owner of a partition (see processor's partitioned mode) reads its
// partition of each topic this way. A partition the topic does not have is
// an error.
func (l *Log) FollowPartitions(ctx context.Context, topic string, only []int32, from eventlog.Offsets, fn func(eventlog.Batch) error) error {
	for p, o := range from {
		if o < 0 {
			return fmt.Errorf("kafkalog: follow %s: negative offset %d in partition %d", topic, o, p)
		}
	}
	if !l.startReader() {
		return eventlog.ErrClosed
	}
	defer l.follows.Done()

	c, err := l.newFollowConsumer(topic)
	if err != nil {
		return err
	}
	defer func() { c.Close() }() // c is replaced when it stalls

	partitions, err := l.waitPartitions(ctx, c, topic)
	if err != nil {
		return err
	}
	if only != nil {
		for _, p := range only {
			if !slices.Contains(partitions, p) {
				return fmt.Errorf("kafkalog: follow %s: no partition %d (the topic has %d)", topic, p, len(partitions))
			}
		}
		partitions = only
	}
	end, err := l.waitEnd(ctx, topic)
	if err != nil {
		return err
	}
	assignment := make([]kafka.TopicPartition, len(partitions))
	for i, p := range partitions {
		assignment[i] = kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.Offset(from[p])}
	}
	if err := c.Assign(assignment); err != nil {
		return fmt.Errorf("kafkalog: follow %s: assign: %w", topic, err)
	}
	f := newFollower(topic, assignment, end)
	for {
		err := l.followLoop(ctx, c, f, fn)
		if !errors.Is(err, errFollowStalled) {
			return err
		}
		// A wedged consumer: go on from where the reader is, with a new one.
		l.logger.Warn().Str("topic", topic).Any("position", f.next).Dur("silent_for", followStallAfter).
			Msg("the topic's consumer delivers nothing while the topic holds records past it; replacing it")
		c.Close()
		if c, err = l.newFollowConsumer(topic); err != nil {
			return err
		}
		resume := make([]kafka.TopicPartition, len(f.assignment))
		for i, tp := range f.assignment {
			resume[i] = kafka.TopicPartition{Topic: tp.Topic, Partition: tp.Partition, Offset: kafka.Offset(f.next[tp.Partition])}
		}
		if err := c.Assign(resume); err != nil {
			return fmt.Errorf("kafkalog: follow %s: assign: %w", topic, err)
		}
	}
}

// newFollowConsumer returns a consumer of its own for one Follow.
func (l *Log) newFollowConsumer(topic string) (*kafka.Consumer, error) {
	c, err := kafka.NewConsumer(l.clientConfig("follow-"+topic, kafka.ConfigMap{
		"group.id":                 "calculator-follow-" + uuid.NewString(),
		"enable.auto.commit":       false,
		"enable.auto.offset.store": false,
		"enable.partition.eof":     true,
		"isolation.level":          "read_committed",
		"auto.offset.reset":        "earliest",
		"fetch.wait.max.ms":        100,
		// Prefetch up to 16 MiB; when the queue is that full, fetch again
		// as soon as the reader drains it (librdkafka's default pause is 1s,
		// which made replays crawl).
		"queued.max.messages.kbytes": 16 << 10,
		"fetch.queue.backoff.ms":     10,
	}))
	if err != nil {
		return nil, fmt.Errorf("kafkalog: follow %s: create consumer: %w", topic, err)
	}
	return c, nil
}

// The follow watchdog. librdkafka 2.15's consumer can stay wedged after a
// broker restart (seen in TestKafkaOutages: the processor's consumer
// fetched nothing for 90 s with 241 commands past it). So when a Follow has
// received nothing for followStallAfter, it asks for the topic's end every
// followStallCheck; if some partition holds records past the reader's
// position, the consumer is replaced by a new one at that position. Nothing
// is delivered twice or skipped: the position is the follower's.
const (
	followStallAfter = 15 * time.Second
	followStallCheck = 5 * time.Second
)

// errFollowStalled ends a followLoop whose consumer is wedged.
var errFollowStalled = errors.New("kafkalog: follow: the consumer delivers nothing")

// stalled tells whether the follower's consumer looks wedged: silent since
// lastReceived, and the topic's end past its position in some partition.
func (f *follower) stalled(now, lastReceived time.Time, end eventlog.Offsets) bool {
	if now.Sub(lastReceived) < followStallAfter {
		return false
	}
	for p, o := range end {
		if o > f.next[p] {
			return true
		}
	}
	return false
}

// startReader counts a reader (Follow, Read, a group's Join) that Close
// waits for, unless the Log is closed: then it reports false. The caller
// calls l.follows.Done when it ends.
func (l *Log) startReader() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.isClosed {
		return false
	}
	l.follows.Add(1)
	return true
}

// waitEnd returns End(topic), asking again (metadataRetry) while the
// brokers cannot answer, until ctx is done or the Log closed.
func (l *Log) waitEnd(ctx context.Context, topic string) (eventlog.Offsets, error) {
	for b := metadataRetry.New(); ; {
		end, err := l.End(ctx, topic)
		if err == nil || ctx.Err() != nil || errors.Is(err, eventlog.ErrClosed) {
			return end, err
		}
		l.logger.Debug().Err(err).Str("topic", topic).Msg("no end of the topic yet")
		if err := l.wait(ctx, b); err != nil {
			return nil, err
		}
	}
}

// follower is the state of one Follow call.
type follower struct {
	topic string
	// assignment is every partition of the topic (the offsets are the
	// starting points, unused after Assign).
	assignment []kafka.TopicPartition
	// next is the position per partition: one past the last record read, or
	// the consumer's position when that is further.
	next eventlog.Offsets
	// endAtStart is the topic's end when Follow began; behind counts the
	// partitions whose position has not reached it yet.
	endAtStart eventlog.Offsets
	behind     int
	// replayed is true once the first CaughtUp is delivered.
	replayed bool
	atEOF    map[int32]bool // partitions whose last event was PartitionEOF
	eofCount int
	batch    []eventlog.Record
	// signalled is true when CaughtUp was delivered and no record came since.
	signalled bool
}

func newFollower(topic string, assignment []kafka.TopicPartition, end eventlog.Offsets) *follower {
	f := &follower{
		topic:      topic,
		assignment: assignment,
		next:       make(eventlog.Offsets, len(assignment)),
		endAtStart: end,
		atEOF:      make(map[int32]bool, len(assignment)),
	}
	for _, tp := range assignment {
		f.next[tp.Partition] = int64(tp.Offset)
		if f.next[tp.Partition] < end[tp.Partition] {
			f.behind++
		}
	}
	return f
}

// advance moves partition p's position to offset if that is further, and
// notes when it reaches the end at start.
func (f *follower) advance(p int32, offset int64) {
	before := f.next[p]
	if offset <= before {
		return
	}
	f.next[p] = offset
	if end := f.endAtStart[p]; before < end && offset >= end {
		f.behind--
	}
}

// readPositions advances every partition to the consumer's position, which
// moves past transaction markers and aborted records as well as records.
func (f *follower) readPositions(c *kafka.Consumer) {
	positions, err := c.Position(f.assignment)
	if err != nil {
		return // the positions from the records stand; EOF still counts
	}
	for _, tp := range positions {
		if tp.Offset >= 0 {
			f.advance(tp.Partition, int64(tp.Offset))
		}
	}
}

// caughtUp tells whether the batch to deliver carries CaughtUp: the first
// time once every partition has reached the end at start, and then each
// time every partition has reported EOF since its last record.
func (f *follower) caughtUp() bool {
	if !f.replayed {
		return f.behind == 0
	}
	return f.eofCount == len(f.assignment)
}

func (f *follower) setEOF(p int32, eof bool) {
	if f.atEOF[p] == eof {
		return
	}
	f.atEOF[p] = eof
	if eof {
		f.eofCount++
	} else {
		f.eofCount--
	}
}

func (l *Log) followLoop(ctx context.Context, c *kafka.Consumer, f *follower, fn func(eventlog.Batch) error) error {
	deliver := func() error {
		f.readPositions(c)
		b := eventlog.Batch{Records: f.batch, Next: maps.Clone(f.next), CaughtUp: f.caughtUp()}
		f.batch = nil
		if b.CaughtUp {
			f.signalled, f.replayed = true, true
		}
		return fn(b)
	}
	if f.caughtUp() { // nothing to replay: an empty topic, or from its end
		if err := deliver(); err != nil {
			return err
		}
	}
	lastReceived, lastCheck := time.Now(), time.Now()
	for {
		if err := l.stopped(ctx); err != nil {
			return err
		}
		if now := time.Now(); len(f.batch) == 0 && now.Sub(lastReceived) >= followStallAfter && now.Sub(lastCheck) >= followStallCheck {
			lastCheck = now
			if l.followStalled(ctx, c, f, lastReceived) {
				return errFollowStalled
			}
		}
		timeout := int(pollInterval.Milliseconds())
		if len(f.batch) > 0 {
			timeout = 0 // deliver what we have as soon as nothing more is waiting
		}
		switch ev := c.Poll(timeout).(type) {
		case nil:
			if !f.replayed {
				// The records before the end may all be delivered, with
				// only markers left: the position says so.
				f.readPositions(c)
			}
			if len(f.batch) > 0 || (!f.replayed && f.caughtUp()) {
				if err := deliver(); err != nil {
					return err
				}
			}
		case *kafka.Message:
			if ev.TopicPartition.Error != nil {
				if err := l.consumerError(f.topic, ev.TopicPartition.Error); err != nil {
					return err
				}
				continue
			}
			lastReceived = time.Now()
			rec := toRecord(ev)
			f.setEOF(rec.Partition, false)
			f.signalled = false
			f.advance(rec.Partition, rec.Offset+1)
			f.batch = append(f.batch, rec)
			if len(f.batch) >= maxBatchRecords || (!f.replayed && f.caughtUp()) {
				if err := deliver(); err != nil {
					return err
				}
			}
		case kafka.PartitionEOF:
			lastReceived = time.Now()
			f.setEOF(ev.Partition, true)
			if int64(ev.Offset) >= 0 {
				f.advance(ev.Partition, int64(ev.Offset))
			}
			if f.endAtStart[ev.Partition] > f.next[ev.Partition] {
				// At the end, so at least at the end at start: an EOF is
				// proof enough even when no offset came with it.
				f.advance(ev.Partition, f.endAtStart[ev.Partition])
			}
			if f.caughtUp() && (!f.signalled || len(f.batch) > 0) {
				if err := deliver(); err != nil {
					return err
				}
			}
		case kafka.Error:
			if err := l.consumerError(f.topic, ev); err != nil {
				return err
			}
		}
	}
}

// followStalled asks for the topic's end (briefly: an unreachable broker is
// not a wedged consumer) and tells whether f's consumer is wedged.
func (l *Log) followStalled(ctx context.Context, c *kafka.Consumer, f *follower, lastReceived time.Time) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	end, err := l.End(ctx, f.topic)
	if err != nil {
		return false
	}
	f.readPositions(c) // past markers the consumer has skipped
	return f.stalled(time.Now(), lastReceived, f.assigned(end))
}

// assigned is end restricted to the partitions f reads (FollowPartitions
// may read some of the topic's only: the others are no sign of a wedge).
func (f *follower) assigned(end eventlog.Offsets) eventlog.Offsets {
	read := make(eventlog.Offsets, len(f.assignment))
	for _, tp := range f.assignment {
		read[tp.Partition] = end[tp.Partition]
	}
	return read
}

// consumerError returns the error that ends a Follow (a fatal one), after
// noting transient ones, which librdkafka retries by itself.
func (l *Log) consumerError(topic string, err error) error {
	var ke kafka.Error
	if errors.As(err, &ke) {
		if ke.IsFatal() {
			return fmt.Errorf("kafkalog: follow %s: %w", topic, ke)
		}
		l.clientError("follow-"+topic, ke)
		return nil
	}
	return fmt.Errorf("kafkalog: follow %s: %w", topic, err)
}

func toRecord(m *kafka.Message) eventlog.Record {
	return eventlog.Record{
		Partition: m.TopicPartition.Partition,
		Offset:    int64(m.TopicPartition.Offset),
		Key:       m.Key,
		Value:     m.Value,
		Headers:   convertHeaders[eventlog.Header](m.Headers),
	}
}

// unknownTopicGrace is how long Follow waits for a topic that the brokers
// do not know: a topic just created may take a moment to reach every broker.
const unknownTopicGrace = 5 * time.Second

// waitPartitions returns topic's partitions, asking again (metadataRetry)
// while the brokers cannot be reached, until ctx is done or the Log closed.
// A topic that the brokers still say does not exist after
// unknownTopicGrace is an error.
func (l *Log) waitPartitions(ctx context.Context, c *kafka.Consumer, topic string) ([]int32, error) {
	began := time.Now()
	for b := metadataRetry.New(); ; {
		md, err := c.GetMetadata(&topic, false, l.timeoutMS(ctx))
		if err == nil {
			if tm, ok := md.Topics[topic]; ok && tm.Error.Code() == kafka.ErrUnknownTopicOrPart && time.Since(began) > unknownTopicGrace {
				return nil, fmt.Errorf("kafkalog: follow %s: %w", topic, tm.Error)
			}
			partitions, perr := topicPartitions(md, topic)
			if perr == nil {
				slices.Sort(partitions)
				return partitions, nil
			}
			err = perr
		}
		l.logger.Debug().Err(err).Str("topic", topic).Msg("no metadata for the topic yet")
		if err := l.wait(ctx, b); err != nil {
			return nil, err
		}
	}
}
