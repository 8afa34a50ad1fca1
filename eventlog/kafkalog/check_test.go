package kafkalog

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"calculator/internal/kafkatest"
)

func TestCheckPartitions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		counts map[string]int
		want   int
		err    []string // substrings of the error; none: no error
	}{
		{"none exists", map[string]int{}, 3, nil},
		{"all as configured", map[string]int{"commands": 6, "events": 6}, 6, nil},
		{"one exists, as configured", map[string]int{"events": 6}, 6, nil},
		{"counts differ", map[string]int{"commands": 3, "events": 6}, 3, []string{"commands has 3", "events has 6", "differ"}},
		{"configured differs", map[string]int{"commands": 6, "events": 6}, 1, []string{"commands and events have 6 partitions", "-partitions is 1", "-partitions 6"}},
		{"the one existing differs", map[string]int{"commands": 2}, 4, []string{"commands has 2 partitions", "-partitions 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPartitions(tc.counts, tc.want)
			if tc.err == nil {
				if err != nil {
					t.Fatalf("checkPartitions(%v, %d) = %v, want nil", tc.counts, tc.want, err)
				}
				return
			}
			if !errors.Is(err, ErrMisconfigured) {
				t.Fatalf("checkPartitions(%v, %d) = %v, want ErrMisconfigured", tc.counts, tc.want, err)
			}
			for _, sub := range tc.err {
				if !strings.Contains(err.Error(), sub) {
					t.Errorf("error %q does not say %q", err, sub)
				}
			}
		})
	}
}

// createTopic creates a topic as an operator might have, with any settings.
func createTopic(t *testing.T, admin *kafka.AdminClient, name string, partitions int, config map[string]string) {
	t.Helper()
	res, err := admin.CreateTopics(kafkatest.Context(t, 30*time.Second), []kafka.TopicSpecification{{
		Topic: name, NumPartitions: partitions, ReplicationFactor: -1, Config: config,
	}})
	if err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	if code := res[0].Error.Code(); code != kafka.ErrNoError {
		t.Fatalf("create topic %s: %v", name, res[0].Error)
	}
}

// topicExists asks the broker, not the Log under test.
func topicExists(t *testing.T, admin *kafka.AdminClient, name string) bool {
	t.Helper()
	res, err := admin.DescribeTopics(kafkatest.Context(t, 30*time.Second), kafka.NewTopicCollectionOfTopicNames([]string{name}))
	if err != nil {
		t.Fatal(err)
	}
	switch res.TopicDescriptions[0].Error.Code() {
	case kafka.ErrNoError:
		return true
	case kafka.ErrUnknownTopicOrPart:
		return false
	}
	t.Fatalf("describe %s: %v", name, res.TopicDescriptions[0].Error)
	return false
}

// Topics that cannot be used as they are stop CreateTopics with an error
// that names them and says what to do, and nothing is created meanwhile; a
// retry does not help (the app stops rather than retries).
func TestCreateTopicsRefusesMisconfiguredTopics(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": brokers, "log_level": 3})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	forever := map[string]string{"retention.ms": "-1"}

	t.Run("partition counts differ", func(t *testing.T) {
		commands, events := kafkatest.Topic("commands"), kafkatest.Topic("events")
		createTopic(t, admin, commands, 2, forever)
		createTopic(t, admin, events, 3, forever)
		l := newT(t, Config{Brokers: brokers, Partitions: 2, Logger: kafkatest.Logger(t)})
		for range 2 { // the same answer the second time
			err := l.CreateTopics(kafkatest.Context(t, 30*time.Second), commands, events)
			if !errors.Is(err, ErrMisconfigured) || !strings.Contains(err.Error(), commands+" has 2") || !strings.Contains(err.Error(), events+" has 3") {
				t.Fatalf("CreateTopics = %v, want ErrMisconfigured naming both counts", err)
			}
		}
	})

	t.Run("configured partitions differ from the topics'", func(t *testing.T) {
		commands, events := kafkatest.Topic("commands"), kafkatest.Topic("events")
		createTopic(t, admin, commands, 3, forever)
		l := newT(t, Config{Brokers: brokers, Partitions: 1, Logger: kafkatest.Logger(t)})
		err := l.CreateTopics(kafkatest.Context(t, 30*time.Second), commands, events)
		if !errors.Is(err, ErrMisconfigured) || !strings.Contains(err.Error(), "start with -partitions 3") {
			t.Fatalf("CreateTopics = %v, want ErrMisconfigured saying to start with -partitions 3", err)
		}
		if topicExists(t, admin, events) {
			t.Errorf("CreateTopics created %s although it failed: its partition count would differ from %s's", events, commands)
		}
		// With the right count it creates the missing one like the other.
		l3 := newT(t, Config{Brokers: brokers, Partitions: 3, Logger: kafkatest.Logger(t)})
		if err := l3.CreateTopics(kafkatest.Context(t, 30*time.Second), commands, events); err != nil {
			t.Fatalf("CreateTopics with the topics' partition count: %v", err)
		}
		end, err := l3.End(kafkatest.Context(t, 30*time.Second), events)
		if err != nil || len(end) != 3 {
			t.Fatalf("End(%s) = %v, %v; want 3 partitions", events, end, err)
		}
	})

	t.Run("compacted topic", func(t *testing.T) {
		commands, events := kafkatest.Topic("commands"), kafkatest.Topic("events")
		createTopic(t, admin, commands, 1, forever)
		createTopic(t, admin, events, 1, map[string]string{"cleanup.policy": "compact"})
		l := newT(t, Config{Brokers: brokers, Logger: kafkatest.Logger(t)})
		err := l.CreateTopics(kafkatest.Context(t, 30*time.Second), commands, events)
		if !errors.Is(err, ErrMisconfigured) || !strings.Contains(err.Error(), events+" has cleanup.policy=compact") {
			t.Fatalf("CreateTopics = %v, want ErrMisconfigured naming %s's cleanup.policy=compact", err, events)
		}
	})
}
