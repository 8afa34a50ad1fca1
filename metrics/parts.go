package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"calculator/eventlog"
	"calculator/processor"
	"calculator/subscriptions"
	"calculator/view"
)

// Parts are what the scrape-time collectors read: accessors the parts
// already have. Every field is required.
type Parts struct {
	// End is the log's End: where each topic ends now.
	End                        func(ctx context.Context, topic string) (eventlog.Offsets, error)
	CommandsTopic, EventsTopic string
	Processor                  Processor
	View                       View
	Subscriptions              Subscriptions
}

// Processor is what the metrics read of the processor.
type Processor interface {
	Ready() bool
	// Behind is how many commands of the commands topic's end the
	// processor has still to handle (in the partitions it decides).
	Behind(end eventlog.Offsets) int64
	Stats() processor.Stats
}

// View is what the metrics read of the view.
type View interface {
	Ready() bool
	Progress() view.Progress
}

// Subscriptions is what the metrics read of the subscriptions.
type Subscriptions interface {
	Ready() bool
	Stats() subscriptions.Stats
}

// endTimeout bounds each scrape's questions to the log about where the
// topics end (a network round trip on Kafka). Past it, or when the log
// cannot answer, the lag metrics are left out of that scrape.
const endTimeout = 2 * time.Second

// Watch registers the collectors that read p at each scrape.
func (m *Metrics) Watch(p Parts) {
	ready := prometheus.NewDesc(Namespace+"_ready", "1 once the part has replayed the log and follows it live (the conditions of /readyz), 0 before.", []string{"part"}, nil)
	readiness := collectorFunc{descs: []*prometheus.Desc{ready}, collect: func(ch chan<- prometheus.Metric) {
		for part, ok := range map[string]bool{"processor": p.Processor.Ready(), "view": p.View.Ready(), "subscriptions": p.Subscriptions.Ready()} {
			ch <- prometheus.MustNewConstMetric(ready, prometheus.GaugeValue, boolValue(ok), part)
		}
	}}

	commands := prometheus.NewDesc(Namespace+"_processor_commands_total", "Commands the processor has handled since the process started, by what became of them: succeeded, rejected, duplicate (its id already had an outcome: skipped).", []string{"result"}, nil)
	malformed := prometheus.NewDesc(Namespace+"_processor_malformed_records_total", "Records the processor could not decode and skipped (commands, or events in a replay), since the process started.", nil, nil)
	replayed := prometheus.NewDesc(Namespace+"_processor_replayed_events", "Events the processor folded in its last replay of the events topic.", nil, nil)
	decidedIDs := prometheus.NewDesc(Namespace+"_processor_decided_ids", "Command ids the processor holds in its window of decided ids (by which a command written twice is answered once), over the partitions it decides.", nil, nil)
	processorStats := collectorFunc{descs: []*prometheus.Desc{commands, malformed, replayed, decidedIDs}, collect: func(ch chan<- prometheus.Metric) {
		s := p.Processor.Stats()
		for result, n := range map[string]int64{"succeeded": s.Succeeded, "rejected": s.Rejected, "duplicate": s.Duplicates} {
			ch <- prometheus.MustNewConstMetric(commands, prometheus.CounterValue, float64(n), result)
		}
		ch <- prometheus.MustNewConstMetric(malformed, prometheus.CounterValue, float64(s.Malformed))
		ch <- prometheus.MustNewConstMetric(replayed, prometheus.GaugeValue, float64(s.EventsReplay))
		ch <- prometheus.MustNewConstMetric(decidedIDs, prometheus.GaugeValue, float64(s.DecidedIDs))
	}}

	m.registry.MustRegister(readiness, processorStats,
		sample(p.View.Progress,
			counter("view_records_read_total", "Records the view has read from the events topic since the process started (its replay progress, against calculator_view_replay_target_records).", func(pr view.Progress) int64 { return pr.EventsRead }),
			gauge("view_replay_target_records", "The end of the events topic when the view started, as offsets summed over its partitions: its replay is done once calculator_view_position_records reaches it.", func(pr view.Progress) int64 { return pr.EndAtStart }),
			gauge("view_position_records", "Where the view is in the events topic, as offsets summed over its partitions (on Kafka, transaction markers count).", func(pr view.Progress) int64 { return pr.Position })),
		sample(p.Subscriptions.Stats,
			counter("sse_subscribers_dropped_total", "Subscribers disconnected for falling behind (a full queue or a write that did not finish in time) since the process started.", func(s subscriptions.Stats) int64 { return s.Dropped }),
			gauge("command_statuses", "Command statuses held in memory for GET /commands/{id} and the command streams.", func(s subscriptions.Stats) int64 { return int64(s.Statuses) }),
			counter("command_statuses_evicted_total", "Command statuses forgotten, oldest first, to keep the table within its capacity.", func(s subscriptions.Stats) int64 { return s.Evicted })),
		m.lagCollector(p),
	)
}

