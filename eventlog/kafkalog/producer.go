package kafkalog

import (
	"context"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"calculator/eventlog"
)

// ownedProducer is a librdkafka producer and the goroutine that serves its
// Events channel, which ends when the producer is closed.
type ownedProducer struct {
	*kafka.Producer
	drained chan struct{} // closed when the event drain has ended
}

// newOwnedProducer creates a producer with the Log's client configuration
// plus props, and starts its event drain.
func (l *Log) newOwnedProducer(role string, props kafka.ConfigMap) (*ownedProducer, error) {
	p, err := kafka.NewProducer(l.clientConfig(role, props))
	if err != nil {
		return nil, err
	}
	op := &ownedProducer{Producer: p, drained: make(chan struct{})}
	go func() {
		defer close(op.drained)
		l.drainProducerEvents(p, role)
	}()
	return op, nil
}

// close closes the producer and waits for its event drain to end.
func (p *ownedProducer) close() {
	p.Close()
	<-p.drained
}

// newProducer creates the shared idempotent producer.
func (l *Log) newProducer() (*ownedProducer, error) {
	p, err := l.newOwnedProducer("producer", kafka.ConfigMap{
		"enable.idempotence":         true,
		"acks":                       "all",
		"linger.ms":                  5,
		"compression.type":           "lz4",
		"partitioner":                "murmur2_random",
		"message.timeout.ms":         int(l.cfg.DeliveryTimeout.Milliseconds()),
		"go.delivery.report.fields":  "none",
		"queue.buffering.max.kbytes": 64 << 10,
	})
	if err != nil {
		return nil, fmt.Errorf("kafkalog: create producer: %w", err)
	}
	l.lastDelivery.Store(time.Now().UnixNano())
	return p, nil
}

// Append implements eventlog.Log.
func (l *Log) Append(ctx context.Context, topic string, msgs ...eventlog.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	// Buffered for every report, so librdkafka's poller never waits for us,
	// even after we stop listening.
	reports := make(chan kafka.Event, len(msgs))
	if err := l.produce(topic, msgs, reports); err != nil {
		return err
	}
	var failed error
	for range msgs {
		select {
		case ev := <-reports:
			m, ok := ev.(*kafka.Message)
			switch {
			case !ok:
			case m.TopicPartition.Error == nil:
				l.lastDelivery.Store(time.Now().UnixNano())
			case failed == nil:
				failed = fmt.Errorf("kafkalog: append to %s: %w", topic, m.TopicPartition.Error)
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-l.destroyed:
			// Close flushed what it could; a report that did not come by now never will.
			return eventlog.ErrClosed
		}
	}
	return failed
}

func (l *Log) produce(topic string, msgs []eventlog.Message, reports chan kafka.Event) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.isClosed {
		return eventlog.ErrClosed
	}
	for i, m := range msgs {
		if err := l.producer.Produce(toKafka(&topic, m), reports); err != nil {
			// The messages before i are on their way; the caller's retry
			// may duplicate them, which the contract allows.
			return fmt.Errorf("kafkalog: append to %s (message %d of %d): %w", topic, i+1, len(msgs), err)
		}
	}
	return nil
}

// toKafka is m as a Kafka message to topic, partitioned by its key.
func toKafka(topic *string, m eventlog.Message) *kafka.Message {
	km := &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: topic, Partition: kafka.PartitionAny},
		Key:            m.Key,
		Value:          m.Value,
		Headers:        convertHeaders[kafka.Header](m.Headers),
	}
	return km
}

// convertHeaders converts headers between the log's type and Kafka's, which
// are the same struct; none gives nil.
func convertHeaders[To, From ~struct {
	Key   string
	Value []byte
}](hs []From) []To {
	if len(hs) == 0 {
		return nil
	}
	out := make([]To, len(hs))
	for i, h := range hs {
		out[i] = To(h)
	}
	return out
}

// currentProducer is the shared producer (the watchdog may replace it).
func (l *Log) currentProducer() *ownedProducer {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.producer
}

// replaceProducer swaps in a new producer and retires the old one with
// what it still holds: those messages were never acknowledged, and their
// appends have given up or will fail.
func (l *Log) replaceProducer() error {
	p, err := l.newProducer()
	if err != nil {
		return err
	}
	l.mu.Lock()
	if l.isClosed {
		l.mu.Unlock()
		p.close()
		return eventlog.ErrClosed
	}
	old := l.producer
	l.producer = p
	l.mu.Unlock()
	l.retire(old, nil)
	return nil
}

// retire purges and closes p in the background once busy is closed (at once
// when busy is nil): closing a wedged client, or one under a librdkafka call
// that has not returned, can block for good, and must not block its caller.
// Close waits for retired clients, up to closeFlushTimeout. A client retired
// after Close is abandoned as it is, with an error in the log.
func (l *Log) retire(p *ownedProducer, busy <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isClosed {
		l.logger.Error().Msg("a Kafka client was retired after the log closed: abandoning it (close transactional writers before the log)")
		return
	}
	done := make(chan struct{})
	l.retiring = append(l.retiring, done)
	go func() {
		defer close(done)
		if busy != nil {
			<-busy
		}
		p.Purge(kafka.PurgeQueue | kafka.PurgeInFlight | kafka.PurgeNonBlocking)
		p.close()
	}()
}

// waitRetired waits for the retired clients to close, up to timeout in all,
// and logs the ones that did not (their goroutines stay blocked in
// librdkafka: nothing in Go can stop them).
func (l *Log) waitRetired(timeout time.Duration) {
	l.mu.RLock()
	retiring := l.retiring
	l.mu.RUnlock()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for i, done := range retiring {
		select {
		case <-done:
		case <-deadline.C:
			l.logger.Error().Int("clients", len(retiring)-i).Dur("waited", timeout).
				Msg("retired Kafka clients did not close (librdkafka issue #5511): abandoning them")
			return
		}
	}
}

// drainProducerEvents serves the producer's Events channel, which carries
// what has no delivery channel of its own: client-level errors. It ends
// when the producer is closed.
func (l *Log) drainProducerEvents(p *kafka.Producer, role string) {
	for ev := range p.Events() {
		switch e := ev.(type) {
		case kafka.Error:
			l.clientError(role, e)
		case *kafka.Message:
			// No delivery channel: a transactional producer's report.
			if e.TopicPartition.Error != nil {
				l.logger.Debug().Err(e.TopicPartition.Error).Str("client", role).Msg("delivery failed")
			}
		}
	}
}
