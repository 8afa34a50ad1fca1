package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"calculator/domain"
	"calculator/internal/kafkatest"
)

// The end-to-end tests on Kafka: the real binary with -brokers, each test
// on topics of its own. They need a broker (KAFKA_BROKERS; see
// internal/kafkatest for when they skip).

// kafkaTopics returns the flags that point the binary at brokers, with new
// topics and a consumer group of their own: members of one group on other
// topics would share its rebalances (and wait out each other's crashes).
func kafkaTopics(brokers string) (commands, events string, args []string) {
	commands, events = kafkatest.Topic("e2e-commands"), kafkatest.Topic("e2e-events")
	return commands, events, []string{"-brokers", brokers, "-commands-topic", commands, "-events-topic", events, "-group", commands}
}

// TestKafkaWalkthrough is the README's walk-through on Kafka, then a
// graceful restart and a kill -9 restart, each with an empty data
// directory: the state comes from Kafka alone.
func TestKafkaWalkthrough(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	_, _, args := kafkaTopics(brokers)
	walkthrough(t, 0, func() *server {
		s := start(t, t.TempDir(), args...)
		if r := s.must("GET", "/readyz", ""); r.Body["log"].(map[string]any)["backend"] != "kafka" {
			t.Fatalf("readyz = %s, want the kafka backend", r.Raw)
		}
		return s
	})
}

// checkExactlyOnceKafka reads both topics whole (read_committed) and
// checks SPEC §5.1–§5.2: every acknowledged command is in the commands
// topic, and every decodable command id there has exactly one outcome.
func checkExactlyOnceKafka(t *testing.T, brokers, commandsTopic, eventsTopic string, acknowledged map[string]bool) {
	t.Helper()
	events := kafkatest.ReadAll(t, brokers, eventsTopic)
	commands, outcomes := checkOutcomes(t, valuesOfMessages(kafkatest.ReadAll(t, brokers, commandsTopic)), valuesOfMessages(events), acknowledged)
	// Records of aborted transactions: outcomes that a killed processor had
	// written but not committed, which no reader saw and the next processor
	// wrote again.
	aborted := len(kafkatest.ReadUncommitted(t, brokers, eventsTopic)) - len(events)
	t.Logf("%d acknowledged, %d commands in the topic, %d outcomes, %d event records of aborted transactions",
		len(acknowledged), commands, outcomes, aborted)
}

// load sends commands from several clients until stopped: a quarter
// creates, the rest ADD 1 to a value created before. It remembers what was
// acknowledged with 202 and counts the other answers.
type load struct {
	target       atomic.Pointer[server] // where the commands go (retarget)
	mu           sync.Mutex
	acknowledged map[string]bool
	values       []string
	lastAccepted string // the command id of the latest 202
	acks         atomic.Int64
	unavailable  atomic.Int64 // 503s
	// slowest503 is the longest a 503 took, in nanoseconds.
	slowest503 atomic.Int64
	// tokens, when not nil, paces the clients: each command waits for one.
	tokens chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startLoad sends commands from clients as fast as the server answers.
func startLoad(s *server, clients int, acknowledged map[string]bool, values []string) *load {
	return startPacedLoad(s, clients, 0, acknowledged, values)
}

// startPacedLoad is startLoad at a steady perSecond commands a second
// overall (0: as fast as possible). A command whose turn comes while every
// client waits for an answer is not sent.
func startPacedLoad(s *server, clients, perSecond int, acknowledged map[string]bool, values []string) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{acknowledged: acknowledged, values: values, cancel: cancel}
	l.target.Store(s)
	if perSecond > 0 {
		l.tokens = make(chan struct{})
		l.wg.Go(func() {
			tick := time.NewTicker(time.Second / time.Duration(perSecond))
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				select {
				case l.tokens <- struct{}{}:
				default: // every client is busy
				}
			}
		})
	}
	for c := range clients {
		l.wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				if l.tokens != nil {
					select {
					case <-l.tokens:
					case <-ctx.Done():
						return
					}
				}
				l.send(c, i)
			}
		})
	}
	return l
}

// send sends the i-th command of client c.
func (l *load) send(c, i int) {
	l.mu.Lock()
	update := len(l.values) > 0 && i%4 != 0
	target := ""
	if update {
		target = l.values[(c*31+i)%len(l.values)]
	}
	l.mu.Unlock()
	s := l.target.Load()
	began := time.Now()
	var r response
	var err error
	if update {
		r, err = s.do("PUT", "/values/"+target, "application/json", `{"operation":"ADD","value":1}`)
	} else {
		r, err = s.do("POST", "/values", "application/json", `{"value":1}`)
	}
	switch {
	case err != nil:
		time.Sleep(10 * time.Millisecond) // the process is gone; not acknowledged
	case r.Status == http.StatusServiceUnavailable:
		l.unavailable.Add(1)
		if took := int64(time.Since(began)); took > l.slowest503.Load() {
			l.slowest503.Store(took)
		}
	case r.Status == http.StatusAccepted:
		l.mu.Lock()
		l.acknowledged[r.Body["command_id"].(string)] = true
		l.lastAccepted = r.Body["command_id"].(string)
		if !update {
			l.values = append(l.values, r.Body["value_id"].(string))
		}
		l.mu.Unlock()
		l.acks.Add(1)
	}
}

// retarget sends the next commands to s.
func (l *load) retarget(s *server) { l.target.Store(s) }

