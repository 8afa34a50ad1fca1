package metrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/outcome"
	"calculator/processor"
	"calculator/subscriptions"
	"calculator/view"
)

func TestCountCommands(t *testing.T) {
	m := New()
	r := chi.NewRouter()
	r.With(m.CountCommands).Post("/values", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("answer") {
		case "202":
			w.WriteHeader(http.StatusAccepted)
		case "400":
			http.Error(w, "bad", http.StatusBadRequest)
		case "none": // the client went away
		}
	})
	for _, answer := range []string{"202", "202", "400", "none"} {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/values?answer="+answer, nil))
	}
	want := `
# HELP calculator_command_requests_total POST /values and PUT /values/{id} requests answered, by method and HTTP status: 202 (or 200, 201, 409, 422 with ?wait) accepted, 4xx refused, 503 the commands log did not store the command.
# TYPE calculator_command_requests_total counter
calculator_command_requests_total{code="200",method="POST"} 1
calculator_command_requests_total{code="202",method="POST"} 2
calculator_command_requests_total{code="400",method="POST"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "calculator_command_requests_total"); err != nil {
		t.Error(err)
	}
}

func TestCountStreams(t *testing.T) {
	m := New()
	r := chi.NewRouter()
	started, release := make(chan struct{}), make(chan struct{})
	stream := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		started <- struct{}{}
		<-release
	}
	sub := r.With(m.CountStreams)
	sub.Get("/subscriptions/events", stream)
	sub.Get("/subscriptions/values/{value_id}", stream)
	sub.Get("/subscriptions/commands/{command_id}", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	})
	gauge := func(stream string) float64 { return testutil.ToFloat64(m.subscribers.WithLabelValues(stream)) }

	done := make(chan struct{})
	for _, path := range []string{"/subscriptions/events", "/subscriptions/events", "/subscriptions/values/" + uuid.NewString()} {
		go func() {
			r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
			done <- struct{}{}
		}()
		<-started
	}
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/subscriptions/commands/"+uuid.NewString(), nil))
	if e, v, c := gauge("events"), gauge("values"), gauge("commands"); e != 2 || v != 1 || c != 0 {
		t.Errorf("open streams: events %v, values %v, commands %v; want 2, 1, 0", e, v, c)
	}
	close(release)
	for range 3 {
		<-done
	}
	if e, v := gauge("events"), gauge("values"); e != 0 || v != 0 {
		t.Errorf("after the streams ended: events %v, values %v; want 0", e, v)
	}
}

// fakeLog appends instantly, or fails.
type fakeLog struct{ err error }

func (l fakeLog) Append(context.Context, string, ...eventlog.Message) error { return l.err }

func commandMessage(id uuid.UUID) eventlog.Message {
	cmd := domain.Command{ID: id, Action: domain.CreateValue, ValueID: uuid.New(), Value: domain.DecimalFromInt(1), Timestamp: time.Now()}
	return eventlog.Message{Key: cmd.ValueID[:], Value: cmd.AppendJSON(nil)}
}

func applied(commandID uuid.UUID, action domain.Action, reason domain.Reason, offset int64, replay bool) outcome.Applied {
	return outcome.Applied{
		Record: eventlog.Record{Partition: 0, Offset: offset},
		Event:  domain.Event{ID: domain.EventID(commandID), ParentID: commandID, Action: action, Reason: reason},
		Replay: replay,
	}
}

func TestAppliedAndAcceptToApplied(t *testing.T) {
	m := New()
	var got []outcome.Applied
	listener := m.Applied(func(b []outcome.Applied) { got = append(got, b...) })
	log := m.TimeAppends(fakeLog{})
	failing := m.TimeAppends(fakeLog{err: errors.New("no")})

	live1, live2, refused, old := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	for _, id := range []uuid.UUID{live1, live2} {
		if err := log.Append(context.Background(), "commands", commandMessage(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := failing.Append(context.Background(), "commands", commandMessage(refused)); err == nil {
		t.Fatal("the failing append succeeded")
	}
	if n := m.accepted.len(); n != 2 {
		t.Errorf("accept times held: %d, want the 2 stored commands", n)
	}

	listener([]outcome.Applied{
		applied(old, domain.ValueCreated, "", 0, true), // replayed: counted as applied only
		applied(live1, domain.ValueCreated, "", 1, false),
		applied(live2, domain.CommandRejected, domain.DivisionByZero, 2, false),
	})
	if len(got) != 3 {
		t.Errorf("the next listener got %d events, want 3", len(got))
	}
	if n := testutil.ToFloat64(m.eventsApplied); n != 3 {
		t.Errorf("events applied: %v, want 3", n)
	}
	want := `
