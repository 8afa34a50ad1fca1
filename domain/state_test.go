package domain

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"calculator/internal/chunked"
)

// TestStateAgreesWithAMap folds random creates, updates and rejections, with
// ids that repeat, into a State and into a plain map, through several
// growths of the index and of the chunks, and compares them after each step
// and at the end, with a Clone taken halfway that must not change after.
func TestStateAgreesWithAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s, want := NewState(), map[uuid.UUID]Value{}
	var ids []uuid.UUID // in the order created
	var clone *State
	var cloned map[uuid.UUID]Value
	const steps = 3*chunked.ChunkLen + 1000
	for step := range steps {
		var e Event
		switch r := rng.IntN(10); {
		case r < 5 || len(ids) == 0:
			e = Event{Action: ValueCreated, ValueID: uuid.New(), Value: DecimalFromInt(int64(step))}
			if r == 0 && len(ids) > 0 {
				e.ValueID = ids[rng.IntN(len(ids))] // already exists: an error
			}
		case r < 9:
			e = Event{Action: ValueUpdated, ValueID: ids[rng.IntN(len(ids))], Result: DecimalFromInt(int64(-step))}
			if r == 8 {
				e.ValueID = uuid.New() // unknown: an error
			}
		default:
			e = Event{Action: CommandRejected, ValueID: ids[rng.IntN(len(ids))]}
		}
		before, existed := want[e.ValueID]
		v, changed, err := s.Apply(e)
		switch {
		case e.Action == ValueCreated && !existed:
			want[e.ValueID] = Value{Value: e.Value, Version: 1}
			ids = append(ids, e.ValueID)
		case e.Action == ValueUpdated && existed:
			want[e.ValueID] = Value{Value: e.Result, Version: before.Version + 1}
		}
		wantErr := (e.Action == ValueCreated && existed) || (e.Action == ValueUpdated && !existed)
		if (err != nil) != wantErr || changed != (want[e.ValueID] != before) || (existed || changed) && v != want[e.ValueID] {
			t.Fatalf("step %d: Apply(%s of %s) = %v, %v, %v; want %v, error %v", step, e.Action, e.ValueID, v, changed, err, want[e.ValueID], wantErr)
		}
		if got, ok := s.Get(e.ValueID); ok != (existed || changed) || got != want[e.ValueID] {
			t.Fatalf("step %d: Get = %v, %v; want %v", step, got, ok, want[e.ValueID])
		}
		if step == steps/2 {
			clone, cloned = s.Clone(), maps.Clone(want)
		}
	}
	check := func(name string, s *State, want map[uuid.UUID]Value, order []uuid.UUID) {
		t.Helper()
		if s.Len() != len(want) {
			t.Fatalf("%s: Len = %d, want %d", name, s.Len(), len(want))
		}
		for id, v := range want {
			if got, ok := s.Get(id); !ok || got != v {
				t.Fatalf("%s: Get(%s) = %v, %v; want %v", name, id, got, ok, v)
			}
		}
		var seen []uuid.UUID
		for id, v := range s.All() {
			if want[id] != v {
				t.Fatalf("%s: All yields %s = %v, want %v", name, id, v, want[id])
			}
			seen = append(seen, id)
		}
		if !slices.Equal(seen, order) {
			t.Fatalf("%s: All does not yield the values in the order they were created", name)
		}
		for k, id := range order {
			if got, ok := s.Number(id); !ok || got != k {
				t.Fatalf("%s: Number(value created %d-th) = %d, %v", name, k, got, ok)
			}
		}
		if _, ok := s.Number(uuid.New()); ok {
			t.Fatalf("%s: Number finds an unknown id", name)
		}
	}
	check("state", s, want, ids)
	check("clone taken halfway", clone, cloned, ids[:len(cloned)])

	// StateOf rebuilds a State as a snapshot has it, in any order.
	backward := func(yield func(uuid.UUID, Value) bool) {
		for _, id := range slices.Backward(ids) {
			if !yield(id, want[id]) {
				return
			}
		}
	}
	rebuilt, err := StateOf(backward)
	if err != nil {
		t.Fatal(err)
	}
	check("rebuilt with StateOf", rebuilt, want, slices.Collect(func(yield func(uuid.UUID) bool) {
		for id := range backward {
			if !yield(id) {
				return
			}
		}
	}))
	// It goes on as a State built by Apply.
	for _, id := range ids[:100] {
		e := Event{Action: ValueUpdated, ValueID: id, Result: DecimalFromInt(1)}
		if _, _, err := rebuilt.Apply(e); err != nil {
			t.Fatal(err)
		}
		if got, _ := rebuilt.Get(id); got.Version != want[id].Version+1 {
			t.Fatalf("rebuilt: version %d after an update, want %d", got.Version, want[id].Version+1)
		}
	}
}

// StateOf refuses an id given twice, wherever the two are, and takes every
// count of values around the index's growth.
func TestStateOf(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 1000, 5000} {
		ids := make([]uuid.UUID, n)
		for i := range ids {
			ids[i] = uuid.New()
		}
		s, err := StateOf(func(yield func(uuid.UUID, Value) bool) {
			for i, id := range ids {
				if !yield(id, Value{Version: int64(i + 1)}) {
					return
				}
			}
		})
		if err != nil {
			t.Fatalf("%d values: %v", n, err)
		}
		for i, id := range ids {
			if k, ok := s.Number(id); !ok || k != i {
				t.Fatalf("%d values: Number = %d, %v; want %d", n, k, ok, i)
			}
			if got, v := s.At(i); got != id || v.Version != int64(i+1) {
				t.Fatalf("%d values: At(%d) = %s, %v", n, i, got, v)
			}
		}
		for _, twice := range [][2]int{{0, n - 1}, {n / 2, n/2 + 1}, {n - 1, n - 1}} {
			if n < 2 {
				break
			}
			_, err := StateOf(func(yield func(uuid.UUID, Value) bool) {
				for _, id := range ids {
					if !yield(id, Value{Version: 1}) {
						return
					}
				}
				if !yield(ids[twice[0]], Value{Version: 2}) {
					return
				}
				yield(ids[twice[1]], Value{Version: 3})
			})
			if err == nil || !strings.Contains(err.Error(), "twice") {
				t.Fatalf("%d values, then values %d and %d again: error %v, want one saying twice", n, twice[0], twice[1], err)
			}
		}
	}
}
