// Package metrics is what GET /metrics shows: the calculator's Prometheus
// metrics, in a registry of their own (not the global one), served in the
// text exposition format by prometheus/client_golang.
//
// Nothing here is called by the commander, the processor or the view: every
// figure comes from a decorator that the app puts around a part, or from an
// accessor the part already has, read at scrape time.
//
//   - CountCommands, an HTTP middleware on the command routes, counts the
//     POSTs and PUTs by HTTP status (202 accepted, 4xx refused, 503 log
//     unavailable): calculator_command_requests_total.
//   - TimeAppends wraps the log the commander appends to: the append latency
//     (calculator_command_append_duration_seconds), and the moment each
//     command was accepted, kept in a bounded table until its outcome is
//     applied.
//   - Applied wraps the view's listener of applied events: the events the
//     view folded in (calculator_view_events_applied_total), the outcomes by
//     kind and rejection reason (calculator_outcomes_total, live events only:
//     a replay re-reads outcomes decided before this process started), and
//     from accept to applied (calculator_command_accept_to_applied_seconds,
//     for the commands this process accepted).
//   - CountStreams, an HTTP middleware on the subscription routes, counts
//     the SSE streams open by stream (calculator_sse_subscribers).
//   - SnapshotWritten counts the snapshots written, their size and how
//     long each phase took (calculator_snapshots_written_total,
//     calculator_snapshot_bytes, calculator_snapshot_duration_seconds).
//   - Watch registers the collectors that read the parts at each scrape:
//     readiness, replay progress, the processor's and the view's lag (records
//     behind the end of their topic, asked of the log at scrape time), the
//     processor's counters, the subscriptions' drops and statuses.
//
// The Go runtime and process collectors are registered too.
package metrics

import (
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"calculator/eventlog"
)

// Namespace prefixes every metric of the calculator.
const Namespace = "calculator"

// latencyBuckets are the histogram buckets of the latencies, in seconds:
// from 100 µs (an append to the file log shares an fsync of about a
// millisecond) to 10 s (beyond the 5 s append timeout).
var latencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Metrics holds the calculator's metrics and their registry. Create it with
// New; its methods may be called from any goroutine.
type Metrics struct {
	registry *prometheus.Registry

	commandRequests *prometheus.CounterVec
	appendSeconds   prometheus.Histogram
	acceptToApplied prometheus.Histogram
	eventsApplied   prometheus.Counter
	outcomes        *prometheus.CounterVec
	subscribers     *prometheus.GaugeVec
	snapshots       prometheus.Counter
	snapshotBytes   prometheus.Gauge
	snapshotSeconds *prometheus.HistogramVec

	// accepted holds when each command this process accepted was accepted,
	// until the view applies its outcome.
	accepted *acceptTimes
	// epoch is the origin of the monotonic times in accepted.
	epoch time.Time

	// viewMu guards viewNext: the offset after the last event the view
	// applied, per partition of the events topic.
	viewMu   sync.Mutex
	viewNext eventlog.Offsets
}

// New returns the metrics, registered with a new registry together with the
// Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		commandRequests: prometheus.NewCounterVec(prometheus.CounterOpts(opts("command_requests_total",
			"POST /values and PUT /values/{id} requests answered, by method and HTTP status: 202 (or 200, 201, 409, 422 with ?wait) accepted, 4xx refused, 503 the commands log did not store the command.")),
			[]string{"method", "code"}),
		appendSeconds: latencyHistogram("command_append_duration_seconds",
			"Time the commander waited for the commands log to store a command (durable), failures included."),
		acceptToApplied: latencyHistogram("command_accept_to_applied_seconds",
			"Time from a command's acceptance (stored in the commands log) to the view's applying its outcome, for the commands this process accepted."),
		eventsApplied: prometheus.NewCounter(prometheus.CounterOpts(opts("view_events_applied_total",
			"Events the view folded in since the process started, the startup replay included."))),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts(opts("outcomes_total",
			"Outcomes the view applied live (not replayed) since the process started, by kind (ValueCreated, ValueUpdated, CommandRejected) and rejection reason (empty for a success).")),
			[]string{"kind", "reason"}),
		subscribers: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("sse_subscribers",
			"Server-Sent Events streams open, by stream (commands, events, values).")),
			[]string{"stream"}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts(opts("snapshots_written_total",
			"Snapshots of the state written to the data directory since the process started."))),
		snapshotBytes: prometheus.NewGauge(prometheus.GaugeOpts(opts("snapshot_bytes",
			"Size of the last snapshot written."))),
		snapshotSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "snapshot_duration_seconds",
			Help:    "Time a snapshot took, by phase: freeze (the copy of the state, on the view's goroutine between two batches of events: the view's pause), encode and write (in the background, fsync and rename included).",
			Buckets: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"phase"}),
		accepted: newAcceptTimes(acceptTimesLimit),
		epoch:    time.Now(),
		viewNext: eventlog.Offsets{},
	}
	m.registry.MustRegister(
		// The memstats, and the live heap after the last collection
		// (go_gc_heap_live_bytes), by which memory per value and a heap
		// that stops growing are measured (BENCHMARKS.md).
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.commandRequests, m.appendSeconds, m.acceptToApplied, m.eventsApplied, m.outcomes, m.subscribers,
		m.snapshots, m.snapshotBytes, m.snapshotSeconds,
	)
	return m
}

// SnapshotWritten records a snapshot of size bytes, frozen, encoded and
// written in the given times.
func (m *Metrics) SnapshotWritten(size int64, freeze, encode, write time.Duration) {
	m.snapshots.Inc()
	m.snapshotBytes.Set(float64(size))
	m.snapshotSeconds.WithLabelValues("freeze").Observe(freeze.Seconds())
	m.snapshotSeconds.WithLabelValues("encode").Observe(encode.Seconds())
	m.snapshotSeconds.WithLabelValues("write").Observe(write.Seconds())
}

// opts are the options of the metric calculator_<name>.
func opts(name, help string) prometheus.Opts {
	return prometheus.Opts{Namespace: Namespace, Name: name, Help: help}
}

// latencyHistogram is the histogram calculator_<name> over latencyBuckets.
func latencyHistogram(name, help string) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: latencyBuckets})
}

// Registry is the registry of the metrics, for more collectors (and tests).
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler serves the metrics in the Prometheus text format (or OpenMetrics
// when the scraper asks for it), and counts its own scrapes
// (promhttp_metric_handler_requests_total).
func (m *Metrics) Handler() http.Handler {
	return promhttp.InstrumentMetricHandler(m.registry, promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError, // a failing collector does not hide the others
		EnableOpenMetrics: true,
	}))
}

// now is the monotonic time since m was created.
func (m *Metrics) now() time.Duration { return time.Since(m.epoch) }
