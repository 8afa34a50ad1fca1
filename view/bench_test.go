package view_test

import (
	"testing"

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
	loggen.Measure(b, v.Run, v.Ready)
	if read := v.Progress().EventsRead; read != int64(b.N) {
		b.Fatalf("read %d events, want %d", read, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
