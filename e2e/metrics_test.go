package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape is one GET /metrics, parsed: each series by its name and labels
// ("name{a=\"x\",b=\"y\"}", labels sorted), and for a histogram its count
// under name_count.
type scrape map[string]float64

func (s *server) scrape() scrape {
	s.t.Helper()
	resp, err := s.client.Get(s.URL + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		s.t.Fatalf("parse /metrics: %v", err)
	}
	out := scrape{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[name+"_count"] = float64(m.GetHistogram().GetSampleCount())
			default:
				out[key] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}

// TestMetrics sends a known mix of commands to the real binary and checks
// that the counters moved by exactly that: the requests by status, the
// outcomes by kind and reason, the events applied and both latencies'
// observations; then the lags, the readiness and the subscribers.
func TestMetrics(t *testing.T) {
	s := start(t, t.TempDir())
	before := s.scrape()
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "calculator_view_replay_target_records"} {
		if _, ok := before[name]; !ok {
			t.Errorf("no %s in the scrape", name)
		}
	}

	// 3 creates, then one with ?wait (201); 3 updates: one succeeds, one
	// divides by zero, one names a value that does not exist; 2 refused.
	var valueID string
	for i := range 3 {
		_, valueID = s.create(float64(i))
	}
	if r := s.must("POST", "/values?wait=10s", `{"value":7}`); r.Status != http.StatusCreated {
		t.Fatalf("POST ?wait: %d %s", r.Status, r.Raw)
	}
	s.update(valueID, "ADD", 1)
	s.update(valueID, "DIVIDE", 0)
	s.update("0b5e3cbe-bd5a-4d6c-9a0b-5b8e6f6c9d21", "ADD", 1)
	if r, _ := s.doContext(context.Background(), "POST", "/values", "application/json", `{"value":"x"}`); r.Status != http.StatusBadRequest {
		t.Fatalf("a bad POST: %d", r.Status)
	}
	if r := s.must("PUT", "/values/not-a-uuid", `{"operation":"ADD","value":1}`); r.Status != http.StatusBadRequest {
		t.Fatalf("a bad PUT: %d", r.Status)
	}

	const outcomes = 7
	var after scrape
	eventually(t, "the view has applied the 7 outcomes", func() bool {
		after = s.scrape()
		return after["calculator_view_events_applied_total"]-before["calculator_view_events_applied_total"] >= outcomes
	})
	want := map[string]float64{
		`calculator_command_requests_total{code="202",method="POST"}`:                 3,
		`calculator_command_requests_total{code="201",method="POST"}`:                 1,
		`calculator_command_requests_total{code="400",method="POST"}`:                 1,
		`calculator_command_requests_total{code="202",method="PUT"}`:                  3,
		`calculator_command_requests_total{code="400",method="PUT"}`:                  1,
		`calculator_outcomes_total{kind="ValueCreated",reason=""}`:                    4,
		`calculator_outcomes_total{kind="ValueUpdated",reason=""}`:                    1,
		`calculator_outcomes_total{kind="CommandRejected",reason="division_by_zero"}`: 1,
		`calculator_outcomes_total{kind="CommandRejected",reason="value_not_found"}`:  1,
		`calculator_processor_commands_total{result="succeeded"}`:                     5,
		`calculator_processor_commands_total{result="rejected"}`:                      2,
		"calculator_view_events_applied_total":                                        outcomes,
		"calculator_command_append_duration_seconds_count":                            outcomes,
		"calculator_command_accept_to_applied_seconds_count":                          outcomes,
		`calculator_processor_commands_total{result="duplicate"}`:                     0,
		"calculator_processor_malformed_records_total":                                0,
		"calculator_sse_subscribers_dropped_total":                                    0,
	}
	for key, n := range want {
		if got := after[key] - before[key]; got != n {
			t.Errorf("%s moved by %v, want %v", key, got, n)
		}
	}
	for key, n := range map[string]float64{
		"calculator_processor_lag_records":       0,
		"calculator_view_lag_records":            0,
		`calculator_ready{part="processor"}`:     1,
		`calculator_ready{part="view"}`:          1,
		`calculator_ready{part="subscriptions"}`: 1,
		"calculator_command_statuses":            outcomes,
		"calculator_view_records_read_total":     outcomes,
		"calculator_view_replay_target_records":  0,
	} {
		if got, ok := after[key]; !ok || got != n {
			t.Errorf("%s = %v (present: %v), want %v", key, got, ok, n)
		}
	}

	// A subscriber counts while its stream is open.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/subscriptions/events", nil)
	resp, err := s.streams.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "one events subscriber", func() bool { return s.scrape()[`calculator_sse_subscribers{stream="events"}`] == 1 })
	cancel()
	resp.Body.Close()
	eventually(t, "no events subscriber", func() bool { return s.scrape()[`calculator_sse_subscribers{stream="events"}`] == 0 })
}
