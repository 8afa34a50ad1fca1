package filelog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
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

// BenchmarkOpen opens a topic of records commands, with its index
// checkpoint (Open checks nothing, the background check reads the file
// after it) and without (Open reads and checks every record). The topics
// are 1,000,000 records (250 MB) unless FILELOG_BENCH_OPEN_RECORDS lists
// others, e.g. 1000000,10000000 (2.5 GB in a temporary directory):
//
//	FILELOG_BENCH_OPEN_RECORDS=1000000,10000000 go test -run '^$' -bench BenchmarkOpen -benchtime 5x -count 5 ./eventlog/filelog/
func BenchmarkOpen(b *testing.B) {
	sizes := []int{1_000_000}
	if env := os.Getenv("FILELOG_BENCH_OPEN_RECORDS"); env != "" {
		sizes = nil
		for _, f := range strings.Split(env, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n <= 0 {
				b.Fatalf("FILELOG_BENCH_OPEN_RECORDS=%q: %q is not a number of records", env, f)
			}
			sizes = append(sizes, n)
		}
	}
	for _, records := range sizes {
		dir := b.TempDir()
		writeBenchTopic(b, filepath.Join(dir, "t"+fileSuffix), records)
		for _, checkpointed := range []bool{true, false} {
			b.Run(fmt.Sprintf("records=%d/checkpoint=%v", records, checkpointed), func(b *testing.B) {
				openClose(b, dir) // writes the checkpoint
				for b.Loop() {
					if !checkpointed {
						b.StopTimer()
						if err := os.Remove(filepath.Join(dir, "t"+checkpointSuffix)); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
					l, err := Open(dir, nopLogger)
					if err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					if got := l.topics["t"].checkedAtOpen; checkpointed != (got == 0) {
						b.Fatalf("Open checked %d records", got)
					}
					if err := l.Close(); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				if info, err := os.Stat(filepath.Join(dir, "t"+checkpointSuffix)); err == nil {
					b.ReportMetric(float64(info.Size()), "checkpoint-bytes")
				}
			})
		}
	}
}

// BenchmarkRead reads records of a topic of readRecords commands by offset,
// as the history and the time travel do: one random record per read
// (?at=), a value's history among 1,000 busy values (64 offsets about 1,000
// apart), and one among 10 (64 offsets about 10 apart, close enough for
// runs to be read at once).
func BenchmarkRead(b *testing.B) {
	const readRecords = 1_000_000
	dir := b.TempDir()
	writeBenchTopic(b, filepath.Join(dir, "t"+fileSuffix), readRecords)
	l, err := Open(dir, nopLogger)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	// offsets returns n increasing offsets, gap apart on average, from a
	// random start.
	offsets := func(n, gap int) []int64 {
		o := make([]int64, n)
		o[0] = rng.Int64N(int64(readRecords - 2*n*gap))
		for i := 1; i < n; i++ {
			o[i] = o[i-1] + 1 + rng.Int64N(int64(2*gap-1))
		}
		return o
	}
	for _, c := range []struct {
		name   string
		n, gap int
	}{
		{"one", 1, 1},
		{"history/among=1000", 64, 1000},
		{"history/among=10", 64, 10},
	} {
		b.Run(c.name, func(b *testing.B) {
			sets := make([][]int64, 1024)
			for i := range sets {
				sets[i] = offsets(c.n, c.gap)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				recs, err := l.Read(ctx, "t", 0, sets[i%len(sets)])
				if err != nil || len(recs) != c.n {
					b.Fatalf("Read: %d records, %v", len(recs), err)
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*c.n), "ns/record")
		})
	}
}

// writeBenchTopic writes a topic file of records commands, frame after
// frame, as the writer would.
func writeBenchTopic(b *testing.B, path string, records int) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	frame := appendFrame(nil, benchMessage)
	for range records {
		if _, err := w.Write(frame); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
}

func openClose(b *testing.B, dir string) {
	b.Helper()
	l, err := Open(dir, nopLogger)
	if err != nil {
		b.Fatal(err)
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
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
