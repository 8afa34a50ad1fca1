package view_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"calculator/internal/loggen"
	"calculator/view"
)

// BenchmarkReplay replays an events log of b.N events (a tenth of them
// creates, the rest updates spread over those values) into a new view, from
// Run until Ready: the view's share of a restart.
func BenchmarkReplay(b *testing.B) {
	spec := loggen.Mix(b.N)
	spec.EventsTopic = "events"
	l := loggen.FileLog(b, b.TempDir(), spec)
	v := view.New(l, "events", zerolog.Nop(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() { done <- v.Run(ctx) }()
	for !v.Ready() {
		select {
		case err := <-done:
			b.Fatalf("Run stopped before it was ready: %v", err)
		default:
			time.Sleep(20 * time.Microsecond)
		}
	}
	b.StopTimer()
	cancel()
	<-done
	if read := v.Progress().EventsRead; read != int64(b.N) {
		b.Fatalf("read %d events, want %d", read, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
