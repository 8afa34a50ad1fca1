package metrics

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/outcome"
)

// BenchmarkCommandPath is what the metrics add to one command: its append
// timed and its acceptance noted (TimeAppends), then its outcome counted
// and its accept-to-applied latency observed (Applied), against the bare
// append. See BENCHMARKS.md, Metrics and the access log.
func BenchmarkCommandPath(b *testing.B) {
	ctx := context.Background()
	ids := make([]uuid.UUID, 1024)
	msgs := make([]eventlog.Message, len(ids))
	for i := range ids {
		ids[i] = uuid.New()
		msgs[i] = commandMessage(ids[i])
	}
	b.Run("bare", func(b *testing.B) {
		var log Appender = fakeLog{}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_ = log.Append(ctx, "commands", msgs[i%len(msgs)])
			i++
		}
	})
	b.Run("instrumented", func(b *testing.B) {
		m := New()
		log := m.TimeAppends(fakeLog{})
		listener := m.Applied(func([]outcome.Applied) {})
		batch := make([]outcome.Applied, 1)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			id := ids[i%len(ids)]
			_ = log.Append(ctx, "commands", msgs[i%len(msgs)])
			batch[0] = applied(id, domain.ValueUpdated, "", int64(i), false)
			listener(batch)
			i++
		}
	})
}