// field is a metric without labels whose value is read from a sample S of
// a part (its Progress or Stats).
type field[S any] struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(S) int64
}

// counter and gauge are the fields calculator_<name>.
func counter[S any](name, help string, value func(S) int64) field[S] {
	return field[S]{prometheus.NewDesc(Namespace+"_"+name, help, nil, nil), prometheus.CounterValue, value}
}

func gauge[S any](name, help string, value func(S) int64) field[S] {
	return field[S]{prometheus.NewDesc(Namespace+"_"+name, help, nil, nil), prometheus.GaugeValue, value}
}

// sample collects fields, all read from one sample of a part taken at each
// scrape.
func sample[S any](read func() S, fields ...field[S]) prometheus.Collector {
	c := collectorFunc{collect: func(ch chan<- prometheus.Metric) {
		s := read()
		for _, f := range fields {
			ch <- prometheus.MustNewConstMetric(f.desc, f.kind, float64(f.value(s)))
		}
	}}
	for _, f := range fields {
		c.descs = append(c.descs, f.desc)
	}
	return c
}

// lagCollector reports how many records the processor and the view have
// still to read: the end of their topic now minus their position. The
// processor's position is the next command it will handle (the commands
// topic has no transaction markers, so this is exact). The view's is the
// lower of two upper bounds: the topic's end minus the view's position
// (exact on the file log), and the offsets after the last event it
// applied in each partition (on Kafka, where transaction markers take
// offsets that no reader sees, this leaves at most the marker that closes
// the last transaction of each partition).
func (m *Metrics) lagCollector(p Parts) prometheus.Collector {
	processorLag := prometheus.NewDesc(Namespace+"_processor_lag_records", "Commands in the commands topic that the processor has not handled yet.", nil, nil)
	viewLag := prometheus.NewDesc(Namespace+"_view_lag_records", "Records of the events topic that the view has not applied yet (on Kafka, up to one transaction marker per partition more).", nil, nil)
	return collectorFunc{descs: []*prometheus.Desc{processorLag, viewLag}, collect: func(ch chan<- prometheus.Metric) {
		ctx, cancel := context.WithTimeout(context.Background(), endTimeout)
		defer cancel()
		if end, err := p.End(ctx, p.CommandsTopic); err == nil {
			ch <- prometheus.MustNewConstMetric(processorLag, prometheus.GaugeValue, float64(p.Processor.Behind(end)))
		}
		if end, err := p.End(ctx, p.EventsTopic); err == nil {
			var size int64
			for _, o := range end {
				size += o
			}
			m.viewMu.Lock()
			lag := min(size-p.View.Progress().Position, behind(end, m.viewNext))
			m.viewMu.Unlock()
			ch <- prometheus.MustNewConstMetric(viewLag, prometheus.GaugeValue, float64(max(lag, 0)))
		}
	}}
}

// behind sums, over the partitions of end, how far position is from it (a
// partition missing from position is read from 0).
func behind(end, position eventlog.Offsets) int64 {
	var n int64
	for partition, offset := range end {
		n += max(0, offset-position[partition])
	}
	return n
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// collectorFunc is a prometheus.Collector of fixed descriptions whose
// values are read when collected.
type collectorFunc struct {
	descs   []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
