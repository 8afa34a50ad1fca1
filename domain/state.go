package domain

import (
	"fmt"
	"hash/maphash"
	"iter"
	"math/bits"
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
func NewState() *State {
	return &State{seed: maphash.MakeSeed(), slots: make([]uint32, minSlots)}
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

// StateOf returns a State of the values that values yields, numbered in
// that order: a State as a snapshot recorded it. An id yielded twice is an
// error. It places the whole index at once, in the order of the slots,
// which is several times faster than adding the values one by one (each a
// cache miss in the index).
func StateOf(values iter.Seq2[uuid.UUID, Value]) (*State, error) {
	s := &State{seed: maphash.MakeSeed()}
	for id, v := range values {
		if s.entries.Len() == maxValues {
			return nil, fmt.Errorf("more than %d values", maxValues)
		}
		s.entries.Append(entry{id: id, Value: v})
	}
	if k, ok := s.index(slotsFor(s.entries.Len()), true); !ok {
		return nil, fmt.Errorf("value %s is there twice", s.entries.At(k).id)
	}
	return s, nil
}

// At returns the value numbered k (below Len).
func (s *State) At(k int) (uuid.UUID, Value) {
	e := s.entries.At(k)
	return e.id, e.Value
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
		s.index(2*len(s.slots), false) // the entries are distinct
	}
	s.entries.Append(entry{id: id, Value: v})
	s.place(s.hash(id)&(len(s.slots)-1), uint32(n+1))
}

// place puts slot value k in the first empty slot from home on.
func (s *State) place(home int, k uint32) {
	mask := len(s.slots) - 1
	i := home
	for s.slots[i] != 0 {
		i = (i + 1) & mask
	}
	s.slots[i] = k
}

// index makes a new index of size slots and places every entry in it, in
// the order of their home slots, so that the index is written from one end
// to the other rather than at random. With checkDistinct it reports, as
// the number of one and false, an entry whose id another has too (two
// such have the same home, so they are neighbours in that order).
func (s *State) index(size int, checkDistinct bool) (dup int, ok bool) {
	s.slots = make([]uint32, size)
	n, mask := s.entries.Len(), size-1
	// Each entry as its home slot (the high half) and number.
	order := make([]uint64, n)
	for k, e := range s.entries.All() {
		order[k] = uint64(s.hash(e.id)&mask)<<32 | uint64(k)
	}
	sortByHigh(order, bits.Len(uint(mask)))
	for i, o := range order {
		home, k := int(o>>32), int(uint32(o))
		if checkDistinct {
			id := s.entries.At(k).id
			for j := i - 1; j >= 0 && order[j]>>32 == o>>32; j-- {
				if s.entries.At(int(uint32(order[j]))).id == id {
					return k, false
				}
			}
		}
		s.place(home, uint32(k+1))
	}
	return 0, true
}

// sortByHigh sorts keys by their high 32 bits, of which only the lowest
// width can be set: a least-significant-digit radix sort, stable, so that
// the low halves (the entry numbers) stay in order within a home.
func sortByHigh(keys []uint64, width int) {
	const digit = 11
	if len(keys) == 0 {
		return
	}
	buf := make([]uint64, len(keys))
	src, dst := keys, buf
	for shift := 32; shift < 32+width; shift += digit {
		var count [1<<digit + 1]int
		for _, k := range src {
			count[(k>>shift)&(1<<digit-1)+1]++
		}
		for i := 1; i < len(count); i++ {
			count[i] += count[i-1]
		}
		for _, k := range src {
			d := (k >> shift) & (1<<digit - 1)
			dst[count[d]] = k
			count[d]++
		}
		src, dst = dst, src
	}
	if &src[0] != &keys[0] {
		copy(keys, src)
	}
}
