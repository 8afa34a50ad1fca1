// Package loggen writes a calculator's logs directly, without the HTTP API:
// commands and, for each, the event the processor would have written (the
// same Decide, the same headers). It fills a log with a million events in a
// few seconds, for the replay benchmarks and the restart measurement.
package loggen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/eventlog/filelog"
)

// Appender is what Write needs of a log.
type Appender interface {
	Append(ctx context.Context, topic string, msgs ...eventlog.Message) error
}

// Spec says what to write.
type Spec struct {
	// CommandsTopic may be empty: then only the events are written (enough
	// for the view's replay; the processor's also checks that the commands
	// log holds the commands the events answer). EventsTopic may be
	// empty: then only the commands are written, for a processor to answer.
	CommandsTopic, EventsTopic string
	// Values is the number of CreateValue commands, Updates the number of
	// UpdateValue commands spread at random over those values (all of them
	// succeed). Creates come first, then updates.
	Values, Updates int
	// Batch is the number of records per Append (default 4096).
	Batch int
	// Seed makes the spread of updates repeatable.
	Seed uint64
}

// Write appends Values+Updates commands and as many events to log, whose
// commands topic must be empty (the events' command-offset headers count from
// 0). Progress, if not nil, is called after each batch.
func Write(ctx context.Context, log Appender, spec Spec, progress func(done int)) error {
	if spec.Batch <= 0 {
		spec.Batch = 4096
	}
	if spec.Values <= 0 && spec.Updates > 0 {
		return fmt.Errorf("loggen: %d updates need at least one value", spec.Updates)
	}
	rng := rand.New(rand.NewPCG(spec.Seed, spec.Seed^0x9e3779b97f4a7c15))
	state := domain.NewState()
	ids := make([]uuid.UUID, 0, spec.Values)
	ops := []domain.Operation{domain.Add, domain.Subtract, domain.Multiply, domain.Divide}
	one, two := domain.DecimalFromInt(1), domain.DecimalFromInt(2)
	now := time.Now().UTC()
	total := spec.Values + spec.Updates
	commands := make([]eventlog.Message, 0, spec.Batch)
	events := make([]eventlog.Message, 0, spec.Batch)
	flush := func(done int) error {
		if spec.CommandsTopic != "" {
			if err := log.Append(ctx, spec.CommandsTopic, commands...); err != nil {
				return fmt.Errorf("loggen: append commands: %w", err)
			}
		}
		if spec.EventsTopic != "" {
			if err := log.Append(ctx, spec.EventsTopic, events...); err != nil {
				return fmt.Errorf("loggen: append events: %w", err)
			}
		}
		commands, events = commands[:0], events[:0]
		if progress != nil {
			progress(done)
		}
		return nil
	}
	for i := range total {
		c := domain.Command{ID: newID(rng), Timestamp: now}
		if i < spec.Values {
			c.Action, c.ValueID, c.Value = domain.CreateValue, newID(rng), domain.DecimalFromInt(int64(rng.IntN(1000)))
			ids = append(ids, c.ValueID)
		} else {
			c.Action, c.ValueID = domain.UpdateValue, ids[rng.IntN(len(ids))]
			c.Operation, c.Value = ops[rng.IntN(len(ops))], one
			if c.Operation == domain.Add {
				c.Value = two
			}
		}
		e := domain.Decide(state, c, now)
		if _, _, err := state.Apply(e); err != nil {
			return fmt.Errorf("loggen: %w", err)
		}
		key := []byte(c.ValueID.String())
		commands = append(commands, eventlog.Message{Key: key, Value: c.AppendJSON(nil)})
		events = append(events, eventlog.Message{
			Key:     key,
			Value:   e.AppendJSON(nil),
			Headers: eventlog.CommandPositionHeaders(0, int64(i)),
		})
		if len(commands) == spec.Batch {
			if err := flush(i + 1); err != nil {
				return err
			}
		}
	}
	if len(commands) > 0 {
		return flush(total)
	}
	return nil
}

// newID is a random (version 4) UUID from rng: much faster than uuid.New,
// which reads the system's random source for each id.
func newID(rng *rand.Rand) uuid.UUID {
	var id uuid.UUID
	a, b := rng.Uint64(), rng.Uint64()
	for i := range 8 {
		id[i], id[8+i] = byte(a>>(8*i)), byte(b>>(8*i))
	}
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// Mix is a Spec of n commands in all, as the benchmarks use them: a tenth
// create values (at least one), the rest update them. Set the topics.
func Mix(n int) Spec {
	values := max(1, n/10)
	return Spec{Values: values, Updates: n - values}
}

// FileLog opens a file log in dir, writes spec into it and returns the log,
// which tb's cleanup closes (closing it earlier is fine).
func FileLog(tb testing.TB, dir string, spec Spec) *filelog.Log {
	tb.Helper()
	l, err := filelog.Open(dir, zerolog.Nop())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	if err := Write(context.Background(), l, spec, nil); err != nil {
		tb.Fatal(err)
	}
	return l
}

// Measure is a benchmark's timed part: it starts run (a processor's or a
// view's Run) and measures until done reports true, then stops run and
// waits for it to return. It fails b if run returns before.
func Measure(b *testing.B, run func(context.Context) error, done func() bool) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() { stopped <- run(ctx) }()
	for !done() {
		select {
		case err := <-stopped:
			b.Fatalf("Run stopped before the measured work was done: %v", err)
		default:
			time.Sleep(20 * time.Microsecond)
		}
	}
	b.StopTimer()
	cancel()
	<-stopped
}
