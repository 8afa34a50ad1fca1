package processor_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/decided"
	"calculator/domain"
	"calculator/eventlog"
	"calculator/eventlog/filelog"
	"calculator/eventlog/logtest"
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
func runUntilIdle(t *testing.T, l *filelog.Log, opts ...processor.Option) *processor.Processor {
	t.Helper()
	p := processor.New(l, "commands", "events", zerolog.Nop(), opts...)
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
	return p
}

func outcomes(t *testing.T, l *filelog.Log) (byCommand map[uuid.UUID]int, state *domain.State) {
	t.Helper()
	byCommand, state = map[uuid.UUID]int{}, domain.NewState()
	for _, rec := range logtest.ReadAll(t, l, "events") {
		e, err := domain.DecodeEvent(rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		byCommand[e.ParentID]++
		if _, _, err := state.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	return byCommand, state
}

// checkOncePerCommand checks that the events log holds one outcome for each
// command, for the given number of commands (0: any number), and that
// value id is value at version.
func checkOncePerCommand(t *testing.T, l *filelog.Log, commands int, id uuid.UUID, value, version int64) {
	t.Helper()
	byCommand, state := outcomes(t, l)
	if commands > 0 && len(byCommand) != commands {
		t.Fatalf("%d commands have outcomes, want %d", len(byCommand), commands)
	}
	for c, n := range byCommand {
		if n != 1 {
			t.Errorf("command %s has %d outcomes, want 1", c, n)
		}
	}
	checkValue(t, state, id, value, version)
}

// checkValue checks that value id is value at version in state.
func checkValue(t *testing.T, state *domain.State, id uuid.UUID, value, version int64) {
	t.Helper()
	if v, _ := state.Get(id); v != (domain.Value{Value: domain.DecimalFromInt(value), Version: version}) {
		t.Fatalf("value = %+v, want %d at version %d", v, value, version)
	}
}

// TestLostOutcomesAreDecidedAgainOnce simulates a crash that loses the tail
// of the events log (the outcomes of the last commands were being written):
// the next run must decide exactly those commands again, and only those.
func TestLostOutcomesAreDecidedAgainOnce(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	id := uuid.New()
	appendCounting(t, l, id, 9)
	runUntilIdle(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Cut the events log in the middle of its 7th record: a torn write.
	path := filepath.Join(dir, "events.log")
	if err := os.Truncate(path, frameEnd(t, path, 6)+10); err != nil {
		t.Fatal(err)
	}

	l = openLog(t, dir)
	defer l.Close()
	byCommand, _ := outcomes(t, l)
	if len(byCommand) != 6 {
		t.Fatalf("after the cut the events log holds %d outcomes, want 6", len(byCommand))
	}
	runUntilIdle(t, l)
	checkOncePerCommand(t, l, 10, id, 10, 10)
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
	checkOncePerCommand(t, l, 4, id, 16, 4)
}

// TestRepeatsAndTheWindow: after a restart, which rebuilds the window of
// decided ids from the events log, a command written again is skipped while
// its id is in the window, and decided a second time once the window has
// moved past it (the documented limit of the window).
func TestRepeatsAndTheWindow(t *testing.T) {
	l := openLog(t, t.TempDir())
	defer l.Close()
	window := processor.WithWindow(decided.Window{Age: time.Nanosecond, Min: 3, Max: 3})
	id := uuid.New()
	msgs := appendCounting(t, l, id, 4)
	runUntilIdle(t, l, window)

	// The last 3 outcomes are in the window: their commands written again,
	// each twice, after a restart, are skipped.
	if err := l.Append(context.Background(), "commands", msgs[2], msgs[3], msgs[4], msgs[4], msgs[3], msgs[2]); err != nil {
		t.Fatal(err)
	}
	p := runUntilIdle(t, l, window)
	if st := p.Stats(); st.Duplicates != 6 || st.Succeeded != 0 {
		t.Fatalf("stats %+v, want 6 duplicates and no new outcome", st)
	}
	checkOncePerCommand(t, l, 0, id, 5, 5)

	// The second update is out of the window: written again, it is decided
	// again, once, and the copy after it is skipped. (The run reads the six
	// repeats again too: no event records that they were read.)
	if err := l.Append(context.Background(), "commands", msgs[1], msgs[1]); err != nil {
		t.Fatal(err)
	}
	p = runUntilIdle(t, l, window)
	if st := p.Stats(); st.Duplicates != 7 || st.Succeeded != 1 {
		t.Fatalf("stats %+v, want 7 duplicates and 1 new outcome", st)
	}
	byCommand, state := outcomes(t, l)
	if n := byCommand[commandID(t, msgs[1])]; n != 2 {
		t.Fatalf("the command out of the window has %d outcomes, want 2", n)
	}
	checkValue(t, state, id, 6, 6)
}

// appendCounting appends to the commands log a CreateValue of 1 for id, then
// the given number of ADD 1 updates, and returns the messages appended.
func appendCounting(t *testing.T, l *filelog.Log, id uuid.UUID, updates int) []eventlog.Message {
	t.Helper()
	msgs := []eventlog.Message{command(id, domain.CreateValue, "", 1)}
	for range updates {
		msgs = append(msgs, command(id, domain.UpdateValue, domain.Add, 1))
	}
	if err := l.Append(context.Background(), "commands", msgs...); err != nil {
		t.Fatal(err)
	}
	return msgs
}

func commandID(t *testing.T, m eventlog.Message) uuid.UUID {
	t.Helper()
	c, err := domain.DecodeCommand(m.Value)
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// TestLostCommandsStopTheRun: the commands log ends before commands that
// the events log answers (its end was lost). Run must return
// ErrCommandsLost saying where, without becoming ready: reading on from
// that end would skip every new command up to the old positions.
func TestLostCommandsStopTheRun(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	id := uuid.New()
	appendCounting(t, l, id, 4)
	p := runUntilIdle(t, l)
	select {
	case <-p.Checked():
	default:
		t.Fatal("Checked is not closed after a Run that processed commands")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Keep the first two commands: offsets 2 to 4 are answered but gone.
	if err := os.Truncate(filepath.Join(dir, "commands.log"), frameEnd(t, filepath.Join(dir, "commands.log"), 2)); err != nil {
		t.Fatal(err)
	}

	l = openLog(t, dir)
	defer l.Close()
	p = processor.New(l, "commands", "events", zerolog.Nop(),
		processor.WithTopicNames(func(topic string) string { return topic + ".log" }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := p.Run(ctx)
	var lost *processor.LostCommandsError
	if !errors.Is(err, processor.ErrCommandsLost) || !errors.As(err, &lost) {
		t.Fatalf("Run = %v, want ErrCommandsLost", err)
	}
	want := []processor.LostCommands{{Partition: 0, End: 2, LastAnswered: 4}}
	if fmt.Sprint(lost.Partitions) != fmt.Sprint(want) {
		t.Errorf("lost %+v, want %+v", lost.Partitions, want)
	}
	if msg := err.Error(); !strings.Contains(msg, "commands.log ends at offset 2 in partition 0, but events.log holds the outcomes of its commands up to offset 4") {
		t.Errorf("the error does not say where: %s", msg)
	}
	if p.Ready() {
		t.Error("Ready after a Run that found lost commands")
	}
	select {
	case <-p.Checked():
		t.Error("Checked is closed after a Run that found lost commands")
	default:
	}
}

// frameEnd returns the byte offset at which the n-th record of a file log
// ends (each record: a 4-byte little-endian body length, a 4-byte checksum,
// then the body).
func frameEnd(t *testing.T, path string, n int) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end := 0
	for range n {
		end += 8 + int(binary.LittleEndian.Uint32(data[end:]))
	}
	return int64(end)
}

// TestStatsCountDecidedIDs: Stats says how many command ids the window of
// decided ids holds while a Run goes (a repeat is not counted twice), and
// none once it has ended.
func TestStatsCountDecidedIDs(t *testing.T) {
	l := openLog(t, t.TempDir())
	defer l.Close()
	msgs := appendCounting(t, l, uuid.New(), 4)
	if err := l.Append(context.Background(), "commands", msgs[1]); err != nil { // written twice
		t.Fatal(err)
	}
	p := processor.New(l, "commands", "events", zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for p.Stats().Succeeded+p.Stats().Duplicates < 6 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v after 10 s", p.Stats())
		}
		time.Sleep(2 * time.Millisecond)
	}
	if s := p.Stats(); s.DecidedIDs != 5 || s.Duplicates != 1 {
		t.Fatalf("stats %+v: want 5 decided ids and 1 duplicate", s)
	}
	cancel()
	<-done
	if n := p.Stats().DecidedIDs; n != 0 {
		t.Fatalf("%d decided ids counted after the Run ended", n)
	}
}
