package subscriptions

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/internal/memtest"
	"calculator/outcome"
)

// ids returns n command ids and the value id each one is for.
func ids(n int) (commands, values []uuid.UUID) {
	for range n {
		commands = append(commands, uuid.New())
		values = append(values, uuid.New())
	}
	return commands, values
}

// created is the applied event of command i, which created a value, written
// at events offset i.
func created(i int, command, value uuid.UUID) outcome.Applied {
	e := domain.Event{ID: domain.EventID(command), ParentID: command, Action: domain.ValueCreated, ValueID: value, Value: domain.DecimalFromInt(int64(i))}
	return outcome.Applied{
		Record: eventlog.Record{Offset: int64(i), Headers: eventlog.CommandPositionHeaders(0, int64(i))},
		Event:  e, Value: domain.Value{Value: domain.DecimalFromInt(int64(i)), Version: 1}, Exists: true,
	}
}

func commandRecords(commands, values []uuid.UUID) eventlog.Batch {
	var b eventlog.Batch
	for i, id := range commands {
		c := domain.Command{ID: id, Action: domain.CreateValue, ValueID: values[i], Value: domain.DecimalFromInt(int64(i))}
		b.Records = append(b.Records, eventlog.Record{Offset: int64(i), Value: c.AppendJSON(nil)})
	}
	return b
}

func TestStatusLifecycle(t *testing.T) {
	tab := newStatusTable(10)
	cmd, value := uuid.New(), uuid.New()
	if _, _, ok := tab.get(cmd); ok {
		t.Fatal("unknown command found")
	}
	tab.accept(cmd, value)
	st, _, ok := tab.get(cmd)
	if !ok || st.Status != outcome.Accepted || st.ValueID != value || st.Status.Final() || st.EventID != nil || st.Value != nil {
		t.Fatalf("after accept: %+v, %v", st, ok)
	}
	rejected := outcome.Applied{
		Record: eventlog.Record{Partition: 2, Offset: 41},
		Event: domain.Event{ID: domain.EventID(cmd), ParentID: cmd, Action: domain.CommandRejected, ValueID: value,
			Reason: domain.DivisionByZero, Message: "cannot divide 3 by zero"},
		Value: domain.Value{Value: domain.DecimalFromInt(3), Version: 4}, Exists: true,
	}
	tab.complete(rejected)
	// The version of the value after the outcome, not the value: the Hub
	// reads that when asked.
	eventID := domain.EventID(cmd)
	want := outcome.CommandStatus{CommandID: cmd, ValueID: value, Status: outcome.Rejected, EventID: &eventID,
		Reason: domain.DivisionByZero, Message: "cannot divide 3 by zero", Version: 4}
	st, at, _ := tab.get(cmd)
	if !reflect.DeepEqual(st, want) {
		t.Errorf("after the rejection:\n got %s\nwant %s", mustJSON(st), mustJSON(want))
	}
	if at.id() != "2:41" {
		t.Errorf("position = %q, want 2:41", at.id())
	}
	tab.accept(cmd, uuid.New()) // the same command written again changes nothing
	if again, _, _ := tab.get(cmd); !reflect.DeepEqual(again, want) {
		t.Errorf("a repeated command changed the status: %s", mustJSON(again))
	}
}

func TestForeignEventID(t *testing.T) {
	tab := newStatusTable(10)
	cmd, value, foreign := uuid.New(), uuid.New(), uuid.New()
	a := created(0, cmd, value)
	a.Event.ID = foreign
	tab.complete(a)
	if st, _, _ := tab.get(cmd); st.EventID == nil || *st.EventID != foreign || st.Status != outcome.Succeeded {
		t.Errorf("status = %+v, want the event's own id %s", st, foreign)
	}
}

// The table forgets the oldest commands, and what it held for them.
func TestStatusEviction(t *testing.T) {
	tab := newStatusTable(3)
	commands, values := ids(5)
	for i := range commands {
		tab.accept(commands[i], values[i])
		a := created(i, commands[i], values[i])
		a.Event.Action, a.Event.Reason = domain.CommandRejected, domain.ValueExists
		tab.complete(a)
	}
	for i, id := range commands {
		_, _, ok := tab.get(id)
		if want := i >= 2; ok != want {
			t.Errorf("command %d: held = %v, want %v", i, ok, want)
		}
	}
	if tab.len() != 3 || len(tab.extras) != 3 || tab.evicted != 2 {
		t.Errorf("len %d, extras %d, evicted %d; want 3, 3, 2", tab.len(), len(tab.extras), tab.evicted)
	}
}

