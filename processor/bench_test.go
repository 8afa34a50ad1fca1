package processor_test

import (
	"context"
	"testing"
	"time"

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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() { done <- p.Run(ctx) }()
	for !p.Ready() {
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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() { done <- p.Run(ctx) }()
	for {
		s := p.Stats()
		if s.Succeeded+s.Rejected == int64(b.N) {
			break
		}
		select {
		case err := <-done:
			b.Fatalf("Run stopped: %v", err)
		default:
			time.Sleep(20 * time.Microsecond)
		}
	}
	b.StopTimer()
	cancel()
	<-done
	if s := p.Stats(); s.Rejected != 0 {
		b.Fatalf("%d commands rejected, want none", s.Rejected)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commands/s")
}
