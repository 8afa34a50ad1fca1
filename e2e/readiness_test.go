package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"calculator/internal/kafkatest"
	"calculator/internal/ssetest"
)

// TestKafkaReadyUnderSteadyLoad (issue 13.1): the binary is killed and
// started again on Kafka while clients keep sending about 300 commands a
// second. The new process must become ready while the load goes on: being
// caught up means having read the log up to its end as it was when the
// replay began, not chasing an end that the load keeps moving. Once ready,
// it answers the queries that wait for readiness: GET /commands/{id}, a
// command stream, ?wait.
func TestKafkaReadyUnderSteadyLoad(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	_, _, args := kafkaTopics(brokers)
	const perSecond, readyWithin = 300, 5 * time.Second

	// A history that takes a moment to replay: the processor, done first,
	// then writes outcomes while the view and the statuses still replay.
	s := start(t, t.TempDir(), args...)
	fill := startLoad(s, 32, map[string]bool{}, nil)
	eventually(t, "a history of 20,000 commands", func() bool { return fill.acks.Load() >= 20000 })
	fill.stop()
	l := startPacedLoad(s, 16, perSecond, map[string]bool{}, fill.values)
	defer l.stop()
	eventually(t, "the paced load acknowledged", func() bool { return l.acks.Load() >= perSecond })
	s.kill()

	s = launch(t, t.TempDir(), args...)
	l.retarget(s)
	restarted, acksBefore := time.Now(), l.acks.Load()
	var last response
	pollWithin(t, readyWithin, "readyz is 200 while the load goes on", func() bool {
		last = s.must("GET", "/readyz", "")
		return last.Status == http.StatusOK
	}, func() string { return last.Raw })
	readyAfter := time.Since(restarted)
	rate := float64(l.acks.Load()-acksBefore) / readyAfter.Seconds()
	t.Logf("ready %s after the restart, with %.0f commands/s acknowledged meanwhile: %s",
		readyAfter.Round(time.Millisecond), rate, last.Raw)
	if rate < perSecond/2 {
		t.Errorf("only %.0f commands/s were acknowledged while the process replayed: the load did not go on", rate)
	}
	checkReadyzPositions(t, last)

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