// A replay of a log longer than the table keeps the most recent commands,
// whichever of the commands topic and the view runs ahead.
func TestReplayKeepsTheMostRecent(t *testing.T) {
	const n, capacity = 20, 5
	commands, values := ids(n)
	applied := make([]outcome.Applied, n)
	for i := range applied {
		applied[i] = created(i, commands[i], values[i])
	}
	pending := uuid.New() // a last command without an outcome yet
	allCommands := commandRecords(append(commands[:n:n], pending), append(values[:n:n], uuid.New()))

	for _, order := range []string{"commands first", "events first", "interleaved"} {
		t.Run(order, func(t *testing.T) {
			h := New(Config{Logger: zerolog.Nop(), ViewReady: func() bool { return true }, Options: Options{Capacity: capacity}})
			switch order {
			case "commands first":
				h.observeCommands(allCommands)
				h.Apply(applied)
			case "events first":
				h.Apply(applied)
				h.observeCommands(allCommands)
			case "interleaved":
				for i := range n {
					h.observeCommands(eventlog.Batch{Records: allCommands.Records[i : i+1]})
					if i >= 3 {
						h.Apply(applied[i-3 : i-2])
					}
				}
				h.observeCommands(eventlog.Batch{Records: allCommands.Records[n:]})
				h.Apply(applied[n-3:])
			}
			st, _, ok := h.status(pending, nil)
			if !ok || st.Status != outcome.Accepted {
				t.Errorf("the pending command: %+v, %v; want accepted", st, ok)
			}
			for i := n - capacity + 1; i < n; i++ {
				if st, _, ok := h.status(commands[i], nil); !ok || st.Status != outcome.Succeeded {
					t.Errorf("command %d of %d: %+v, %v; want succeeded", i, n, st, ok)
				}
			}
			if got := h.Stats().Statuses; got != capacity {
				t.Errorf("statuses = %d, want %d", got, capacity)
			}
		})
	}
}

// BenchmarkStatuses measures the memory of the table: run it with
// -benchtime 1000000x to see the cost of a million statuses.
func BenchmarkStatuses(b *testing.B) {
	commands, values := ids(b.N)
	b.ReportAllocs()
	before := memtest.HeapInUse()
	tab := newStatusTable(b.N)
	b.ResetTimer()
	for i := range b.N {
		tab.accept(commands[i], values[i])
		tab.complete(created(i, commands[i], values[i]))
	}
	b.StopTimer()
	after := memtest.HeapInUse()
	runtime.KeepAlive(commands) // counted in before: keep them out of the difference
	runtime.KeepAlive(values)
	b.ReportMetric(float64(after-before)/float64(b.N), "heap-bytes/status")
	b.ReportMetric(float64(after-before)/(1<<20), "heap-MiB")
	if tab.len() != b.N {
		b.Fatal("lost statuses")
	}
}

// BenchmarkApply measures what the view pays per event to hand it on: the
// statuses, and a push to every events subscriber's queue. Stalled
// subscribers cost the same as the others: a push never waits.
func BenchmarkApply(b *testing.B) {
	const batch = 16
	for _, subscribers := range []int{0, 200} {
		b.Run("stalled="+strconv.Itoa(subscribers), func(b *testing.B) {
			h := New(Config{Logger: zerolog.Nop(), ViewReady: func() bool { return true }, Options: Options{Buffer: 1 << 30}})
			for range subscribers {
				h.subscribeEvents() // never read
			}
			commands, values := ids(b.N)
			applied := make([]outcome.Applied, b.N)
			for i := range applied {
				applied[i] = created(i, commands[i], values[i])
			}
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				h.Apply(applied[i:min(i+batch, b.N)])
			}
		})
	}
}

// findNext must answer as find does, whatever its guess, while the table
// fills, wraps and evicts.
func TestFindNextAgreesWithFind(t *testing.T) {
	tab := newStatusTable(64)
	commands, values := ids(300)
	guess := 0
	for i := range commands {
		switch i % 3 {
		case 0:
			tab.accept(commands[i], values[i])
		default:
			tab.complete(created(i, commands[i], values[i]))
		}
		// Look up a recent command, an old (evicted) one and a stranger,
		// in an order that makes the cursor both right and wrong.
		for _, id := range []uuid.UUID{commands[max(0, i-1)], commands[i], commands[i/2], uuid.New()} {
			wantSlot, wantOK := tab.find(id)
			gotSlot, gotOK := tab.findNext(id, &guess)
			if gotOK != wantOK || (wantOK && gotSlot != wantSlot) {
				t.Fatalf("after %d commands: findNext(%s) = %d, %v; find says %d, %v", i+1, id, gotSlot, gotOK, wantSlot, wantOK)
			}
		}
	}
}