# HELP calculator_outcomes_total Outcomes the view applied live (not replayed) since the process started, by kind (ValueCreated, ValueUpdated, CommandRejected) and rejection reason (empty for a success).
# TYPE calculator_outcomes_total counter
calculator_outcomes_total{kind="CommandRejected",reason="division_by_zero"} 1
calculator_outcomes_total{kind="ValueCreated",reason=""} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "calculator_outcomes_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.appendSeconds); n != 1 {
		t.Fatalf("append histogram series: %d", n)
	}
	if c := histogramCount(t, m, "calculator_command_append_duration_seconds"); c != 3 {
		t.Errorf("appends timed: %d, want 3 (failures included)", c)
	}
	if c := histogramCount(t, m, "calculator_command_accept_to_applied_seconds"); c != 2 {
		t.Errorf("accept-to-applied observations: %d, want the 2 live commands accepted here", c)
	}
	if n := m.accepted.len(); n != 0 {
		t.Errorf("accept times still held after their outcomes: %d", n)
	}
}

func histogramCount(t *testing.T, m *Metrics, name string) uint64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestAcceptTimesStayBounded(t *testing.T) {
	at := newAcceptTimes(4)
	ids := make([]uuid.UUID, 10)
	for i := range ids {
		ids[i] = uuid.New()
		at.put(ids[i], time.Duration(i))
	}
	if n := at.len(); n > 8 {
		t.Errorf("%d entries held, want at most 2 generations of 4", n)
	}
	at.mu.Lock()
	defer at.mu.Unlock()
	if _, ok := at.take(ids[0]); ok {
		t.Error("the oldest entry is still held")
	}
	for _, i := range []int{6, 9} { // the last limit+ entries are always held
		if got, ok := at.take(ids[i]); !ok || got != time.Duration(i) {
			t.Errorf("entry %d: %v %v", i, got, ok)
		}
	}
}

// parts are accessors with fixed answers.
type fakeProcessor struct{ position eventlog.Offsets }

func (fakeProcessor) Ready() bool                         { return true }
func (p fakeProcessor) Behind(end eventlog.Offsets) int64 { return behind(end, p.position) }
func (fakeProcessor) Stats() processor.Stats {
	return processor.Stats{Succeeded: 5, Rejected: 2, Duplicates: 1, EventsReplay: 4}
}
func (fakeView) Ready() bool { return false }
func (v fakeView) Progress() view.Progress {
	return view.Progress{EventsRead: v.read, Position: v.read, EndAtStart: v.target}
}
func (fakeSubscriptions) Ready() bool { return true }
func (fakeSubscriptions) Stats() subscriptions.Stats {
	return subscriptions.Stats{Dropped: 3, Statuses: 7}
}

type fakeView struct{ read, target int64 }
type fakeSubscriptions struct{}

