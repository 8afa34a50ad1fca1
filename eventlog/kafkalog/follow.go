package kafkalog

import (
	"context"
	"errors"
	"fmt"
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
	l.mu.RLock()
	if l.isClosed {
		l.mu.RUnlock()
		return eventlog.ErrClosed
	}
	l.follows.Add(1)
	l.mu.RUnlock()
	defer l.follows.Done()

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
		return fmt.Errorf("kafkalog: follow %s: create consumer: %w", topic, err)
	}
	defer c.Close()

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
	assignment := make([]kafka.TopicPartition, len(partitions))
	for i, p := range partitions {
		assignment[i] = kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.Offset(from[p])}
	}
	if err := c.Assign(assignment); err != nil {
		return fmt.Errorf("kafkalog: follow %s: assign: %w", topic, err)
	}
	f := follower{topic: topic, atEOF: make(map[int32]bool, len(partitions)), partitions: len(partitions)}
	return l.followLoop(ctx, c, &f, fn)
}

// follower is the state of one Follow call.
type follower struct {
	topic      string
	partitions int
	atEOF      map[int32]bool // partitions whose last event was PartitionEOF
	eofCount   int
	batch      []eventlog.Record
	// signalled is true when CaughtUp was delivered and no record came since.
	signalled bool
}

func (f *follower) caughtUp() bool { return f.eofCount == f.partitions }

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
		b := eventlog.Batch{Records: f.batch, CaughtUp: f.caughtUp()}
		f.batch = nil
		if b.CaughtUp {
			f.signalled = true
		}
		return fn(b)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.closed:
			return eventlog.ErrClosed
		default:
		}
		timeout := int(pollInterval.Milliseconds())
		if len(f.batch) > 0 {
			timeout = 0 // deliver what we have as soon as nothing more is waiting
		}
		switch ev := c.Poll(timeout).(type) {
		case nil:
			if len(f.batch) > 0 {
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
			f.setEOF(ev.TopicPartition.Partition, false)
			f.signalled = false
			f.batch = append(f.batch, toRecord(ev))
			if len(f.batch) >= maxBatchRecords {
				if err := deliver(); err != nil {
					return err
				}
			}
		case kafka.PartitionEOF:
			f.setEOF(ev.Partition, true)
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
	r := eventlog.Record{
		Partition: m.TopicPartition.Partition,
		Offset:    int64(m.TopicPartition.Offset),
		Key:       m.Key,
		Value:     m.Value,
	}
	if len(m.Headers) > 0 {
		r.Headers = make([]eventlog.Header, len(m.Headers))
		for i, h := range m.Headers {
			r.Headers[i] = eventlog.Header{Key: h.Key, Value: h.Value}
		}
	}
	return r
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
