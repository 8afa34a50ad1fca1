package processor_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/eventlog/filelog"
	"calculator/processor"
)

func openLog(t *testing.T, dir string) *filelog.Log {
	t.Helper()
	l, err := filelog.Open(dir, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func command(valueID uuid.UUID, action domain.Action, op domain.Operation, v int64) eventlog.Message {
	c := domain.Command{ID: uuid.New(), Action: action, ValueID: valueID, Operation: op, Value: domain.DecimalFromInt(v), Timestamp: time.Now()}
	return eventlog.Message{Key: []byte(valueID.String()), Value: c.AppendJSON(nil)}
}

// runUntilIdle runs a processor until it has handled every command in the
// log, then stops it.
func runUntilIdle(t *testing.T, l *filelog.Log) {
	t.Helper()
	p := processor.New(l, "commands", "events", zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		end, err := l.End(ctx, "commands")
		if err != nil {
			t.Fatal(err)
		}
		if p.Ready() && p.Position()[0] == end[0] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processor at %v, commands end %v", p.Position(), end)
		}
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

func outcomes(t *testing.T, l *filelog.Log) (byCommand map[uuid.UUID]int, state *domain.State) {
	t.Helper()
	byCommand, state = map[uuid.UUID]int{}, domain.NewState()
	err := l.Follow(context.Background(), "events", nil, func(b eventlog.Batch) error {
		for _, rec := range b.Records {
			e, err := domain.DecodeEvent(rec.Value)
			if err != nil {
				t.Fatal(err)
			}
			byCommand[e.ParentID]++
			if _, _, err := state.Apply(e); err != nil {
				t.Fatal(err)
			}
		}
		if b.CaughtUp {
			return eventlog.ErrStopFollowing
		}
		return nil
	})
	if !errors.Is(err, eventlog.ErrStopFollowing) {
		t.Fatal(err)
	}
	return byCommand, state
}

// TestLostOutcomesAreDecidedAgainOnce simulates a crash that loses the tail
// of the events log (the outcomes of the last commands were being written):
// the next run must decide exactly those commands again, and only those.
func TestLostOutcomesAreDecidedAgainOnce(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	id := uuid.New()
	msgs := []eventlog.Message{command(id, domain.CreateValue, "", 1)}
	for range 9 {
		msgs = append(msgs, command(id, domain.UpdateValue, domain.Add, 1))
	}
	if err := l.Append(context.Background(), "commands", msgs...); err != nil {
		t.Fatal(err)
	}
	runUntilIdle(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Cut the events log in the middle of its 7th record: a torn write.
	path := filepath.Join(dir, "events.log")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cut, records := 0, 0
	for records < 6 {
		size := int(uint32(data[cut]) | uint32(data[cut+1])<<8 | uint32(data[cut+2])<<16 | uint32(data[cut+3])<<24)
		cut += 8 + size
		records++
	}
	if err := os.WriteFile(path, data[:cut+10], 0o644); err != nil {
		t.Fatal(err)
	}

	l = openLog(t, dir)
	defer l.Close()
	byCommand, _ := outcomes(t, l)
	if len(byCommand) != 6 {
		t.Fatalf("after the cut the events log holds %d outcomes, want 6", len(byCommand))
	}
	runUntilIdle(t, l)
	byCommand, state := outcomes(t, l)
	if len(byCommand) != 10 {
		t.Fatalf("after the restart %d commands have outcomes, want 10", len(byCommand))
	}
	for c, n := range byCommand {
		if n != 1 {
			t.Errorf("command %s has %d outcomes", c, n)
		}
	}
	if v, _ := state.Get(id); v != (domain.Value{Value: domain.DecimalFromInt(10), Version: 10}) {
		t.Fatalf("value after replay = %+v, want 10 at version 10", v)
	}
}

// TestEveryCommandOnceAcrossRestarts runs the processor several times over a
// growing commands log that repeats command ids, and checks that each id has
// exactly one outcome, in commands-log order for the value.
func TestEveryCommandOnceAcrossRestarts(t *testing.T) {
	l := openLog(t, t.TempDir())
	defer l.Close()
	id := uuid.New()
	if err := l.Append(context.Background(), "commands", command(id, domain.CreateValue, "", 2)); err != nil {
		t.Fatal(err)
	}
	var repeated eventlog.Message
	for round := range 3 {
		runUntilIdle(t, l)
		msgs := []eventlog.Message{command(id, domain.UpdateValue, domain.Multiply, 2)}
		if round > 0 {
			msgs = append(msgs, repeated) // the previous round's command, written again
		}
		repeated = msgs[0]
		if err := l.Append(context.Background(), "commands", msgs...); err != nil {
			t.Fatal(err)
		}
	}
	runUntilIdle(t, l)
	byCommand, state := outcomes(t, l)
	if len(byCommand) != 4 {
		t.Fatalf("%d commands have outcomes, want 4", len(byCommand))
	}
	for c, n := range byCommand {
		if n != 1 {
			t.Errorf("command %s has %d outcomes", c, n)
		}
	}
	if v, _ := state.Get(id); v != (domain.Value{Value: domain.DecimalFromInt(16), Version: 4}) {
		t.Fatalf("value = %+v, want 16 at version 4", v)
	}
}
