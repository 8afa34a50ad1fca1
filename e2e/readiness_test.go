package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"calculator/domain"
	"calculator/internal/kafkatest"
	"calculator/internal/ssetest"
)

// TestKafkaReadyUnderSteadyLoad (issue 13.1): the binary is killed and
// started again on Kafka while about 300 commands a second keep coming: 200
// a second through its HTTP API, and 100 a second from another writer of
// the commands topic (another instance's commander, or any Kafka client),
// which does not pause while this process restarts. The new process must
// become ready while the load goes on: being caught up means having read
// the log up to its end as it was when the replay began, not chasing an end
// that the load keeps moving. Once ready, it answers the queries that wait
// for readiness: GET /commands/{id}, a command stream, ?wait.
func TestKafkaReadyUnderSteadyLoad(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	commandsTopic, _, args := kafkaTopics(brokers)
	const httpPerSecond, otherPerSecond, readyWithin = 200, 100, 5 * time.Second

	// A history that takes a moment to replay.
	s := start(t, t.TempDir(), args...)
	fill := startLoad(s, 32, map[string]bool{}, nil)
	pollWithin(t, 2*time.Minute, "a history of 10,000 commands", func() bool { return fill.acks.Load() >= 10000 },
		func() string { return fmt.Sprint(fill.acks.Load(), " acknowledged") })
	fill.stop()
	l := startPacedLoad(s, 16, httpPerSecond, map[string]bool{}, fill.values)
	defer l.stop()
	other := startCommandWriter(t, brokers, commandsTopic, otherPerSecond)
	defer other.stop()
	eventually(t, "the paced load acknowledged", func() bool { return l.acks.Load() >= httpPerSecond })
	s.kill()

	s = launch(t, t.TempDir(), args...)
	l.retarget(s)
	restarted, acksBefore, otherBefore := time.Now(), l.acks.Load(), other.written.Load()
	var last response
	pollWithin(t, readyWithin, "readyz is 200 while the load goes on", func() bool {
		last = s.must("GET", "/readyz", "")
		return last.Status == http.StatusOK
	}, func() string { return last.Raw })
	readyAfter := time.Since(restarted)
	t.Logf("ready %s after the restart; meanwhile %d commands acknowledged through HTTP and %d written by the other writer: %s",
		readyAfter.Round(time.Millisecond), l.acks.Load()-acksBefore, other.written.Load()-otherBefore, last.Raw)
	if other.written.Load() == otherBefore {
		t.Errorf("the other writer wrote nothing while the process restarted: the test did not test a moving end")
	}
	checkReadyzPositions(t, last)

	// The load goes on at its pace. (Commands sent through HTTP during the
	// replay waited for the processor's check of the logs, the first step
	// after its replay, before their 202.)
	const over = 2 * time.Second
	acksReady := l.acks.Load()
	time.Sleep(over) // a rate is measured over a time
	if rate := float64(l.acks.Load()-acksReady) / over.Seconds(); rate < httpPerSecond/2 {
		t.Errorf("%.0f commands/s acknowledged once ready, want about %d", rate, httpPerSecond)
	}

	// The queries that need readiness answer, still under load.
	id := l.latest()
	var status response
	eventually(t, "GET /commands/{id} of a command accepted under load has its outcome", func() bool {
		status = s.must("GET", "/commands/"+id, "")
		return status.Status == http.StatusOK && status.Body["status"] == "succeeded"
	})
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	stream, err := ssetest.Dial(ctx, nil, s.URL+"/subscriptions/commands/"+id, "")
	if err != nil {
		t.Fatalf("command stream under load: %v", err)
	}
	defer stream.Close()
	var types []string
	for {
		m, err := stream.Next()
		if err != nil {
			break
		}
		types = append(types, m.Type)
	}
	if fmt.Sprint(types) != "[accepted succeeded applied]" {
		t.Errorf("the stream of a decided command sent %v, want [accepted succeeded applied]", types)
	}
	if r := s.must("POST", "/values?wait=10s", `{"value":7}`); r.Status != http.StatusCreated {
		t.Errorf("POST ?wait under load = %d %s, want 201", r.Status, r.Raw)
	}
}

// commandWriter writes CreateValue commands to the commands topic at a
// steady pace with a plain Kafka producer: another writer of the topic,
// independent of the process under test.
type commandWriter struct {
	written atomic.Int64 // commands acknowledged by the broker
	stop    func()
}

func startCommandWriter(t *testing.T, brokers, topic string, perSecond int) *commandWriter {
	t.Helper()
	p, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers": brokers, "enable.idempotence": true, "partitioner": "murmur2_random",
		"linger.ms": 1, "log_level": 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	w := &commandWriter{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { // delivery reports
		for ev := range p.Events() {
			if m, ok := ev.(*kafka.Message); ok && m.TopicPartition.Error == nil {
				w.written.Add(1)
			}
		}
	})
	wg.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			c := domain.Command{ID: uuid.New(), Action: domain.CreateValue, ValueID: uuid.New(), Value: domain.DecimalFromInt(1), Timestamp: time.Now().UTC()}
			p.Produce(&kafka.Message{
				TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
				Key:            []byte(c.ValueID.String()), Value: c.AppendJSON(nil),
			}, nil)
		}
	})
	var once sync.Once
	w.stop = func() {
		once.Do(func() {
			cancel()
			p.Flush(10_000)
			p.Close() // closes Events: the report loop ends
			wg.Wait()
		})
	}
	return w
}

// checkReadyzPositions checks that a ready /readyz shows the view's replay
// in sensible numbers: the position reached is at least the end at start,
// in the same unit (offsets).
func checkReadyzPositions(t *testing.T, r response) {
	t.Helper()
	v, _ := r.Body["view"].(map[string]any)
	position, ok1 := v["position"].(float64)
	end, ok2 := v["end_at_start"].(float64)
	if !ok1 || !ok2 || position < end {
		t.Errorf("ready, but the view's position %v is not at least its end at start %v: %s", v["position"], v["end_at_start"], r.Raw)
	}
}

// pollWithin polls cond every few milliseconds until it holds, or fails the
// test after d saying what did not happen and, from last, what it saw.
func pollWithin(t testing.TB, d time.Duration, what string, cond func() bool, last func() string) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("not within %s: %s (last: %s)", d, what, last())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
