package app_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"calculator/app"
	"calculator/internal/loggen"
)

// BenchmarkRestart starts the whole program on a data directory holding b.N
// commands and their b.N events (a tenth creates, the rest updates) and
// measures the time until /readyz answers 200: opening and checking the log
// files, then the processor's and the view's replays, which run side by side.
// The restart target (1,000,000 events ready in under 2 s) is this with
// -benchtime=1000000x, or scripts/bench.sh, which times the real binary.
func BenchmarkRestart(b *testing.B) {
	dir := b.TempDir()
	spec := loggen.Mix(b.N)
	spec.CommandsTopic, spec.EventsTopic = "commands", "events"
	if err := loggen.FileLog(b, dir, spec).Close(); err != nil { // the program opens the directory itself
		b.Fatal(err)
	}

	b.ReportAllocs()
	b.ResetTimer()
	a, err := app.New(app.Config{Addr: "127.0.0.1:0", DataDir: dir, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	url := "http://" + a.Addr() + "/readyz"
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
