package subscriptions

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/outcome"
	"calculator/snapshot"
)

// hubScript feeds Hubs as Run and the view do: batches of commands from a
// commands topic of two partitions, and, a few commands behind, the
// outcomes the view applies from an events topic of two partitions. Of
// every six commands two succeed, one is rejected, one has an event of a
// foreign id, one waits for its outcome for ever and one is rejected
// leaving no value; every thirteenth has its outcome applied before Run
// reads it, and now and then a command is written twice.
type hubScript struct {
	rng          *rand.Rand
	commands     []uuid.UUID
	positions    []position // of each command in the commands topic
	next         int        // the first command whose outcome is still to come
	applied      map[int]bool
	commandsNext [2]int64
	eventsNext   [2]int64
}

func newHubScript(seed uint64) *hubScript {
	return &hubScript{rng: rand.New(rand.NewPCG(seed, seed+1)), applied: make(map[int]bool)}
}

// run writes n more commands, and the outcomes of all but the last few,
// to every hub.
func (s *hubScript) run(n int, hubs ...*Hub) {
	for issued := 0; issued < n; {
		var batch eventlog.Batch
		var early []outcome.Applied
		for range min(1+s.rng.IntN(8), n-issued) {
			i := len(s.commands)
			p := int32(i % 2)
			id := uuid.UUID{byte(s.rng.Uint32()), byte(s.rng.Uint32()), byte(s.rng.Uint32()), byte(i), byte(i >> 8), byte(i >> 16)}
			s.commands = append(s.commands, id)
			s.positions = append(s.positions, position{p, s.commandsNext[p]})
			c := domain.Command{ID: id, Action: domain.CreateValue, ValueID: uuid.UUID{0xa, byte(i), byte(i >> 8)}, Value: domain.DecimalFromInt(int64(i))}
			batch.Records = append(batch.Records, eventlog.Record{Partition: p, Offset: s.commandsNext[p], Value: c.AppendJSON(nil)})
			s.commandsNext[p]++
			if i%13 == 0 {
				early = append(early, s.outcome(i)...)
			}
			if s.rng.IntN(20) == 0 { // the same command written again
				again := batch.Records[s.rng.IntN(len(batch.Records))]
				again.Offset = s.commandsNext[p]
				again.Partition = p
				batch.Records = append(batch.Records, again)
				s.commandsNext[p]++
			}
			issued++
		}
		for _, h := range hubs {
			h.Apply(early)
			if err := h.observeCommands(batch); err != nil {
				panic(err)
			}
		}
		var late []outcome.Applied
		for lag := s.rng.IntN(10); s.next < len(s.commands)-lag; s.next++ {
			late = append(late, s.outcome(s.next)...)
		}
		for _, h := range hubs {
			h.Apply(late)
		}
	}
}

// outcome returns the outcome of command i as the view applies it, once:
// none when it has one already or never gets one.
func (s *hubScript) outcome(i int) []outcome.Applied {
	if s.applied[i] || i%6 == 4 {
		return nil
	}
	s.applied[i] = true
	id, at := s.commands[i], s.positions[i]
	result := domain.MustParseDecimal(fmt.Sprintf("-%d.%de-3", i, i%7+1))
	a := outcome.Applied{
		Record: eventlog.Record{Partition: at.partition, Offset: s.eventsNext[at.partition], Headers: eventlog.CommandPositionHeaders(at.partition, at.offset)},
		Event:  domain.Event{ID: domain.EventID(id), ParentID: id, Action: domain.ValueCreated, ValueID: uuid.UUID{0xa, byte(i), byte(i >> 8)}, Value: result},
		Value:  domain.Value{Value: result, Version: int64(1 + i%5)}, Exists: true,
	}
	s.eventsNext[at.partition]++
	switch i % 6 {
	case 2:
		a.Event.Action, a.Event.Reason, a.Event.Message = domain.CommandRejected, domain.DivisionByZero, fmt.Sprintf("cannot divide %d by zero", i)
	case 3:
		a.Event.ID = uuid.UUID{0xe, byte(i), byte(i >> 8)}
	case 5:
		a.Event.Action, a.Event.Reason = domain.CommandRejected, domain.ValueNotFound
		a.Value, a.Exists = domain.Value{}, false
	}
	return []outcome.Applied{a}
}

func newTestHub(capacity int) *Hub {
	return New(Config{Logger: zerolog.Nop(), ViewReady: func() bool { return true }, Options: Options{Capacity: capacity}})
}

// encodeHub returns the bytes of h's snapshot.
func encodeHub(h *Hub) []byte {
	var e snapshot.Encoder
	h.FreezeSnapshot()(&e)
	return e.Bytes()
}

// restored returns a Hub of the given capacity restored from b.
func restored(t testing.TB, capacity int, b []byte) *Hub {
	t.Helper()
	h := newTestHub(capacity)
	d := snapshot.NewDecoder(b)
	if err := snapshot.Restore(h.DecodeSnapshot, d); err != nil {
		t.Fatal(err)
	}
	if err := d.Done(); err != nil {
		t.Fatalf("restore: %v", err)
	}
	return h
}

