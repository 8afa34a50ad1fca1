package filelog

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/rs/zerolog"

	"calculator/eventlog"
)

// A command as the commander appends it: about 200 bytes, keyed by value id.
var benchMessage = eventlog.Message{
	Key: []byte("11111111-1111-1111-1111-111111111111"),
	Value: []byte(`{"id":"22222222-2222-2222-2222-222222222222","action":"UpdateValue","data":{"value-id":` +
		`"11111111-1111-1111-1111-111111111111","operation":"MULTIPLY","value":3},"timestamp":"2026-11-23T12:00:00.123456789Z"}`),
}

// BenchmarkAppend appends one message per call from many goroutines, as the
// commander does under load: group commit shares each fsync between the
// appends waiting for it. appends/sync says how well it does.
func BenchmarkAppend(b *testing.B) {
	for _, parallelism := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("callers=%d", parallelism*benchProcs()), func(b *testing.B) {
			l := openB(b)
			ctx := context.Background()
			if err := l.Append(ctx, "t", benchMessage); err != nil { // creates the topic
				b.Fatal(err)
			}
			t := l.topics["t"]
			syncs := t.syncs.Load()
			b.SetParallelism(parallelism)
			b.SetBytes(int64(len(benchMessage.Value)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := l.Append(ctx, "t", benchMessage); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			if n := t.syncs.Load() - syncs; n > 0 {
				b.ReportMetric(float64(b.N)/float64(n), "appends/sync")
			}
		})
	}
}

// BenchmarkFollow reads records from the start of a topic, as every replay
// does: b.N records in all, from a topic of followRecords (read again from
// the start as often as needed, so that the file stays small).
func BenchmarkFollow(b *testing.B) {
	const followRecords = 1 << 16
	l := openB(b)
	ctx := context.Background()
	batch := make([]eventlog.Message, 4096)
	for i := range batch {
		batch[i] = benchMessage
	}
	for written := 0; written < followRecords; written += len(batch) {
		if err := l.Append(ctx, "t", batch...); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(benchMessage.Value)))
	b.ReportAllocs()
	b.ResetTimer()
	for read := 0; read < b.N; {
		err := l.Follow(ctx, "t", nil, func(batch eventlog.Batch) error {
			read += len(batch.Records)
			if batch.CaughtUp || read >= b.N {
				return eventlog.ErrStopFollowing
			}
			return nil
		})
		if !errors.Is(err, eventlog.ErrStopFollowing) {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func benchProcs() int { return testingProcs }

func openB(b *testing.B) *Log {
	b.Helper()
	l, err := Open(b.TempDir(), nopLogger)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

var (
	testingProcs = runtime.GOMAXPROCS(0)
	nopLogger    = zerolog.Nop()
)
