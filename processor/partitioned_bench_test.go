package processor_test

import (
	"fmt"
	"testing"
	"time"

	"calculator/eventlog/kafkalog"
	"calculator/internal/kafkatest"
	"calculator/internal/loggen"
	"calculator/processor"
)

// BenchmarkPartitionedDecide answers b.N commands waiting in a commands
// topic of 1 or 6 partitions on the real broker, with one processor that
// owns every partition (one owner goroutine, consumer and transactional
// writer per partition), and measures until the last outcome is committed:
// the decide capacity of one partition, and of one instance owning six, that
// BENCHMARKS.md's capacity model starts from. Without a broker it skips.
func BenchmarkPartitionedDecide(b *testing.B) {
	for _, partitions := range []int{1, 6} {
		b.Run(fmt.Sprintf("partitions=%d", partitions), func(b *testing.B) {
			brokers := kafkatest.Brokers(b)
			commands, events := kafkatest.Topic("bench-commands"), kafkatest.Topic("bench-events")
			kafkatest.CreateTopic(b, brokers, commands, partitions)
			kafkatest.CreateTopic(b, brokers, events, partitions)
			l, err := kafkalog.New(kafkalog.Config{Brokers: brokers, Logger: kafkatest.Logger(b)})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			spec := loggen.Mix(b.N)
			spec.CommandsTopic = commands
			if err := loggen.Write(kafkatest.Context(b, 5*time.Minute), l, spec, nil); err != nil {
				b.Fatal(err)
			}
			all := make(staticGroup, partitions)
			for i := range all {
				all[i] = int32(i)
			}
			b.ResetTimer()
			in := startInstance(b, brokers, commands, events, func(*kafkalog.Log) processor.Group { return all }, 0)
			for {
				s := in.p.Stats()
				if s.Succeeded+s.Rejected == int64(b.N) {
					break
				}
				if s.Succeeded+s.Rejected > int64(b.N) {
					b.Fatalf("%d outcomes for %d commands", s.Succeeded+s.Rejected, b.N)
				}
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			in.stop()
			if s := in.p.Stats(); s.Rejected != 0 {
				b.Fatalf("%d commands rejected, want none", s.Rejected)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commands/s")
		})
	}
}
