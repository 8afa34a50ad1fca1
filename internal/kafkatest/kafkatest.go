// Package kafkatest is what the Kafka tests share: where the broker is (and
// whether to skip), unique topic names, and a plain confluent-kafka-go
// client, independent of the product's, that creates topics, writes foreign
// records and reads a topic whole.
//
// The rule: KAFKA_BROKERS names the brokers. Unset, the Kafka tests skip,
// saying how to run them, except when CI=true, where they fail: CI must
// never pass without having run them. Set but unreachable, they fail.
package kafkatest

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/rs/zerolog"
)

// SkipMessage says how to run the Kafka tests.
const SkipMessage = "set KAFKA_BROKERS=127.0.0.1:9092 (make kafka-up) to run the Kafka tests"

var (
	reachOnce sync.Once
	reachErr  error
)

// Brokers returns the brokers the Kafka tests use, or skips or fails the
// test according to the rule in the package comment.
func Brokers(tb testing.TB) string {
	tb.Helper()
	brokers := os.Getenv("KAFKA_BROKERS")
	if brokers == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("CI=true and KAFKA_BROKERS is unset: the Kafka tests must run in CI (" + SkipMessage + ")")
		}
		tb.Skip(SkipMessage)
	}
	reachOnce.Do(func() { reachErr = Reachable(brokers, 5*time.Second) })
	if reachErr != nil {
		tb.Fatalf("KAFKA_BROKERS=%s: %v (start a broker with make kafka-up, or unset KAFKA_BROKERS to skip)", brokers, reachErr)
	}
	return brokers
}

// Reachable returns nil when one of the comma-separated brokers accepts a
// TCP connection within timeout.
func Reachable(brokers string, timeout time.Duration) error {
	var errs []string
	for _, b := range strings.Split(brokers, ",") {
		conn, err := net.DialTimeout("tcp", strings.TrimSpace(b), timeout)
		if err == nil {
			conn.Close()
			return nil
		}
		errs = append(errs, err.Error())
	}
	return fmt.Errorf("no broker reachable: %s", strings.Join(errs, "; "))
}

var seq atomic.Int64

// Topic returns a topic name no other test uses.
func Topic(prefix string) string {
	return fmt.Sprintf("%s-%d-%d-%d", prefix, os.Getpid(), time.Now().UnixNano(), seq.Add(1))
}

// Context returns a context that ends with the test or after timeout.
func Context(tb testing.TB, timeout time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	tb.Cleanup(cancel)
	return ctx
}

// Logger is the logger of the product's Kafka clients in a test: the test's
// log at info level with -v, silent otherwise.
func Logger(tb testing.TB) zerolog.Logger {
	if testing.Verbose() {
		return zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.InfoLevel)
	}
	return zerolog.Nop()
}

// CreateTopic creates a topic with the given partitions and infinite
// retention, as the product would.
func CreateTopic(tb testing.TB, brokers, name string, partitions int) {
	tb.Helper()
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": brokers, "log_level": 3})
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close()
	res, err := admin.CreateTopics(Context(tb, 30*time.Second), []kafka.TopicSpecification{{
		Topic: name, NumPartitions: partitions, Config: map[string]string{"retention.ms": "-1"},
	}})
	if err != nil {
		tb.Fatalf("create topic %s: %v", name, err)
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			tb.Fatalf("create topic %s: %v", r.Topic, r.Error)
		}
	}
}

// Produce writes one record with a plain idempotent producer that is not the
// product's, and waits for it to be acknowledged.
func Produce(tb testing.TB, brokers, topic string, key, value []byte, headers ...kafka.Header) kafka.TopicPartition {
	tb.Helper()
	p, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers": brokers, "enable.idempotence": true, "partitioner": "murmur2_random", "log_level": 3,
	})
	if err != nil {
		tb.Fatal(err)
	}
	defer p.Close()
	reports := make(chan kafka.Event, 1)
	err = p.Produce(&kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            key, Value: value, Headers: headers,
	}, reports)
	if err != nil {
		tb.Fatal(err)
	}
	select {
	case ev := <-reports:
		m := ev.(*kafka.Message)
		if m.TopicPartition.Error != nil {
			tb.Fatalf("produce to %s: %v", topic, m.TopicPartition.Error)
		}
		return m.TopicPartition
	case <-time.After(30 * time.Second):
		tb.Fatalf("produce to %s: no acknowledgement within 30s", topic)
	}
	return kafka.TopicPartition{}
}

// ReadAll reads every committed record of topic (read_committed, from the
// start of every partition until each reports its end).
func ReadAll(tb testing.TB, brokers, topic string) []*kafka.Message {
	tb.Helper()
	return read(tb, brokers, topic, "read_committed")
}

// ReadUncommitted reads every record of topic, including those of aborted
// and open transactions.
func ReadUncommitted(tb testing.TB, brokers, topic string) []*kafka.Message {
	tb.Helper()
	return read(tb, brokers, topic, "read_uncommitted")
}

func read(tb testing.TB, brokers, topic, isolation string) []*kafka.Message {
	tb.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":    brokers,
		"group.id":             "kafkatest-readall",
		"enable.auto.commit":   false,
		"enable.partition.eof": true,
		"isolation.level":      isolation,
		"log_level":            3,
	})
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	md, err := c.GetMetadata(&topic, false, 10000)
	if err != nil {
		tb.Fatalf("metadata of %s: %v", topic, err)
	}
	var assignment []kafka.TopicPartition
	for _, p := range md.Topics[topic].Partitions {
		assignment = append(assignment, kafka.TopicPartition{Topic: &topic, Partition: p.ID, Offset: kafka.OffsetBeginning})
	}
	if len(assignment) == 0 {
		tb.Fatalf("topic %s has no partitions", topic)
	}
	if err := c.Assign(assignment); err != nil {
		tb.Fatal(err)
	}
	var msgs []*kafka.Message
	eof := map[int32]bool{}
	deadline := time.Now().Add(60 * time.Second)
	for len(eof) < len(assignment) {
		if time.Now().After(deadline) {
			tb.Fatalf("read %s: not at the end after 60s (%d records, %d of %d partitions done)", topic, len(msgs), len(eof), len(assignment))
		}
		switch ev := c.Poll(100).(type) {
		case *kafka.Message:
			if ev.TopicPartition.Error != nil {
				tb.Fatalf("read %s: %v", topic, ev.TopicPartition.Error)
			}
			delete(eof, ev.TopicPartition.Partition)
			msgs = append(msgs, ev)
		case kafka.PartitionEOF:
			eof[ev.Partition] = true
		case kafka.Error:
			if ev.IsFatal() {
				tb.Fatalf("read %s: %v", topic, ev)
			}
		}
	}
	return msgs
}
