package domain

import (
	"fmt"
	"iter"

	"github.com/google/uuid"

	"calculator/internal/chunked"
	"calculator/internal/idindex"
)

// State holds every value, keyed by value id. The zero State is not usable;
// call NewState (or StateOf). It is not safe for concurrent use.
//
// It is the largest thing the processor and the view each hold, one entry
// per value ever created, so it is laid out for memory rather than built on
// a map: the entries (id, number, version: 40 bytes) sit in the order the
// values were created, in fixed-size chunks that never move, and an index
// of 4-byte entry numbers, at most half full, finds them (idindex). That is
// 48 to 56 bytes a value, where a map[uuid.UUID]Value takes about twice as
// much, and a copy (Clone) is a few memory copies. Values are never
// removed.
//
// The entry numbers are part of the contract (Number, At): value k is the
// k-th created, and keeps its number, so that whoever keeps more per value
// beside a State (the view, its history index) can keep it in a slice.
type State struct {
	entries chunked.Slice[entry]
	index   idindex.Index[entryIDs] // of the entries' ids
}

// entryIDs are the ids of a State's entries, for its index.
type entryIDs struct{ entries *chunked.Slice[entry] }

func (e entryIDs) ID(k int) [16]byte { return e.entries.At(k).id }

type entry struct {
	id uuid.UUID
	Value
}

// maxValues is the most entries the 32-bit index can number.
const maxValues = 1<<32 - 2

// NewState returns an empty State.
func NewState() *State {
	s := &State{}
	s.index.Build(8, 0, s.ids())
	return s
}

// StateOf returns a State of the values that values yields, numbered in
// that order: a State as a snapshot recorded it. An id yielded twice is an
// error. It builds the index at once (idindex's BuildDistinct), which is faster
// than adding the values one by one.
func StateOf(values iter.Seq2[uuid.UUID, Value]) (*State, error) {
	s := &State{}
	for id, v := range values {
		if s.entries.Len() == maxValues {
			return nil, fmt.Errorf("more than %d values", maxValues)
		}
		s.entries.Append(entry{id: id, Value: v})
	}
	n := s.entries.Len()
	if k, ok := s.index.BuildDistinct(n, n, s.ids()); !ok {
		return nil, fmt.Errorf("value %s is there twice", s.entries.At(k).id)
	}
	return s, nil
}

// Get returns the value with the given id.
func (s *State) Get(id uuid.UUID) (Value, bool) {
	if e := s.find(id); e != nil {
		return e.Value, true
	}
	return Value{}, false
}

// Number returns the number of the value with the given id: the values are
// numbered 0, 1, 2... in the order they were created (or given to StateOf).
func (s *State) Number(id uuid.UUID) (int, bool) { return s.index.Find(id, s.ids()) }

// At returns the value numbered k (below Len).
func (s *State) At(k int) (uuid.UUID, Value) {
	e := s.entries.At(k)
	return e.id, e.Value
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

// Clone returns a copy of s, which changes independently of it.
func (s *State) Clone() *State {
	return &State{entries: s.entries.Clone(), index: s.index.Clone()}
}

// find returns the entry of the value with the given id, or nil.
func (s *State) find(id uuid.UUID) *entry {
	if k, ok := s.index.Find(id, s.ids()); ok {
		return s.entries.At(k)
	}
	return nil
}

func (s *State) ids() entryIDs { return entryIDs{&s.entries} }

// add appends an entry for an id that is not in the state.
func (s *State) add(id uuid.UUID, v Value) {
	n := s.entries.Len()
	if n == maxValues {
		panic("domain: more values than a State can number")
	}
	if !s.index.Fits(n + 1) {
		s.index.Build(n+1, n, s.ids()) // twice the size; the entries are distinct
	}
	s.entries.Append(entry{id: id, Value: v})
	s.index.Insert(id, n)
}
