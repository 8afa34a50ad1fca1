package kafkalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/eventlog"
	"calculator/eventlog/logtest"
	"calculator/internal/kafkatest"
	"calculator/internal/testlog"
)

// onNewTopic creates a topic of the given partitions, named after prefix,
// and opens a Log on the test brokers, which the test's cleanup closes.
func onNewTopic(tb testing.TB, prefix string, partitions int) (l *Log, brokers, topic string) {
	tb.Helper()
	brokers, topic = kafkatest.Brokers(tb), kafkatest.Topic(prefix)
	kafkatest.CreateTopic(tb, brokers, topic, partitions)
	return newT(tb, Config{Brokers: brokers, Logger: kafkatest.Logger(tb)}), brokers, topic
}

func newT(t testing.TB, cfg Config) *Log {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func backend(brokers string, partitions int) logtest.Backend {
	return logtest.Backend{
		Open: func(t *testing.T) eventlog.Log { return newT(t, Config{Brokers: brokers, Logger: kafkatest.Logger(t)}) },
		Reopen: func(t *testing.T, l eventlog.Log) eventlog.Log {
			if err := l.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return newT(t, Config{Brokers: brokers, Logger: kafkatest.Logger(t)})
		},
		CreateTopic: func(t *testing.T, name string) {
			kafkatest.CreateTopic(t, brokers, name, partitions)
		},
		// The idempotent producer writes no transaction markers.
		ContiguousOffsets: true,
	}
}

func TestConformance(t *testing.T) {
	logtest.Run(t, backend(kafkatest.Brokers(t), 1))
}

// Several partitions: CaughtUp needs an EOF from each of them.
func TestConformanceThreePartitions(t *testing.T) {
	logtest.Run(t, backend(kafkatest.Brokers(t), 3))
}

// txnLog is a Log whose appends go through a TxnWriter, as the processor's
// events do: each Append is one transaction, with its commit marker.
type txnLog struct {
	*Log
	w *TxnWriter
}

func (l txnLog) Append(ctx context.Context, topic string, msgs ...eventlog.Message) error {
	return l.w.Append(ctx, topic, msgs...)
}

func (l txnLog) Close() error {
	return errors.Join(l.w.Close(), l.Log.Close())
}

func openTxnLog(t *testing.T, brokers, id string) txnLog {
	l := newT(t, Config{Brokers: brokers, Logger: kafkatest.Logger(t)})
	w, err := l.TransactionalWriter(kafkatest.Context(t, 60*time.Second), TxnConfig{TransactionalID: id})
	if err != nil {
		t.Fatalf("TransactionalWriter: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return txnLog{Log: l, w: w}
}

// The suite again, with every append a transaction: transaction markers
// take offsets, and CaughtUp must still come (from partition EOF).
func TestConformanceTransactional(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	b := backend(brokers, 1)
	b.ContiguousOffsets = false
	b.Open = func(t *testing.T) eventlog.Log {
		return openTxnLog(t, brokers, "logtest-"+uuid.NewString())
	}
	b.Reopen = func(t *testing.T, l eventlog.Log) eventlog.Log {
		id := l.(txnLog).w.cfg.TransactionalID
		if err := l.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		return openTxnLog(t, brokers, id)
	}
	logtest.Run(t, b)
}

func msg(key, value string) eventlog.Message {
	return eventlog.Message{Key: []byte(key), Value: []byte(value)}
}

// A second writer with the same transactional id fences the first: the
// first can no longer commit, the second can.
func TestTxnWriterFencesOlderWriter(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic("fence")
	kafkatest.CreateTopic(t, brokers, topic, 1)
	id := "fence-" + uuid.NewString()
	old := openTxnLog(t, brokers, id)
	ctx := kafkatest.Context(t, 60*time.Second)
	if err := old.Append(ctx, topic, msg("k", "old-1")); err != nil {
		t.Fatal(err)
	}
	current := openTxnLog(t, brokers, id)
	if err := old.Append(ctx, topic, msg("k", "old-2")); !errors.Is(err, eventlog.ErrFenced) {
		t.Fatalf("the fenced writer's Append = %v, want eventlog.ErrFenced", err)
	} else {
		t.Logf("fenced writer: %v", err)
	}
	if err := current.Append(ctx, topic, msg("k", "new-1")); err != nil {
		t.Fatalf("the current writer: %v", err)
	}
	got := logtest.ReadValues(t, current, topic)
	if want := []string{"old-1", "new-1"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("topic holds %v, want %v", got, want)
	}
}

// A writer that dies in the middle of a transaction (kill -9) leaves it
// open. Readers meanwhile see everything before it and are caught up (EOF
// at the last stable offset, not the high watermark); the next writer with
// the same id aborts it, so its records are never seen.
func TestOpenTransactionOfDeadWriterIsAborted(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic("zombie")
	kafkatest.CreateTopic(t, brokers, topic, 1)
	id := "zombie-" + uuid.NewString()
	ctx := kafkatest.Context(t, 60*time.Second)

	zombie := openTxnLog(t, brokers, id)
	if err := zombie.Append(ctx, topic, msg("k", "committed")); err != nil {
		t.Fatal(err)
	}
	p := zombie.w.producer
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"open-1", "open-2"} {
		if err := p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}, Value: []byte(v)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.Flush(10000); n != 0 {
		t.Fatalf("%d messages not flushed", n)
	}
	// The open transaction's records are on the broker, past the high
	// watermark's "last committed" view of a read_committed reader.
	reader := newT(t, Config{Brokers: brokers, Logger: kafkatest.Logger(t)})
	if got := logtest.ReadValues(t, reader, topic); fmt.Sprint(got) != "[committed]" {
		t.Fatalf("with a transaction open, a reader saw %v, want [committed]", got)
	}

	successor := openTxnLog(t, brokers, id) // InitTransactions aborts the open transaction
	if err := successor.Append(ctx, topic, msg("k", "after")); err != nil {
		t.Fatal(err)
	}
	if got, want := logtest.ReadValues(t, reader, topic), "[committed after]"; fmt.Sprint(got) != want {
		t.Fatalf("after the successor, a reader saw %v, want %s", got, want)
	}
	end, err := reader.End(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	// committed + marker + 2 aborted + abort marker + after + marker
	if end[0] != 7 {
		t.Fatalf("End = %v, want 7 offsets used by 3 records read and 4 unseen", end)
	}
}

// The offsets committed with each transaction show the writer's position
// in its input topic to kafka-consumer-groups.
func TestTxnWriterCommitsInputOffsets(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic, input := kafkatest.Topic("out"), kafkatest.Topic("in")
	kafkatest.CreateTopic(t, brokers, topic, 1)
	kafkatest.CreateTopic(t, brokers, input, 2)
	l := newT(t, Config{Brokers: brokers, Logger: kafkatest.Logger(t)})
	group := "offsets-" + uuid.NewString()
	ctx := kafkatest.Context(t, 60*time.Second)
	w, err := l.TransactionalWriter(ctx, TxnConfig{
		TransactionalID: group, OffsetsGroup: group, OffsetsTopic: input,
		Position: func(m eventlog.Message) (int32, int64, bool) {
			var p int32
			var o int64
			_, err := fmt.Sscanf(string(m.Value), "%d:%d", &p, &o)
			return p, o, err == nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Append(ctx, topic, msg("a", "0:4"), msg("b", "1:9"), msg("a", "0:7")); err != nil {
		t.Fatal(err)
	}
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": brokers, "group.id": group})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	committed, err := c.Committed([]kafka.TopicPartition{{Topic: &input, Partition: 0}, {Topic: &input, Partition: 1}}, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if committed[0].Offset != 8 || committed[1].Offset != 10 {
		t.Fatalf("committed offsets = %v, want 8 in partition 0 and 10 in partition 1", committed)
	}
}

func TestCreateTopicsKeepsRecordsForever(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	var logs testlog.Buffer
	l := newT(t, Config{Brokers: brokers, Partitions: 3, Logger: zerolog.New(&logs)})
	fresh, finite := kafkatest.Topic("fresh"), kafkatest.Topic("finite")
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx := kafkatest.Context(t, 60*time.Second)
	if _, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{
		Topic: finite, NumPartitions: 3, Config: map[string]string{"retention.ms": "86400000"},
	}}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second time, both exist
		if err := l.CreateTopics(ctx, fresh, finite); err != nil {
			t.Fatalf("CreateTopics: %v", err)
		}
	}
	res, err := admin.DescribeConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: fresh}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res[0].Config["retention.ms"].Value; got != "-1" {
		t.Errorf("created topic has retention.ms=%s, want -1", got)
	}
	end, err := l.End(ctx, fresh)
	if err != nil {
		t.Fatal(err)
	}
	if len(end) != 3 {
		t.Errorf("created topic has %d partitions, want 3", len(end))
	}
	out := logs.String()
	if !strings.Contains(out, `"level":"warn"`) || !strings.Contains(out, finite) || !strings.Contains(out, "retention.ms=86400000") {
		t.Errorf("no warning about %s's finite retention in the logs:\n%s", finite, out)
	}
	if strings.Contains(out, `"topic":"`+fresh+`","settings"`) {
		t.Errorf("a warning about %s, which keeps records forever:\n%s", fresh, out)
	}
}

func TestFollowUnknownTopicFails(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	l := newT(t, Config{Brokers: brokers, Logger: kafkatest.Logger(t)})
	err := l.Follow(kafkatest.Context(t, 30*time.Second), kafkatest.Topic("missing"), nil, func(eventlog.Batch) error { return nil })
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Follow of a missing topic = %v, want an error saying so", err)
	}
}

// No broker at all (nothing listens on the port): Append returns within
// its deadline, the log says why it is unhealthy, librdkafka's complaints
// reach zerolog, and Close does not hang. Needs no Kafka.
func TestUnreachableBrokers(t *testing.T) {
	var logs testlog.Buffer
	l, err := New(Config{Brokers: "127.0.0.1:1", DeliveryTimeout: 2 * time.Second, Logger: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	err = l.Append(ctx, "commands", msg("k", "v"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append without a broker = %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Append took %s with a 1s deadline", took)
	}
	if err := l.Healthy(); err == nil {
		t.Fatal("Healthy() = nil without a broker")
	}
	if err := l.CreateTopics(ctx, "commands"); err == nil {
		t.Fatal("CreateTopics without a broker succeeded")
	}
	start = time.Now()
	l.Close()
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("Close took %s", took)
	}
	if out := logs.String(); !strings.Contains(out, `"component":"librdkafka"`) {
		t.Fatalf("no librdkafka log line reached zerolog:\n%s", out)
	}
}

// BenchmarkAppendParallel measures concurrent single-message appends, as
// the commander makes them: each waits for its acknowledgement, and
// librdkafka batches those in flight together.
func BenchmarkAppendParallel(b *testing.B) {
	l, _, topic := onNewTopic(b, "bench-append", 1)
	value := []byte(`{"id":"7b0a5b8e-5a8c-4a43-9f3e-3c1d2f9e8a10","action":"CreateValue","data":{"value-id":"2f1e0a4c-6b7d-4c8e-9f0a-1b2c3d4e5f60","value":3},"timestamp":"2026-01-01T00:00:00Z"}`)
	b.SetParallelism(16) // 16 goroutines per CPU, like concurrent HTTP requests
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			if err := l.Append(context.Background(), topic, eventlog.Message{Key: []byte(strconv.Itoa(i)), Value: value}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkReplay measures Follow from offset 0 until caught up, per record.
func BenchmarkReplay(b *testing.B) {
	l, _, topic := onNewTopic(b, "bench-replay", 1)
	const records = 50000
	batch := make([]eventlog.Message, 1000)
	for i := range batch {
		batch[i] = eventlog.Message{Key: []byte(strconv.Itoa(i)), Value: bytes.Repeat([]byte("x"), 200)}
	}
	for range records / len(batch) {
		if err := l.Append(context.Background(), topic, batch...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		n := 0
		err := l.Follow(context.Background(), topic, nil, func(batch eventlog.Batch) error {
			n += len(batch.Records)
			if batch.CaughtUp {
				return eventlog.ErrStopFollowing
			}
			return nil
		})
		if !errors.Is(err, eventlog.ErrStopFollowing) || n != records {
			b.Fatalf("replay: %v after %d records, want %d", err, n, records)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*records), "ns/record")
}

// A transaction that librdkafka never finishes (as after librdkafka issue
// #5511) does not hold the processor: Append gives up shortly after its
// deadline, the writer is spent, and Close does not block on it. When the
// call returns at last, the Log closes the abandoned producer.
func TestTxnWriterGivesUpOnAStuckTransaction(t *testing.T) {
	l, _, topic := onNewTopic(t, "stuck", 1)
	w, err := l.TransactionalWriter(kafkatest.Context(t, 60*time.Second), TxnConfig{TransactionalID: "stuck-" + uuid.NewString()})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	w.transact = func(context.Context, string, []eventlog.Message) error { <-release; return nil }
	w.stuckGrace = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := w.Append(ctx, topic, msg("k", "v")); err == nil {
		t.Fatal("Append of a stuck transaction succeeded")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Append gave up after %s, want about 500ms", took)
	}
	if err := w.Append(context.Background(), topic, msg("k", "v")); err == nil {
		t.Fatal("a spent writer appended")
	}
	start = time.Now()
	w.Close()
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Close of an abandoned writer took %s", took)
	}
	// The next writer with a fresh producer works.
	w2, err := l.TransactionalWriter(kafkatest.Context(t, 60*time.Second), TxnConfig{TransactionalID: "stuck-" + uuid.NewString()})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if err := w2.Append(kafkatest.Context(t, 30*time.Second), topic, msg("k", "after")); err != nil {
		t.Fatal(err)
	}
	if w.producer.IsClosed() {
		t.Fatal("the producer was closed under a call that had not returned")
	}
	w2.Close()
	releaseOnce.Do(func() { close(release) })
	l.Close()
	if !w.producer.IsClosed() {
		t.Fatal("Close of the log left the abandoned producer open after its call returned")
	}
}

// The stall watchdog's remedy: a new producer takes over and appends go on.
func TestReplacedProducerKeepsAppending(t *testing.T) {
	l, _, topic := onNewTopic(t, "replace", 1)
	ctx := kafkatest.Context(t, 30*time.Second)
	if err := l.Append(ctx, topic, msg("k", "before")); err != nil {
		t.Fatal(err)
	}
	old := l.currentProducer()
	if err := l.replaceProducer(); err != nil {
		t.Fatal(err)
	}
	if l.currentProducer() == old {
		t.Fatal("the producer was not replaced")
	}
	if err := l.Append(ctx, topic, msg("k", "after")); err != nil {
		t.Fatal(err)
	}
	if got := logtest.ReadValues(t, l, topic); fmt.Sprint(got) != "[before after]" {
		t.Fatalf("topic holds %v", got)
	}
	// Close waits for the replaced producer to be closed.
	l.Close()
	if !old.IsClosed() {
		t.Fatal("the replaced producer was not closed")
	}
}
