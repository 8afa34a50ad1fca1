package domain

import (
	"fmt"
	"hash/maphash"
	"iter"
	"slices"

	"github.com/google/uuid"

	"calculator/internal/chunked"
)

// State holds every value, keyed by value id. The zero State is not usable;
// call NewState. It is not safe for concurrent use.
//
// It is the largest thing the processor and the view each hold, one entry
// per value ever created, so it is laid out for memory rather than built on
// a map: the entries (id, number, version: 40 bytes) sit in the order the
// values were created, in fixed-size chunks that never move, and an
// open-addressing index of 4-byte entry numbers, at most half full, finds
// them. That is 48 to 56 bytes a value, where a map[uuid.UUID]Value takes
// about twice as much, and a copy (Clone) is a few memory copies. Values
// are never removed, so the index needs no deletion.
//
// The entry numbers are part of the contract (Number): value k is the
// k-th created, and keeps its number, so that whoever keeps more per value
// beside a State (the view, its history index) can keep it in a slice.
type State struct {
	seed    maphash.Seed
	entries chunked.Slice[entry]
	// slots is the index: 0 for an empty slot, k+1 for entry k. Its
	// length is a power of two, at least twice the entries.
	slots []uint32
}

type entry struct {
	id uuid.UUID
	Value
}

const (
	minSlots = 16
	// maxValues is the most entries the 32-bit index can number.
	maxValues = 1<<32 - 2
)

// NewState returns an empty State.
func NewState() *State { return NewStateSize(0) }

// NewStateSize returns an empty State with room for n values.
func NewStateSize(n int) *State {
	s := &State{seed: maphash.MakeSeed()}
	s.slots = make([]uint32, slotsFor(n))
	return s
}

// slotsFor is the index size for n values: a power of two, at least 2n.
func slotsFor(n int) int {
	size := minSlots
	for size < 2*n {
		size *= 2
	}
	return size
}

// Get returns the value with the given id.
func (s *State) Get(id uuid.UUID) (Value, bool) {
	if e := s.find(id); e != nil {
		return e.Value, true
	}
	return Value{}, false
}

// Number returns the number of the value with the given id: the values are
// numbered 0, 1, 2... in the order they were created (or Put).
func (s *State) Number(id uuid.UUID) (int, bool) {
	k, ok := s.lookup(id)
	return int(k) - 1, ok
}

// Len is the number of values.
func (s *State) Len() int { return s.entries.Len() }

// All yields every value, in the order of their numbers.
func (s *State) All() iter.Seq2[uuid.UUID, Value] {
	return func(yield func(uuid.UUID, Value) bool) {
		for _, e := range s.entries.All() {
			if !yield(e.id, e.Value) {
				return
			}
		}
	}
}

// Apply folds an event into the state and returns the value it leaves behind.
// changed is false for a CommandRejected, which changes nothing. An event that
// does not fit the state (a ValueCreated for an existing value, a
// ValueUpdated for a missing one) is an error and leaves the state as it was:
// Decide never produces one, so it can only come from a foreign writer.
func (s *State) Apply(e Event) (v Value, changed bool, err error) {
	current := s.find(e.ValueID)
	switch e.Action {
	case ValueCreated:
		if current != nil {
			return current.Value, false, fmt.Errorf("event %s: ValueCreated for existing value %s", e.ID, e.ValueID)
		}
		v = Value{Value: e.Value, Version: 1}
		s.add(e.ValueID, v)
	case ValueUpdated:
		if current == nil {
			return v, false, fmt.Errorf("event %s: ValueUpdated for unknown value %s", e.ID, e.ValueID)
		}
		v = Value{Value: e.Result, Version: current.Version + 1}
		current.Value = v
	case CommandRejected:
		if current != nil {
			v = current.Value
		}
		return v, false, nil
	default:
		if current != nil {
			v = current.Value
		}
		return v, false, fmt.Errorf("event %s: unknown action %q", e.ID, e.Action)
	}
	return v, true, nil
}

// Put sets the value with the given id, as it was recorded elsewhere: it
// rebuilds a State from a snapshot. Folding events goes through Apply.
func (s *State) Put(id uuid.UUID, v Value) {
	if e := s.find(id); e != nil {
		e.Value = v
		return
	}
	s.add(id, v)
}

// Clone returns a copy of s, which changes independently of it.
func (s *State) Clone() *State {
	return &State{seed: s.seed, entries: s.entries.Clone(), slots: slices.Clone(s.slots)}
}

// find returns the entry of the value with the given id, or nil.
func (s *State) find(id uuid.UUID) *entry {
	if k, ok := s.lookup(id); ok {
		return s.entries.At(int(k) - 1)
	}
	return nil
}

// lookup returns the index's slot value for id: its entry number + 1.
func (s *State) lookup(id uuid.UUID) (uint32, bool) {
	mask := len(s.slots) - 1
	for i := s.hash(id) & mask; ; i = (i + 1) & mask {
		k := s.slots[i]
		if k == 0 {
			return 0, false
		}
		if s.entries.At(int(k)-1).id == id {
			return k, true
		}
	}
}

func (s *State) hash(id uuid.UUID) int { return int(maphash.Comparable(s.seed, id)) }

// add appends an entry for an id that is not in the state.
func (s *State) add(id uuid.UUID, v Value) {
	n := s.entries.Len()
	if n == maxValues {
		panic("domain: more values than a State can number")
	}
	if 2*(n+1) > len(s.slots) {
		s.grow()
	}
	s.entries.Append(entry{id: id, Value: v})
	s.place(id, uint32(n+1))
}

// place puts slot value k in the first empty slot of id's probe sequence.
func (s *State) place(id uuid.UUID, k uint32) {
	mask := len(s.slots) - 1
	i := s.hash(id) & mask
	for s.slots[i] != 0 {
		i = (i + 1) & mask
	}
	s.slots[i] = k
}

// grow doubles the index and places every entry again.
func (s *State) grow() {
	s.slots = make([]uint32, 2*len(s.slots))
	for k, e := range s.entries.All() {
		s.place(e.id, uint32(k+1))
	}
}