// positions returns the Hub's three position maps.
func (h *Hub) positions() [3]eventlog.Offsets {
	h.mu.Lock()
	defer h.mu.Unlock()
	return [3]eventlog.Offsets{maps.Clone(h.commandsNext), maps.Clone(h.outcomesNext), maps.Clone(h.eventsNext)}
}

// sameHub fails unless got answers GET /commands/{id} for each of ids (and
// a stranger) as want does, holds as many statuses, has evicted as many
// and is at the same positions.
func sameHub(t *testing.T, got, want *Hub, ids []uuid.UUID) {
	t.Helper()
	for _, id := range append(ids, uuid.New()) {
		gs, gp, gok := got.status(id, nil)
		ws, wp, wok := want.status(id, nil)
		if !reflect.DeepEqual(gs, ws) || gp != wp || gok != wok {
			t.Fatalf("command %s:\n got %v %s at %v\nwant %v %s at %v", id, gok, mustJSON(gs), gp, wok, mustJSON(ws), wp)
		}
	}
	if g, w := got.Stats(), want.Stats(); g != w {
		t.Fatalf("stats %+v, want %+v", g, w)
	}
	if g, w := got.positions(), want.positions(); !reflect.DeepEqual(g, w) {
		t.Fatalf("positions (commands, outcomes, events) %v, want %v", g, w)
	}
}

// A restored Hub answers as the one it was taken from, encodes to the same
// bytes (the same statuses in the same ring order), and goes on as that one
// does with the commands and outcomes that follow.
func TestHubSnapshotRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name          string
		capacity      int
		before, after int
	}{
		{"empty", 64, 0, 100},
		{"not full", 1000, 300, 300},
		{"full, wrapped", 64, 300, 300},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newHubScript(uint64(tt.before))
			want := newTestHub(tt.capacity)
			s.run(tt.before, want)
			b := encodeHub(want)
			got := restored(t, tt.capacity, b)
			sameHub(t, got, want, s.commands)
			if again := encodeHub(got); !bytes.Equal(again, b) {
				t.Errorf("the restored Hub encodes to %d other bytes than the %d it came from", len(again), len(b))
			}
			if tt.before > 0 && want.statuses.evicted == 0 && tt.capacity < tt.before {
				t.Fatal("the script evicted nothing")
			}

			s.run(tt.after, got, want)
			sameHub(t, got, want, s.commands)
			if !bytes.Equal(encodeHub(got), encodeHub(want)) {
				t.Error("after more commands, the restored Hub encodes otherwise")
			}
		})
	}
}

// A Hub of a smaller capacity keeps the most recent statuses of the
// snapshot, and counts the others as evicted; one of a larger capacity
// keeps them all and has room for more.
func TestHubSnapshotOtherCapacity(t *testing.T) {
	const capacity = 64
	s := newHubScript(1)
	want := newTestHub(capacity)
	s.run(300, want)
	b := encodeHub(want)

	// The commands of want's table, oldest first.
	var order []uuid.UUID
	tab := want.statuses
	for k := range tab.slots {
		order = append(order, tab.slots[(tab.oldest+k)%len(tab.slots)].command)
	}

	for _, c := range []int{16, 128} {
		got := restored(t, c, b)
		kept := len(order) - min(c, len(order))
		for k, id := range order {
			gs, gp, gok := got.status(id, nil)
			ws, wp, _ := want.status(id, nil)
			switch {
			case k < kept && gok:
				t.Errorf("capacity %d: the status of command %d of %d is kept", c, k, len(order))
			case k >= kept && (!gok || !reflect.DeepEqual(gs, ws) || gp != wp):
				t.Errorf("capacity %d: command %d: %v %s, want %s", c, k, gok, mustJSON(gs), mustJSON(ws))
			}
		}
		wantStats := want.Stats()
		wantStats.Statuses, wantStats.Evicted = min(c, capacity), wantStats.Evicted+int64(kept)
		if g := got.Stats(); g != wantStats {
			t.Errorf("capacity %d: stats %+v, want %+v", c, g, wantStats)
		}
		if g, w := got.positions(), want.positions(); !reflect.DeepEqual(g, w) {
			t.Errorf("capacity %d: positions %v, want %v", c, g, w)
		}
		// It goes on: the new commands are recorded, up to its capacity.
		s := *s
		s.applied = maps.Clone(s.applied)
		s.run(200, got)
		if st := got.Stats(); st.Statuses != c {
			t.Errorf("capacity %d: %d statuses after 200 more commands", c, st.Statuses)
		}
		recent := len(s.commands) - 11 // among the 16 newest, with its outcome
		recent -= recent % 6           // one that succeeds
		if st, _, ok := got.status(s.commands[recent], nil); !ok || st.Status != outcome.Succeeded {
			t.Errorf("capacity %d: a recent command: %v %s", c, ok, mustJSON(st))
		}
	}
}

