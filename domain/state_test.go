package domain

import (
	"maps"
	"math/rand/v2"
	"slices"
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

	// Put rebuilds a State as a snapshot has it, in any order.
	rebuilt := NewStateSize(len(want) / 3)
	for _, id := range slices.Backward(ids) {
		rebuilt.Put(id, Value{Version: 7})
		rebuilt.Put(id, want[id])
	}
	check("rebuilt with Put", rebuilt, want, slices.Collect(func(yield func(uuid.UUID) bool) {
		for _, id := range slices.Backward(ids) {
			if !yield(id) {
				return
			}
		}
	}))
}