// A version or a position too large to pack in a slot is kept whole in
// extras, in the table and through a snapshot, and forgotten with the slot.
func TestWideOutcome(t *testing.T) {
	h := newTestHub(2)
	tab := h.statuses
	commands, values := ids(4)
	wide := []outcome.Applied{
		created(0, commands[0], values[0]),
		created(1, commands[1], values[1]),
		created(2, commands[2], values[2]),
	}
	wide[0].Value.Version = 1<<62 + 3
	wide[1].Record.Partition, wide[1].Record.Offset = 1<<20+1, 1<<50+5
	wide[2].Record.Partition = 1<<16 - 1 // the largest that fits
	want := []struct {
		version int64
		at      position
	}{{1<<62 + 3, position{0, 0}}, {1, position{1<<20 + 1, 1<<50 + 5}}, {1, position{1<<16 - 1, 2}}}
	for i, a := range wide {
		tab.complete(a)
		check := func(h *Hub, when string) {
			st, at, ok := h.status(commands[i], nil)
			if !ok || st.Version != want[i].version || at != want[i].at {
				t.Errorf("command %d %s: %v version %d at %v; want version %d at %v", i, when, ok, st.Version, at, want[i].version, want[i].at)
			}
		}
		check(h, "in the table")
		check(restored(t, 2, encodeHub(h)), "restored")
	}
	if len(tab.extras) != 1 {
		t.Errorf("%d extras, want 1 (command 1's)", len(tab.extras))
	}
	tab.accept(commands[3], values[3])
	if len(tab.extras) != 0 {
		t.Errorf("%d extras after the wide statuses were evicted, want 0", len(tab.extras))
	}
}

// The value after an older outcome is read from the log only when the value
// has moved on since, and only by who shows it: when that read fails, a
// command stream answers 503 history-unavailable and ?wait= gets the error,
// while GET /commands/{id} (which shows no value) and ?after= (which needs
// only the outcome) answer as before.
func TestValueAfterAnOlderOutcome(t *testing.T) {
	commands, values := ids(4)
	current := domain.Value{Value: domain.DecimalFromInt(70), Version: 3}
	var reads int
	h := New(Config{
		Logger: zerolog.Nop(), ViewReady: func() bool { return true },
		Value: func(uuid.UUID) (domain.Value, bool) { return current, true },
		ValueAt: func(context.Context, uuid.UUID, int64) (domain.Decimal, error) {
			reads++
			return domain.Decimal{}, errors.New("the log is away")
		},
	})
	h.caughtUp.Store(true)
	old := created(0, commands[0], values[0]) // version 1: the value has moved on
	latest := created(1, commands[1], values[1])
	latest.Value = current
	h.Apply([]outcome.Applied{old, latest})
	r := chi.NewRouter()
	h.Routes(r)
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec
	}

	// The latest command's value is the view's: no read.
	wait, stop := h.Await(commands[1])
	st, err := wait(t.Context())
	stop()
	if err != nil || st.Value == nil || st.Value.String() != "70" || st.Version != 3 || reads != 0 {
		t.Errorf("?wait= of the latest command: %s, %v after %d reads; want 70 at version 3, no read", mustJSON(st), err, reads)
	}

	rec := get("/subscriptions/commands/" + commands[0].String())
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "history-unavailable") || reads != 1 {
		t.Errorf("stream of the older command: %d %s after %d reads; want 503 history-unavailable", rec.Code, rec.Body, reads)
	}
	wait, stop = h.Await(commands[0])
	if _, err := wait(t.Context()); err == nil || reads != 2 {
		t.Errorf("?wait= of the older command: %v after %d reads, want the read's error", err, reads)
	}
	stop()

	if rec := get("/commands/" + commands[0].String()); rec.Code != http.StatusOK || reads != 2 {
		t.Errorf("GET of the older command: %d %s after %d reads; want 200 without a read", rec.Code, rec.Body, reads)
	}
	applied, stop := h.AwaitApplied(commands[0])
	if err := applied(t.Context()); err != nil || reads != 2 {
		t.Errorf("?after= the older command: %v after %d reads; want nil without a read", err, reads)
	}
	stop()

	// An outcome that comes while watched brings its value along, even
	// when the value has moved on by the time the waiter looks.
	wait, stop = h.Await(commands[2])
	defer stop()
	next, after := created(2, commands[2], values[2]), created(3, commands[3], values[3])
	next.Value = domain.Value{Value: domain.DecimalFromInt(71), Version: 4}
	current = domain.Value{Value: domain.DecimalFromInt(72), Version: 5}
	after.Value = current
	h.Apply([]outcome.Applied{next, after})
	if st, err := wait(t.Context()); err != nil || st.Value == nil || st.Value.String() != "71" || st.Version != 4 || reads != 2 {
		t.Errorf("?wait= of a command applied while waiting: %s, %v after %d reads; want 71 at version 4, no read", mustJSON(st), err, reads)
	}
}