// A snapshot cut short anywhere, or with a field out of its range, is an
// error that wraps ErrCorrupt, and the Hub is left as it was: empty, or
// with what it held.
func TestHubSnapshotCorrupt(t *testing.T) {
	s := newHubScript(2)
	full := newTestHub(32)
	s.run(60, full)
	b := encodeHub(full)

	empty := newTestHub(32)
	emptyBytes := encodeHub(empty)
	for n := range len(b) {
		if err := snapshot.Restore(empty.DecodeSnapshot, snapshot.NewDecoder(b[:n])); !errors.Is(err, snapshot.ErrCorrupt) {
			t.Fatalf("the first %d of %d bytes: error %v, want ErrCorrupt", n, len(b), err)
		}
		if after := encodeHub(empty); !bytes.Equal(after, emptyBytes) {
			t.Fatalf("the first %d of %d bytes: a failed restore left %d bytes of state", n, len(b), len(after))
		}
	}

	// One status: count, evicted, command, value, flags, version...
	one := newTestHub(8)
	newHubScript(3).run(1, one)
	good := encodeHub(one)
	const flagsAt, versionAt = 2 + 32, 2 + 32 + 1
	if good[flagsAt] != flagOutcome|flagExists || good[versionAt] != 2 {
		t.Fatalf("the layout moved: flags %#x at %d, version %#x at %d", good[flagsAt], flagsAt, good[versionAt], versionAt)
	}
	for _, tt := range []struct {
		name   string
		modify func(b []byte) []byte
	}{
		{"unknown flags", func(b []byte) []byte { b[flagsAt] = 1 << 5; return b }},
		{"the flag of a wide slot", func(b []byte) []byte { b[flagsAt] |= flagWide; return b }},
		{"an accepted command with a value", func(b []byte) []byte { b[flagsAt] = flagExists; return b }},
		{"a rejection without its reason", func(b []byte) []byte { b[flagsAt] |= flagRejected; return b }},
		{"a negative version", func(b []byte) []byte { b[versionAt] = 1; return b }},
		{"an existing value at version 0", func(b []byte) []byte { b[versionAt] = 0; return b }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHub(8)
			newHubScript(4).run(5, h)
			before := encodeHub(h)
			if err := snapshot.Restore(newTestHub(8).DecodeSnapshot, snapshot.NewDecoder(good)); err != nil {
				t.Fatalf("unchanged: %v", err)
			}
			bad := tt.modify(bytes.Clone(good))
			if err := snapshot.Restore(h.DecodeSnapshot, snapshot.NewDecoder(bad)); !errors.Is(err, snapshot.ErrCorrupt) {
				t.Fatalf("error %v, want ErrCorrupt", err)
			}
			if after := encodeHub(h); !bytes.Equal(after, before) {
				t.Error("a failed restore changed the Hub")
			}
		})
	}

	t.Run("a command twice", func(t *testing.T) {
		two := newTestHub(8)
		newHubScript(3).run(2, two)
		two.statuses.slots[1].command = two.statuses.slots[0].command
		if err := snapshot.Restore(empty.DecodeSnapshot, snapshot.NewDecoder(encodeHub(two))); !errors.Is(err, snapshot.ErrCorrupt) {
			t.Fatalf("error %v, want ErrCorrupt", err)
		}
	})
}

// FuzzRestoreSnapshot: whatever the bytes, RestoreSnapshot restores or
// fails with ErrCorrupt leaving the Hub empty, never panics, and a Hub it
// restored takes more commands and outcomes and encodes to a snapshot that
// restores.
func FuzzRestoreSnapshot(f *testing.F) {
	for _, n := range []int{0, 1, 40} {
		h := newTestHub(16)
		newHubScript(uint64(n)).run(n, h)
		f.Add(encodeHub(h))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h := newTestHub(16)
		if err := snapshot.Restore(h.DecodeSnapshot, snapshot.NewDecoder(b)); err != nil {
			if !errors.Is(err, snapshot.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			if st := h.Stats(); st.Statuses != 0 || st.Evicted != 0 {
				t.Fatalf("a failed restore left %+v", st)
			}
			return
		}
		newHubScript(5).run(30, h)
		again := newTestHub(16)
		if err := snapshot.Restore(again.DecodeSnapshot, snapshot.NewDecoder(encodeHub(h))); err != nil {
			t.Fatalf("the snapshot of a restored Hub: %v", err)
		}
	})
}

// BenchmarkHubSnapshot encodes and restores a full table of the default
// capacity, 1,048,576 statuses.
func BenchmarkHubSnapshot(b *testing.B) {
	const n = DefaultCapacity
	h := newTestHub(n)
	commands, values := ids(n)
	for i := range n {
		h.statuses.accept(commands[i], values[i])
		a := created(i, commands[i], values[i])
		if i%20 == 0 {
			a.Event.Action, a.Event.Reason, a.Event.Message = domain.CommandRejected, domain.ValueExists, "value exists"
		}
		h.statuses.complete(a)
	}
	encoded := encodeHub(h)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encodeHub(h)
		}
		b.ReportMetric(float64(len(encoded)), "bytes")
		b.ReportMetric(float64(len(encoded))/n, "bytes/status")
	})
	b.Run("restore", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := snapshot.Restore(newTestHub(n).DecodeSnapshot, snapshot.NewDecoder(encoded)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
