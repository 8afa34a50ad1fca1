package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"calculator/eventlog"
)

// TxnConfig configures a TransactionalWriter.
type TxnConfig struct {
	// TransactionalID is stable for one logical writer (the processor of
	// one commands topic): a writer opened with it fences every earlier
	// one, in this process or another.
	TransactionalID string
	// OffsetsGroup, when set, is a consumer group to which each transaction
	// also commits, atomically with its messages, the offset after the last
	// input record that Position finds in the messages. The group is never
	// joined; it lets kafka-consumer-groups --describe show the writer's lag.
	OffsetsGroup string
	// OffsetsTopic is the input topic whose offsets go to OffsetsGroup.
	OffsetsTopic string
	// Position returns the input record (partition and offset in
	// OffsetsTopic) that a message answers, if it says so.
	Position func(eventlog.Message) (partition int32, offset int64, ok bool)
	// Partition, when not nil, is the one partition of the topic that every
	// message goes to, whatever its key: the owner of a commands partition
	// writes its events to the events partition of the same number. Nil
	// partitions by key.
	Partition *int32
	// TransactionTimeout is transaction.timeout.ms (default 60s): how long
	// the broker keeps a transaction of a writer that went away open, unless
	// a new writer with the same id aborts it first (which it does at once).
	TransactionTimeout time.Duration
}

// TxnWriter appends each batch in one Kafka transaction: its messages
// become visible to read_committed readers (every Follow) all together, or
// never. Create it with (*Log).TransactionalWriter; Append calls are
// serialized. After an error the writer is spent: close it and open a new
// one, whose opening settles (aborts) whatever the old one left open.
type TxnWriter struct {
	cfg      TxnConfig
	log      *Log
	producer *ownedProducer
	group    *kafka.ConsumerGroupMetadata

	// transact runs one transaction; a field so that tests can make it hang.
	transact func(ctx context.Context, topic string, msgs []eventlog.Message) error
	// stuckGrace is how long past its context's deadline a transaction may
	// take before the writer gives up on it (see Append).
	stuckGrace time.Duration

	mu     sync.Mutex
	failed error
	// stuck, when not nil, is closed when the transaction that outlived its
	// deadline finally returns (if it ever does): until then the producer
	// must not be closed.
	stuck  <-chan struct{}
	closed bool
}

// TransactionalWriter opens a transactional producer and initializes its
// transactions, which fences every older producer with the same id and
// aborts the transaction it left open: once this returns, nothing that an
// earlier writer did not commit can become visible any more. It waits for
// unreachable brokers until ctx is done. Close the writer before the Log.
func (l *Log) TransactionalWriter(ctx context.Context, cfg TxnConfig) (*TxnWriter, error) {
	if cfg.TransactionalID == "" {
		return nil, errors.New("kafkalog: transactional writer without a transactional id")
	}
	if cfg.TransactionTimeout <= 0 {
		cfg.TransactionTimeout = time.Minute
	}
	if l.isClosedNow() {
		return nil, eventlog.ErrClosed
	}
	p, err := l.newOwnedProducer("txn", kafka.ConfigMap{
		"transactional.id":       cfg.TransactionalID,
		"transaction.timeout.ms": int(cfg.TransactionTimeout.Milliseconds()),
		"enable.idempotence":     true,
		"acks":                   "all",
		"linger.ms":              5,
		"compression.type":       "lz4",
		"partitioner":            "murmur2_random",
		// CommitTransaction fails the transaction when a message fails;
		// per-message reports would tell us nothing more.
		"go.delivery.reports": false,
	})
	if err != nil {
		return nil, fmt.Errorf("kafkalog: create transactional producer: %w", err)
	}
	w := &TxnWriter{cfg: cfg, log: l, producer: p, stuckGrace: 10 * time.Second}
	w.transact = w.transactKafka
	if cfg.OffsetsGroup != "" {
		// The group's metadata without a member: generation -1, which the
		// broker accepts from a writer that is not a group member.
		w.group, err = kafka.NewTestConsumerGroupMetadata(cfg.OffsetsGroup)
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("kafkalog: consumer group metadata: %w", err)
		}
	}
	if err := w.init(ctx); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// init calls InitTransactions in short attempts (it honours only a
// deadline, not a cancellation), with metadataRetry's waits between them,
// until it succeeds, fails for good, or ctx is done.
func (w *TxnWriter) init(ctx context.Context) error {
	for b := metadataRetry.New(); ; {
		attempt, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := w.producer.InitTransactions(attempt)
		cancel()
		if err == nil {
			return nil
		}
		var ke kafka.Error
		if !errors.As(err, &ke) || !(ke.IsRetriable() || ke.IsTimeout() || ke.Code() == kafka.ErrTimedOut) {
			return fmt.Errorf("kafkalog: init transactions: %w", err)
		}
		w.log.logger.Debug().Err(err).Msg("init transactions: retrying")
		if werr := w.log.wait(ctx, b); werr != nil {
			return fmt.Errorf("kafkalog: init transactions: %w (%w)", werr, err)
		}
	}
}

