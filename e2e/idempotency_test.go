package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"calculator/domain"
	"calculator/internal/kafkatest"
)

// The Idempotency-Key tests (SPEC §3), on both backends: the real binary,
// and its logs read afterwards by a client that is not the product.

// logRecord is a record of a topic as a foreign reader sees it.
type logRecord struct {
	value   []byte
	headers map[string]string
}

// backend is where a test's calculator keeps its logs.
type backend struct {
	// start runs a calculator on the logs and waits until it is ready.
	start func(t *testing.T) *server
	// read returns every record of a topic; on the embedded log only while
	// no calculator runs.
	read                       func(t *testing.T, topic string) []logRecord
	commandsTopic, eventsTopic string
}

func embeddedBackend(t *testing.T) backend {
	dir := t.TempDir()
	return backend{
		start: func(t *testing.T) *server { return start(t, dir) },
		read: func(t *testing.T, topic string) []logRecord {
			var out []logRecord
			for _, rec := range readLog(t, dir, topic) {
				r := logRecord{value: rec.Value, headers: map[string]string{}}
				for _, h := range rec.Headers {
					r.headers[h.Key] = string(h.Value)
				}
				out = append(out, r)
			}
			return out
		},
		commandsTopic: "commands", eventsTopic: "events",
	}
}

func kafkaBackend(t *testing.T) backend {
	brokers := kafkatest.Brokers(t)
	commands, events, args := kafkaTopics(brokers)
	return backend{
		start: func(t *testing.T) *server { return start(t, t.TempDir(), args...) },
		read: func(t *testing.T, topic string) []logRecord {
			return kafkaRecords(kafkatest.ReadAll(t, brokers, topic))
		},
		commandsTopic: commands, eventsTopic: events,
	}
}

func kafkaRecords(msgs []*kafka.Message) []logRecord {
	out := make([]logRecord, len(msgs))
	for i, m := range msgs {
		out[i] = logRecord{value: m.Value, headers: map[string]string{}}
		for _, h := range m.Headers {
			out[i].headers[h.Key] = string(h.Value)
		}
	}
	return out
}

func recordValues(recs []logRecord) [][]byte {
	out := make([][]byte, len(recs))
	for i, r := range recs {
		out[i] = r.value
	}
	return out
}

// keyedCommands returns, for each Idempotency-Key in the commands records,
// the command id of each record that carries it.
func keyedCommands(t *testing.T, recs []logRecord) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, r := range recs {
		key, ok := r.headers["idempotency-key"]
		if !ok {
			continue
		}
		if len(r.headers["request-hash"]) != 64 {
			t.Errorf("a command with key %q has request-hash %q, want 64 hex digits", key, r.headers["request-hash"])
		}
		c, err := domain.DecodeCommand(r.value)
		if err != nil {
			t.Fatalf("a command with key %q does not decode: %v", key, err)
		}
		out[key] = append(out[key], c.ID.String())
	}
	return out
}

// keyed sends a request with an Idempotency-Key.
func (s *server) keyed(method, path, body, key string) response {
	s.t.Helper()
	r, err := s.doHeader(method, path, body, http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {key}})
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// concurrently sends n copies of one keyed request at once and returns the
// answers.
func (s *server) concurrently(n int, method, path, body, key string) []response {
	answers := make([]response, n)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() { answers[i] = s.keyed(method, path, body, key) })
	}
	wg.Wait()
	return answers
}

func TestIdempotencyKey(t *testing.T)      { testIdempotencyKey(t, embeddedBackend(t)) }
func TestKafkaIdempotencyKey(t *testing.T) { testIdempotencyKey(t, kafkaBackend(t)) }

