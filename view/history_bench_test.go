package view_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/eventlog/filelog"
	"calculator/eventlog/kafkalog"
	"calculator/internal/kafkatest"
	"calculator/view"
)

// historyEvents is the length of the history the benchmarks read.
const historyEvents = 10_000

// benchLog returns the logs the benchmarks run on: the file log, and Kafka
// when KAFKA_BROKERS is set.
func benchLogs(b *testing.B) map[string]func(b *testing.B) (view.Log, func(...eventlog.Message)) {
	logs := map[string]func(*testing.B) (view.Log, func(...eventlog.Message)){
		"filelog": func(b *testing.B) (view.Log, func(...eventlog.Message)) {
			l, err := filelog.Open(b.TempDir(), zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { l.Close() })
			return l, func(msgs ...eventlog.Message) {
				if err := l.Append(context.Background(), "events", msgs...); err != nil {
					b.Fatal(err)
				}
			}
		},
	}
	if os.Getenv("KAFKA_BROKERS") != "" {
		logs["kafka"] = func(b *testing.B) (view.Log, func(...eventlog.Message)) {
			brokers := kafkatest.Brokers(b)
			topic := kafkatest.Topic("bench-events")
			kafkatest.CreateTopic(b, brokers, topic, 1)
			l, err := kafkalog.New(kafkalog.Config{Brokers: brokers, Logger: zerolog.Nop()})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { l.Close() })
			return topicLog{l, topic}, func(msgs ...eventlog.Message) {
				if err := l.Append(context.Background(), topic, msgs...); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	return logs
}

// topicLog is a Kafka log whose "events" topic is another name, so that each
// benchmark has a topic of its own.
type topicLog struct {
	*kafkalog.Log
	topic string
}

func (l topicLog) Follow(ctx context.Context, _ string, from eventlog.Offsets, fn func(eventlog.Batch) error) error {
	return l.Log.Follow(ctx, l.topic, from, fn)
}

func (l topicLog) End(ctx context.Context, _ string) (eventlog.Offsets, error) {
	return l.Log.End(ctx, l.topic)
}

func (l topicLog) Read(ctx context.Context, _ string, partition int32, offsets []int64) ([]eventlog.Record, error) {
	return l.Log.Read(ctx, l.topic, partition, offsets)
}

// historyBench is a view of a log in which one value has historyEvents
// events, spread among ten times as many events of other values (so that
// reading them takes many reads, not one), ready to answer.
type historyBench struct {
	handler http.Handler
	id      uuid.UUID
	times   []time.Time // of the value's events
}

func newHistoryBench(b *testing.B, open func(*testing.B) (view.Log, func(...eventlog.Message))) *historyBench {
	l, appendEvents := open(b)
	s := &script{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	hb := &historyBench{id: uuid.New()}
	others := make([]uuid.UUID, 1000)
	var batch []eventlog.Message
	add := func(e domain.Event) {
		batch = append(batch, eventlog.Message{Key: []byte(e.ValueID.String()), Value: e.AppendJSON(nil)})
		if len(batch) == 4096 {
			appendEvents(batch...)
			batch = batch[:0]
		}
	}
	for i := range others {
		others[i] = uuid.New()
		add(s.created(others[i], 1))
	}
	value := 1.0
	for i := range historyEvents {
		if i == 0 {
			add(s.created(hb.id, value))
		} else {
			add(s.updated(hb.id, domain.Add, 1, value+1))
			value++
		}
		hb.times = append(hb.times, s.now)
		for j := range 9 {
			add(s.updated(others[(i*9+j)%len(others)], domain.Add, 0, 1))
		}
	}
	appendEvents(batch...)

	v := view.New(l, "events", zerolog.Nop(), nil)
	// As the app runs it: the history index's completed blocks in a file.
	if err := v.WithHistoryFile(filepath.Join(b.TempDir(), "history.blocks")); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done; v.Close() })
	deadline := time.Now().Add(time.Minute)
	for read := v.Progress().EventsRead; !v.Ready() || read < int64(len(others)+10*historyEvents); read = v.Progress().EventsRead {
		if time.Now().After(deadline) {
			b.Fatalf("the view read %d events in a minute", read)
		}
		time.Sleep(time.Millisecond)
	}
	r := chi.NewRouter()
	v.Routes(r)
	hb.handler = r
	return hb
}

// get serves GET path and fails unless it answers 200.
func (hb *historyBench) get(b *testing.B, path string) {
	rec := httptest.NewRecorder()
	hb.handler.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if rec.Code != http.StatusOK {
		b.Fatalf("GET %s = %d %s", path, rec.Code, rec.Body)
	}
}

// BenchmarkHistory reads a history of 10,000 events (ValueCreated and
// ValueUpdated, one in ten of the log's events), through the handler: a
// page of 1,000 (at a random place), and the whole history (ten pages).
// The events come from the log each time.
func BenchmarkHistory(b *testing.B) {
	for name, open := range benchLogs(b) {
		b.Run(name, func(b *testing.B) {
			hb := newHistoryBench(b, open)
			b.Run("page-of-1000", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					hb.get(b, fmt.Sprintf("/values/%s/history?limit=1000&after_version=%d", hb.id, (i*7919)%(historyEvents-1000)))
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/event")
			})
			b.Run("all-10000", func(b *testing.B) {
				for b.Loop() {
					for after := 0; after < historyEvents; after += 1000 {
						hb.get(b, fmt.Sprintf("/values/%s/history?limit=1000&after_version=%d", hb.id, after))
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/historyEvents, "ns/event")
			})
		})
	}
}

// BenchmarkTimeTravel reads the value of a 10,000-event history at a
// version, and at an instant, chosen at random: a lookup in the index and
// one event read from the log.
func BenchmarkTimeTravel(b *testing.B) {
	for name, open := range benchLogs(b) {
		b.Run(name, func(b *testing.B) {
			hb := newHistoryBench(b, open)
			b.Run("version", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					hb.get(b, fmt.Sprintf("/values/%s?version=%d", hb.id, 1+(i*7919)%historyEvents))
				}
			})
			b.Run("at", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					at := hb.times[(i*7919)%historyEvents].Add(time.Millisecond)
					hb.get(b, fmt.Sprintf("/values/%s?at=%s", hb.id, url.QueryEscape(at.Format(time.RFC3339Nano))))
				}
			})
		})
	}
}
