package e2e

import (
	"strings"
	"testing"
	"time"

	"calculator/internal/kafkatest"
)

// The end-to-end tests of scaling out on Kafka (SPEC §6): topics the
// instances cannot share, and several instances sharing them.

// TestKafkaMisconfiguredTopicsStopTheStart starts the binary against topics
// it must not use: it exits with an error that says what is wrong and what
// to do, instead of retrying or serving.
func TestKafkaMisconfiguredTopicsStopTheStart(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	for _, tc := range []struct {
		name             string
		commands, events int // partitions of the existing topics
		partitions       string
		want             string
	}{
		{"partition counts differ", 2, 3, "2", "their partition counts differ"},
		{"-partitions differs from the topics", 3, 3, "1", "start with -partitions 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			commandsTopic, eventsTopic, args := kafkaTopics(brokers)
			kafkatest.CreateTopic(t, brokers, commandsTopic, tc.commands)
			kafkatest.CreateTopic(t, brokers, eventsTopic, tc.events)
			s := launch(t, t.TempDir(), append(args, "-partitions", tc.partitions)...)
			select {
			case <-s.exited:
			case <-time.After(deadline):
				t.Fatalf("the calculator still runs %s after start on misconfigured topics\n%s", deadline, s.logText())
			}
			if s.exitErr == nil {
				t.Fatalf("the calculator exited with status 0 on misconfigured topics\n%s", s.logText())
			}
			if logs := s.logText(); !strings.Contains(logs, tc.want) {
				t.Fatalf("the calculator's output does not say %q:\n%s", tc.want, logs)
			}
		})
	}
}