// testIdempotencyKey retries one POST and one PUT 100 times concurrently
// each, repeats them with ?wait, reuses a key for another body, restarts,
// and repeats again: each key names one command, which has one outcome.
func testIdempotencyKey(t *testing.T, b backend) {
	s := b.start(t)
	answers := s.concurrently(100, "POST", "/values?wait=10s", `{"value":7}`, "create-seven")
	first := answers[0]
	for _, r := range answers {
		if r.Status != http.StatusCreated || r.Body["command_id"] != first.Body["command_id"] ||
			r.Body["value_id"] != first.Body["value_id"] || r.Body["value"] != 7.0 {
			t.Fatalf("one of 100 concurrent POSTs with one key = %d %s, want 201 with the ids and value of %s", r.Status, r.Raw, first.Raw)
		}
	}
	createID, valueID := first.Body["command_id"].(string), first.Body["value_id"].(string)

	answers = s.concurrently(100, "PUT", "/values/"+valueID, `{"operation":"MULTIPLY","value":3}`, "triple")
	putID := answers[0].Body["command_id"]
	for _, r := range answers {
		if r.Status != http.StatusAccepted || r.Body["command_id"] != putID {
			t.Fatalf("one of 100 concurrent PUTs with one key = %d %s, want 202 for command %v", r.Status, r.Raw, putID)
		}
	}
	if got := s.waitValue(valueID, 2); got["value"] != 21.0 {
		t.Fatalf("after 100 retries of MULTIPLY 3 on 7: %v, want 21 at version 2 (applied once)", got)
	}
	// A repeat with ?wait answers with the outcome of the first.
	r := s.keyed("PUT", "/values/"+valueID+"?wait=5s", `{"operation":"multiply","value":3.0}`, "triple")
	if r.Status != http.StatusOK || r.Body["command_id"] != putID || r.Body["value"] != 21.0 || r.Body["version"] != 2.0 {
		t.Fatalf("repeat of the PUT with ?wait = %d %s, want 200 with command %v, 21 at version 2", r.Status, r.Raw, putID)
	}
	// The same key for another request.
	r = s.keyed("PUT", "/values/"+valueID, `{"operation":"MULTIPLY","value":4}`, "triple")
	if r.Status != http.StatusUnprocessableEntity || r.Body["type"] != "urn:calculator:problem:idempotency-key-reused" {
		t.Fatalf("the key of the PUT with another body = %d %s, want 422 idempotency-key-reused", r.Status, r.Raw)
	}

	// After a restart the keys come back from the commands log.
	if _, err := s.stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	s = b.start(t)
	r = s.keyed("POST", "/values?wait=5s", `{"value":7}`, "create-seven")
	if r.Status != http.StatusCreated || r.Body["command_id"] != createID || r.Body["value_id"] != valueID || r.Body["value"] != 7.0 {
		t.Fatalf("repeat of the POST after a restart = %d %s, want 201 with command %s, value %s = 7", r.Status, r.Raw, createID, valueID)
	}
	if r = s.keyed("POST", "/values", `{"value":8}`, "create-seven"); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("the POST's key with another body after a restart = %d %s, want 422", r.Status, r.Raw)
	}
	if got := s.must("GET", "/values/"+valueID, ""); got.Body["value"] != 21.0 || got.Body["version"] != 2.0 {
		t.Fatalf("after the repeats: %s, want 21 at version 2", got.Raw)
	}
	s.waitCaughtUp()
	s.stop()

	commands := b.read(t, b.commandsTopic)
	checkOutcomes(t, recordValues(commands), recordValues(b.read(t, b.eventsTopic)), map[string]bool{createID: true, putID.(string): true})
	keys := keyedCommands(t, commands)
	for key, want := range map[string]string{"create-seven": createID, "triple": putID.(string)} {
		// One process shares one append among concurrent repeats, and a
		// repeat of a stored command appends nothing.
		if ids := keys[key]; len(ids) != 1 || ids[0] != want {
			t.Errorf("commands with key %q: %v, want one record of command %s", key, ids, want)
		}
	}
}

func TestIdempotencyKeyAcrossKill(t *testing.T)      { testKeyAcrossKill(t, embeddedBackend(t)) }
func TestKafkaIdempotencyKeyAcrossKill(t *testing.T) { testKeyAcrossKill(t, kafkaBackend(t)) }

// testKeyAcrossKill kills the calculator with SIGKILL after it has stored a
// keyed command and before it has answered; the client's retry after the
// restart names the same command, which has one outcome.
//
// When exactly to kill is found by trying: a POST with ?wait=30s is
// answered only once its outcome is applied, so there is a window of a few
// milliseconds (more on Kafka) between the append and the answer. Each
// attempt kills the process a little later than the last attempt that
// stored nothing, and a little sooner than one that was answered.
func testKeyAcrossKill(t *testing.T, b backend) {
	var key string
	delay := time.Duration(0)
	for attempt := 0; ; attempt++ {
		if attempt == 20 {
			t.Fatal("20 attempts did not kill the process between the append and the answer")
		}
		key = fmt.Sprintf("kill-%d", attempt)
		s := b.start(t)
		answered := make(chan error, 1) // nil: the client got an answer
		go func() {
			_, err := s.doHeader("POST", "/values?wait=30s", `{"value":5}`, http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {key}})
			answered <- err
		}()
		time.Sleep(delay)
		s.kill()
		err := <-answered
		stored := len(keyedCommands(t, b.read(t, b.commandsTopic))[key]) > 0
		t.Logf("attempt %d: killed %s after sending: stored %v, client error %v", attempt, delay, stored, err)
		if stored && err != nil {
			break // stored, and the client got no answer: the case under test
		}
		if stored {
			delay /= 2 // answered: kill sooner
		} else {
			delay = delay*2 + time.Millisecond
		}
	}
	s := b.start(t)
	// On Kafka the new process decides once the consumer group gives it the
	// partition, which it does only when the killed process's session has
	// timed out (10 s; docs/scaling.md): wait longer than that.
	r := s.keyed("POST", "/values?wait=30s", `{"value":5}`, key)
	if r.Status != http.StatusCreated || r.Body["value"] != 5.0 {
		t.Fatalf("retry after the kill = %d %s, want 201 with the value 5", r.Status, r.Raw)
	}
	commandID := r.Body["command_id"].(string)
	s.waitCaughtUp()
	s.stop()
	commands := b.read(t, b.commandsTopic)
	checkOutcomes(t, recordValues(commands), recordValues(b.read(t, b.eventsTopic)), map[string]bool{commandID: true})
	ids := keyedCommands(t, commands)[key]
	for _, id := range ids {
		if id != commandID {
			t.Errorf("a record under key %q has command id %s, the retry was answered with %s", key, id, commandID)
		}
	}
	t.Logf("key %q: %d record(s) of command %s, one outcome", key, len(ids), commandID)
}
