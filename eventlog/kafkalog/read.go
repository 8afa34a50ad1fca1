package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"calculator/eventlog"
)

const (
	// seekGap is how far ahead the next wanted offset must be for Read to
	// seek to it rather than read through the records in between: a seek
	// costs a fetch round trip, reading through costs bandwidth.
	seekGap = 256
	// maxIdleReaders bounds the consumers kept for the next Read.
	maxIdleReaders = 4
)

// Read implements eventlog.Log.
//
// A consumer (read_committed, like Follow's) is assigned the partition at
// the first offset and reads forward, keeping the records at the wanted
// offsets: a run of nearby offsets (each less than seekGap after the one
// before) costs one stream of fetches, and the consumer seeks over larger
// gaps. An offset that holds no committed record shows itself when the
// next record read is past it, the partition ends first, or the offset is
// out of the partition's range: ErrNoRecord.
//
// Creating a consumer costs a connection and a metadata round trip, so
// Read keeps up to maxIdleReaders of them, unassigned, for the next calls;
// Close closes them. Transient broker errors are retried by librdkafka:
// while the brokers are away Read waits, until ctx is done.
func (l *Log) Read(ctx context.Context, topic string, partition int32, offsets []int64) ([]eventlog.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := eventlog.CheckReadOffsets(offsets); err != nil {
		return nil, fmt.Errorf("kafkalog: read %s: %w", topic, err)
	}
	if len(offsets) == 0 {
		return nil, nil
	}
	// Counted with the Follow calls: Close waits for them before it closes
	// the clients.
	if !l.startReader() {
		return nil, eventlog.ErrClosed
	}
	defer l.follows.Done()

	c, err := l.readers.get(l)
	if err != nil {
		return nil, fmt.Errorf("kafkalog: read %s: %w", topic, err)
	}
	records, err := l.readAt(ctx, c, topic, partition, offsets)
	if uerr := c.Unassign(); uerr != nil {
		// A consumer in a state unknown is not reused.
		c.Close()
		return records, err
	}
	l.readers.put(c)
	return records, err
}

// readAt reads the records at offsets (increasing) of one partition with c.
func (l *Log) readAt(ctx context.Context, c *kafka.Consumer, topic string, partition int32, offsets []int64) ([]eventlog.Record, error) {
	at := func(o int64) kafka.TopicPartition {
		return kafka.TopicPartition{Topic: &topic, Partition: partition, Offset: kafka.Offset(o)}
	}
	if err := c.Assign([]kafka.TopicPartition{at(offsets[0])}); err != nil {
		return nil, fmt.Errorf("kafkalog: read %s: assign: %w", topic, err)
	}
	noRecord := func(o int64) error {
		return fmt.Errorf("kafkalog: read %s partition %d offset %d: %w", topic, partition, o, eventlog.ErrNoRecord)
	}
	records := make([]eventlog.Record, 0, len(offsets))
	for len(records) < len(offsets) {
		if err := l.stopped(ctx); err != nil {
			return nil, err
		}
		want := offsets[len(records)]
		switch ev := c.Poll(int(pollInterval.Milliseconds())).(type) {
		case *kafka.Message:
			tp := ev.TopicPartition
			if tp.Error != nil {
				if offsetGone(tp.Error) {
					return nil, noRecord(want)
				}
				if err := l.consumerError(topic, tp.Error); err != nil {
					return nil, err
				}
				continue
			}
			if *tp.Topic != topic || tp.Partition != partition || int64(tp.Offset) < want {
				continue // between two wanted offsets
			}
			if int64(tp.Offset) > want {
				return nil, noRecord(want)
			}
			records = append(records, toRecord(ev))
			if next := len(records); next < len(offsets) && offsets[next]-want > seekGap {
				if err := c.Seek(at(offsets[next]), 0); err != nil {
					return nil, fmt.Errorf("kafkalog: read %s: seek: %w", topic, err)
				}
			}
		case kafka.PartitionEOF:
			// The end is at ev.Offset: a wanted offset there or beyond holds
			// no record (yet). An end past it is an EOF from before a seek.
			if *ev.Topic == topic && ev.Partition == partition && int64(ev.Offset) <= want {
				return nil, noRecord(want)
			}
		case kafka.Error:
			if offsetGone(ev) {
				return nil, noRecord(want)
			}
			if err := l.consumerError(topic, ev); err != nil {
				return nil, err
			}
		}
	}
	return records, nil
}

// offsetGone reports whether err says that the consumer's offset is out of
// the partition's range (auto.offset.reset is "error"): past its end, or
// before its start (removed by retention).
func offsetGone(err error) bool {
	var ke kafka.Error
	return errors.As(err, &ke) && ke.Code() == kafka.ErrAutoOffsetReset
}

// readerPool keeps idle consumers for Read.
type readerPool struct {
	mu     sync.Mutex
	idle   []*kafka.Consumer
	closed bool
}

// get returns an idle consumer, or a new one.
func (p *readerPool) get(l *Log) (*kafka.Consumer, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	c, err := kafka.NewConsumer(l.clientConfig("read", kafka.ConfigMap{
		// Never joins the group nor commits: the id only has to be unique.
		"group.id":                 "calculator-read-" + uuid.NewString(),
		"enable.auto.commit":       false,
		"enable.auto.offset.store": false,
		"enable.partition.eof":     true,
		"isolation.level":          "read_committed",
		// An offset out of range is an error (offsetGone), not a reason
		// to read the partition from its start.
		"auto.offset.reset": "error",
		// At the end of a partition (a Read of an offset past it), do not
		// wait long for records that will not come.
		"fetch.wait.max.ms": 10,
		// Read wants a few records, not a prefetch of the partition.
		"queued.max.messages.kbytes": 4 << 10,
		"fetch.queue.backoff.ms":     10,
	}))
	if err != nil {
		return nil, fmt.Errorf("create consumer: %w", err)
	}
	return c, nil
}

// put keeps c for the next Read, or closes it when enough are kept or the
// pool is closed.
func (p *readerPool) put(c *kafka.Consumer) {
	p.mu.Lock()
	if !p.closed && len(p.idle) < maxIdleReaders {
		p.idle = append(p.idle, c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	c.Close()
}

// close closes the idle consumers; a consumer put back later is closed
// then.
func (p *readerPool) close() error {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	var errs []error
	for _, c := range idle {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
