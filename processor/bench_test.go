package processor_test

import (
	"testing"

	"github.com/rs/zerolog"

	"calculator/internal/loggen"
	"calculator/processor"
)

// BenchmarkReplay replays an events log of b.N events (a tenth of them
// creates, the rest updates spread over those values) into a new processor,
// from Run until Ready: the processor's share of a restart.
func BenchmarkReplay(b *testing.B) {
	spec := loggen.Mix(b.N)
	// Both topics: the processor checks that the commands log holds every
	// command the events answer before it is ready.
	spec.CommandsTopic, spec.EventsTopic = "commands", "events"
	l := loggen.FileLog(b, b.TempDir(), spec)
	p := processor.New(l, "commands", "events", zerolog.Nop())
	loggen.Measure(b, p.Run, p.Ready)
	if got := p.Stats().EventsReplay; got != int64(b.N) {
		b.Fatalf("replayed %d events, want %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkProcess answers b.N commands waiting in the commands topic (a
// tenth creates, the rest updates) and measures until the last event is
// durable: decoding, Decide, Apply, encoding and the batched appends of
// events, one per batch of commands read.
func BenchmarkProcess(b *testing.B) {
	spec := loggen.Mix(b.N)
	spec.CommandsTopic = "commands"
	l := loggen.FileLog(b, b.TempDir(), spec)
	p := processor.New(l, "commands", "events", zerolog.Nop())
	loggen.Measure(b, p.Run, func() bool {
		s := p.Stats()
		return s.Succeeded+s.Rejected == int64(b.N)
	})
	if s := p.Stats(); s.Rejected != 0 {
		b.Fatalf("%d commands rejected, want none", s.Rejected)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commands/s")
}
