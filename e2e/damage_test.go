package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"calculator/internal/kafkatest"
)

// TestDamagedCommandsLogStopsTheStart (issue 13.2): the end of
// commands.log is lost (its last record damaged, which recovery takes for a
// torn write and cuts; the file emptied; the file deleted) while
// events.log still holds the outcomes of those commands, which proves they
// were acknowledged. The process must not start: it exits with an error
// that names the file and the positions, and acknowledges no new command
// meanwhile (each would get an offset that the events log says is decided,
// and never be decided).
func TestDamagedCommandsLogStopsTheStart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
		// end is the end of the commands log after the damage.
		end int
	}{
		{"last record bit flipped", flipLastBit, 2},
		{"truncated to 0", func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}, 0},
		{"deleted", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := start(t, dir)
			_, id := s.create(1)
			s.update(id, "ADD", 1)
			s.update(id, "ADD", 1)
			s.waitCaughtUp() // the three commands have their outcomes
			if _, err := s.stop(); err != nil {
				t.Fatalf("exit after SIGTERM: %v", err)
			}
			path := filepath.Join(dir, "commands.log")
			tc.damage(t, path)

			s = launch(t, dir)
			// Whatever arrives before it stops is refused, never acknowledged.
			if r, err := s.do("POST", "/values", "application/json", `{"value":1}`); err == nil && r.Status != http.StatusServiceUnavailable {
				t.Errorf("POST to a process whose commands log lost commands = %d %s, want 503 (or no answer)", r.Status, r.Raw)
			}
			refused := s.waitExit(t)
			want := fmt.Sprintf("%s ends at offset %d in partition 0, but %s holds the outcomes of its commands up to offset 2",
				path, tc.end, filepath.Join(dir, "events.log"))
			if !strings.Contains(refused, want) {
				t.Fatalf("the process stopped saying %q, want it to say %q", refused, want)
			}
		})
	}
}

// flipLastBit flips one bit in the last byte of the file: in the body of
// its last record, whose checksum then fails.
func flipLastBit(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 0x10
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitExit waits until the process exits by itself, checks that its exit
// status says it failed, and returns what it said on its way out: the error
// line it logged and the error it printed.
func (s *server) waitExit(t *testing.T) string {
	t.Helper()
	select {
	case <-s.exited:
	case <-time.After(deadline):
		t.Fatalf("the process still runs %s after its start, want it to refuse\n%s", deadline, s.logText())
	}
	var exit *exec.ExitError
	if !errors.As(s.exitErr, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("exit status %v, want a failure\n%s", s.exitErr, s.logText())
	}
	if len(s.logged("replayed events; processing commands")) > 0 {
		t.Errorf("the processor processed commands before the process stopped\n%s", s.logText())
	}
	var said []string
	for _, line := range s.logged("the commands log lost acknowledged commands; stopping") {
		said = append(said, fmt.Sprint(line["error"]))
	}
	if len(said) != 1 {
		t.Fatalf("logged the refusal %d times, want once\n%s", len(said), s.logText())
	}
	return said[0]
}

// TestKafkaRecreatedCommandsTopicStopsTheStart (issue 13.2 on Kafka): the
// commands topic is deleted and created again, empty, while the events
// topic keeps the outcomes of its commands. The process must refuse to
// start, naming the topic and the positions.
func TestKafkaRecreatedCommandsTopicStopsTheStart(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	commandsTopic, eventsTopic, args := kafkaTopics(brokers)
	s := start(t, t.TempDir(), args...)
	_, id := s.create(1)
	s.update(id, "ADD", 1)
	s.waitCaughtUp()
	if _, err := s.stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	recreateTopic(t, brokers, commandsTopic)

	s = launch(t, t.TempDir(), args...)
	refused := s.waitExit(t)
	want := fmt.Sprintf("Kafka topic %s ends at offset 0 in partition 0, but Kafka topic %s holds the outcomes of its commands up to offset 1",
		commandsTopic, eventsTopic)
	if !strings.Contains(refused, want) {
		t.Fatalf("the process stopped saying %q, want it to say %q", refused, want)
	}
}

// recreateTopic deletes topic and creates it again, empty, with one
// partition. The broker takes a moment to forget a deleted topic, and
// refuses to create it again until then.
func recreateTopic(t *testing.T, brokers, topic string) {
	t.Helper()
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx := kafkatest.Context(t, deadline)
	res, err := admin.DeleteTopics(ctx, []string{topic})
	if err != nil || res[0].Error.Code() != kafka.ErrNoError {
		t.Fatalf("delete topic %s: %v %v", topic, err, res)
	}
	eventually(t, "the deleted topic is created again", func() bool {
		res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{
			Topic: topic, NumPartitions: 1, Config: map[string]string{"retention.ms": "-1"},
		}})
		return err == nil && res[0].Error.Code() == kafka.ErrNoError
	})
}