// Append writes msgs to topic in one transaction, with the input offsets
// (see TxnConfig) when configured. It returns nil once the transaction is
// committed. On an error nothing of it is visible unless the commit went
// through before the error (a timeout after the broker committed): readers
// must judge by what the topic holds, as the processor does.
func (w *TxnWriter) Append(ctx context.Context, topic string, msgs ...eventlog.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return eventlog.ErrClosed
	}
	if w.failed != nil {
		return fmt.Errorf("kafkalog: transactional writer failed earlier: %w", w.failed)
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := w.transactWatched(ctx, topic, msgs); err != nil {
		if fenced(err) {
			err = fmt.Errorf("%w (transactional id %s): %w", eventlog.ErrFenced, w.cfg.TransactionalID, err)
		}
		w.failed = err
		return err
	}
	return nil
}

// fenced tells whether err says that a newer producer with the same
// transactional id exists: librdkafka's fatal "fenced" error, or the
// broker's answer to a stale epoch.
func fenced(err error) bool {
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return false
	}
	switch ke.Code() {
	case kafka.ErrFenced, kafka.ErrProducerFenced, kafka.ErrInvalidProducerEpoch:
		return true
	}
	return false
}

// transactWatched runs the transaction and gives up on it when it outlives
// its context's deadline by stuckGrace. librdkafka's transactional calls
// take a timeout, but some of them can block for good after a broker
// restart (send_offsets_to_transaction with a decommissioned coordinator,
// librdkafka issue #5511); the writer then gives up its producer (Close
// leaves it to the Log, which closes it if the call ever returns), and the
// next writer's InitTransactions fences it.
//
// The transaction runs on a goroutine of its own, started with ctx: Append
// waits for it, or, when it is stuck, Close hands it over to the Log.
func (w *TxnWriter) transactWatched(ctx context.Context, topic string, msgs []eventlog.Message) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		return w.transact(ctx, topic, msgs)
	}
	result := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		result <- w.transact(ctx, topic, msgs)
	}()
	watchdog := time.NewTimer(time.Until(deadline) + w.stuckGrace)
	defer watchdog.Stop()
	select {
	case err := <-result:
		return err
	case <-watchdog.C:
		w.stuck = finished
		err := fmt.Errorf("kafkalog: transaction of %d messages still not finished %s after its deadline: abandoning the transactional producer", len(msgs), w.stuckGrace)
		w.log.logger.Error().Err(err).Str("transactional_id", w.cfg.TransactionalID).Msg("librdkafka call stuck")
		return err
	}
}

func (w *TxnWriter) transactKafka(ctx context.Context, topic string, msgs []eventlog.Message) error {
	if err := w.producer.BeginTransaction(); err != nil {
		return fmt.Errorf("kafkalog: begin transaction: %w", err)
	}
	offsets := map[int32]int64{}
	for i, m := range msgs {
		km := toKafka(&topic, m)
		if w.cfg.Partition != nil {
			km.TopicPartition.Partition = *w.cfg.Partition
		}
		if err := w.producer.Produce(km, nil); err != nil {
			return w.abort(ctx, fmt.Errorf("kafkalog: produce message %d of %d to %s: %w", i+1, len(msgs), topic, err))
		}
		if w.group != nil && w.cfg.Position != nil {
			if p, o, ok := w.cfg.Position(m); ok && o+1 > offsets[p] {
				offsets[p] = o + 1
			}
		}
	}
	if len(offsets) > 0 {
		tps := make([]kafka.TopicPartition, 0, len(offsets))
		for p, o := range offsets {
			tps = append(tps, kafka.TopicPartition{Topic: &w.cfg.OffsetsTopic, Partition: p, Offset: kafka.Offset(o)})
		}
		if err := w.producer.SendOffsetsToTransaction(ctx, tps, w.group); err != nil {
			return w.abort(ctx, fmt.Errorf("kafkalog: send offsets to transaction: %w", err))
		}
	}
	for b := metadataRetry.New(); ; {
		err := w.producer.CommitTransaction(ctx)
		if err == nil {
			return nil
		}
		var ke kafka.Error
		if errors.As(err, &ke) && ke.IsRetriable() && b.Wait(ctx) == nil {
			continue // the documented way: call it again
		}
		return w.abort(ctx, fmt.Errorf("kafkalog: commit transaction of %d messages: %w", len(msgs), err))
	}
}

// abort aborts the transaction when the error says it must be (best effort:
// the next writer's InitTransactions aborts it anyway) and returns err.
func (w *TxnWriter) abort(ctx context.Context, err error) error {
	var ke kafka.Error
	if errors.As(err, &ke) && ke.TxnRequiresAbort() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if aerr := w.producer.AbortTransaction(actx); aerr != nil {
			w.log.logger.Debug().Err(aerr).Msg("abort transaction failed; the next writer aborts it")
		}
	}
	return err
}

// Close releases the producer. A transaction it leaves open is aborted by
// the next writer with the same id, or by the broker after the transaction
// timeout.
func (w *TxnWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if w.stuck != nil {
		// A call into it has not returned: destroying the client under that
		// call is not safe, and closing it would block as well. The Log
		// closes it once the call returns (fenced by the next writer
		// meanwhile), without holding this Close.
		w.log.retire(w.producer, w.stuck)
		return nil
	}
	if w.failed != nil {
		w.producer.Purge(kafka.PurgeQueue | kafka.PurgeInFlight | kafka.PurgeNonBlocking)
	}
	w.producer.close()
	return nil
}