func TestWatch(t *testing.T) {
	m := New()
	ends := map[string]eventlog.Offsets{"commands": {0: 10, 1: 5}, "events": {0: 9, 1: 5}}
	m.Watch(Parts{
		End: func(_ context.Context, topic string) (eventlog.Offsets, error) {
			if end, ok := ends[topic]; ok {
				return end, nil
			}
			return nil, errors.New("no such topic")
		},
		CommandsTopic: "commands", EventsTopic: "events",
		Processor:     fakeProcessor{position: eventlog.Offsets{0: 8}}, // partition 1 not started
		View:          fakeView{read: 10, target: 12},
		Subscriptions: fakeSubscriptions{},
	})
	// The view applied partition 0 up to offset 6 and partition 1 up to 3,
	// but read 10 records: a Kafka topic with a marker after each event.
	m.Applied(nil)([]outcome.Applied{
		{Record: eventlog.Record{Partition: 0, Offset: 6}, Replay: true},
		{Record: eventlog.Record{Partition: 1, Offset: 3}, Replay: true},
	})
	want := `
# HELP calculator_processor_lag_records Commands in the commands topic that the processor has not handled yet.
# TYPE calculator_processor_lag_records gauge
calculator_processor_lag_records 7
# HELP calculator_view_lag_records Records of the events topic that the view has not applied yet (on Kafka, up to one transaction marker per partition more).
# TYPE calculator_view_lag_records gauge
calculator_view_lag_records 3
# HELP calculator_ready 1 once the part has replayed the log and follows it live (the conditions of /readyz), 0 before.
# TYPE calculator_ready gauge
calculator_ready{part="processor"} 1
calculator_ready{part="subscriptions"} 1
calculator_ready{part="view"} 0
# HELP calculator_view_replay_target_records The end of the events topic when the view started, as offsets summed over its partitions: its replay is done once calculator_view_position_records reaches it.
# TYPE calculator_view_replay_target_records gauge
calculator_view_replay_target_records 12
# HELP calculator_view_position_records Where the view is in the events topic, as offsets summed over its partitions (on Kafka, transaction markers count).
# TYPE calculator_view_position_records gauge
calculator_view_position_records 10
# HELP calculator_sse_subscribers_dropped_total Subscribers disconnected for falling behind (a full queue or a write that did not finish in time) since the process started.
# TYPE calculator_sse_subscribers_dropped_total counter
calculator_sse_subscribers_dropped_total 3
`
	names := []string{"calculator_processor_lag_records", "calculator_view_lag_records", "calculator_ready", "calculator_view_replay_target_records", "calculator_view_position_records", "calculator_sse_subscribers_dropped_total"}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	// When the log cannot say where the topics end, the lags are left out
	// and the rest is still served.
	delete(ends, "events")
	if n, err := testutil.GatherAndCount(m.Registry(), "calculator_view_lag_records", "calculator_processor_lag_records"); err != nil || n != 1 {
		t.Errorf("lag series without the events topic's end: %d (%v), want the processor's only", n, err)
	}
}

func TestHandlerServesTheTextFormat(t *testing.T) {
	m := New()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "calculator_view_events_applied_total"} {
		if !strings.Contains(rec.Body.String(), "\n"+name+" ") {
			t.Errorf("no %s in the scrape", name)
		}
	}
}

func TestCommandID(t *testing.T) {
	id := uuid.New()
	fast := commandMessage(id).Value
	// The same command with its fields in another order: decoded.
	reordered := []byte(`{"action":"CreateValue","id":"` + id.String() + `","data":{"value-id":"` + uuid.NewString() + `","value":1},"timestamp":"2026-01-02T03:04:05Z"}`)
	for _, c := range []struct {
		name  string
		value []byte
		ok    bool
	}{
		{"the commander's form", fast, true},
		{"another order", reordered, true},
		{"cut short", []byte(`{"id":"` + id.String()), false},
		{"not a command", []byte(`{"action":"CreateValue","id":"` + id.String() + `"}`), false},
		{"a bad id", []byte(`{"id":"` + strings.Repeat("z", 36) + `","action":"CreateValue"}`), false},
		{"empty", nil, false},
	} {
		got, ok := commandID(c.value)
		if ok != c.ok || ok && got != id {
			t.Errorf("%s: %v %v, want %v %v", c.name, got, ok, id, c.ok)
		}
	}
}