// latest returns the id of the last command acknowledged.
func (l *load) latest() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastAccepted
}

func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// TestKafkaCrashUnderLoad kills the real binary with SIGKILL several times
// while clients send commands; each restart has an empty data directory.
// Then every command in the commands topic must have exactly one outcome in
// the events topic: the transaction that a killed processor left open is
// aborted by the next one, and the next one resumes from what was committed.
func TestKafkaCrashUnderLoad(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	commandsTopic, eventsTopic, args := kafkaTopics(brokers)
	const rounds, clients, acksPerRound = 4, 16, 400
	acknowledged, values := map[string]bool{}, []string(nil)
	for round := range rounds {
		s := start(t, t.TempDir(), args...)
		// Ready means replayed; the commands accepted just before the
		// crash may still wait for their outcome.
		s.waitCaughtUp()
		for _, id := range values {
			eventually(t, fmt.Sprintf("round %d: value %s, acknowledged before the crash, is in the view", round, id), func() bool {
				return s.must("GET", "/values/"+id, "").Status == http.StatusOK
			})
		}
		l := startLoad(s, clients, acknowledged, values)
		eventually(t, fmt.Sprintf("round %d: %d commands acknowledged", round, acksPerRound), func() bool {
			return l.acks.Load() >= acksPerRound
		})
		s.kill()
		l.stop()
		values = l.values
	}
	s := start(t, t.TempDir(), args...)
	s.waitCaughtUp()
	for _, id := range values {
		eventually(t, "value "+id+", acknowledged before the last crash, is in the view", func() bool {
			return s.must("GET", "/values/"+id, "").Status == http.StatusOK
		})
	}
	s.stop()
	checkExactlyOnceKafka(t, brokers, commandsTopic, eventsTopic, acknowledged)
}

// TestKafkaForeignAndMalformedRecords writes commands with a client that is
// not the product (a plain confluent-kafka-go producer): garbage, a valid
// command in the wire format, an invalid operation, an ADD and the same ADD
// again; later, while the product runs, another valid command.
func TestKafkaForeignAndMalformedRecords(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	commandsTopic, eventsTopic, args := kafkaTopics(brokers)
	kafkatest.CreateTopic(t, brokers, commandsTopic, 1)
	valueID := uuid.New()
	key := []byte(valueID.String())
	command := func(action domain.Action, op domain.Operation, v int64) domain.Command {
		return domain.Command{ID: uuid.New(), Action: action, ValueID: valueID, Operation: op, Value: domain.DecimalFromInt(v), Timestamp: time.Now()}
	}
	add := command(domain.UpdateValue, domain.Add, 1)
	for _, value := range [][]byte{
		[]byte("this is not JSON"),
		command(domain.CreateValue, "", 5).AppendJSON(nil),
		[]byte(`{"id":"` + uuid.NewString() + `","action":"UpdateValue","data":{"value-id":"` + valueID.String() + `","operation":"POW","value":2}}`),
		add.AppendJSON(nil),
		add.AppendJSON(nil), // the same command id again
	} {
		kafkatest.Produce(t, brokers, commandsTopic, key, value)
	}

	s := start(t, t.TempDir(), args...)
	if got := s.waitValue(valueID.String(), 2); got["value"] != 6.0 {
		t.Fatalf("value = %v, want 6 at version 2 (the repeated ADD applied once)", got)
	}
	skipped := s.logged("skipping undecodable command")
	if len(skipped) != 2 {
		t.Fatalf("logged %d undecodable commands, want 2\n%s", len(skipped), s.logText())
	}
	for i, want := range []float64{0, 2} {
		if skipped[i]["offset"] != want || skipped[i]["partition"] != 0.0 || skipped[i]["topic"] != commandsTopic {
			t.Errorf("undecodable command %d logged as %v, want topic %s partition 0 offset %v", i, skipped[i], commandsTopic, want)
		}
	}

	// A command from the other client while the product runs.
	kafkatest.Produce(t, brokers, commandsTopic, key, command(domain.UpdateValue, domain.Multiply, 10).AppendJSON(nil),
		kafka.Header{Key: "origin", Value: []byte("a foreign producer")})
	if got := s.waitValue(valueID.String(), 3); got["value"] != 60.0 {
		t.Fatalf("after the foreign MULTIPLY 10: %v, want 60", got)
	}
	s.waitCaughtUp()
	s.stop()
	checkExactlyOnceKafka(t, brokers, commandsTopic, eventsTopic, nil)
	// Any client reads the events: wire format, keyed by value id, with the
	// command's position in headers.
	for _, m := range kafkatest.ReadAll(t, brokers, eventsTopic) {
		if string(m.Key) != valueID.String() {
			t.Errorf("event at %v has key %q, want the value id", m.TopicPartition, m.Key)
		}
		if !strings.Contains(string(m.Value), `"parent-id":"`) {
			t.Errorf("event at %v is not in the wire format: %s", m.TopicPartition, m.Value)
		}
	}
}

// On Kafka too, a second instance on a data directory in use fails at
// start: the view's history file (history.blocks) is locked, and its
// snapshots there are the first instance's.
func TestKafkaSecondInstanceOnTheSameDataDirFails(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	_, _, args := kafkaTopics(brokers)
	dir := t.TempDir()
	start(t, dir, args...)
	secondInstanceFails(t, dir, "history.blocks is in use by another process", args...)
}
