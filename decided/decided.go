// Package decided keeps the window of command ids that have an outcome: the
// processor's memory of what it decided, by which it answers a command
// written twice only once (see package processor), in bounded and compact
// memory.
//
// A Set answers whether an id is held; a Ring only keeps the ids in order,
// under the same bounds, for the view to write them into snapshots (package
// snapshot) from which a processor rebuilds its Set.
package decided

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"calculator/internal/window"
)

// The defaults of Window. They are the bounds of the Idempotency-Key index
// (idempotency.DefaultWindow, DefaultMinKeys, DefaultMaxKeys, SPEC §3),
// counted in outcomes instead of keyed commands; package processor says
// why that is enough.
const (
	DefaultAge = 24 * time.Hour
	DefaultMin = 1_000_000
	DefaultMax = 5_000_000
)

// Window bounds the decided command ids that are kept; the zero value
// means the defaults. An id is forgotten once its outcome is older than Age
// (by the event's timestamp) and more than Min newer outcomes are held, or
// once more than Max newer outcomes are held.
type Window = window.Bounds

func withDefaults(w Window) Window {
	return w.Or(Window{Age: DefaultAge, Min: DefaultMin, Max: DefaultMax})
}

// Ring is the ids of the window in the order of their outcomes, with each
// outcome's second: 20 bytes an id. It holds what a Set of the same Window
// holds after the same Adds (Push), but does not look ids up (nor notice
// an id added twice). It is not safe for concurrent use.
type Ring = window.Ring[uuid.UUID]

// NewRing returns an empty Ring bounded by w (the defaults where w is zero).
func NewRing(w Window) *Ring { return window.New[uuid.UUID](withDefaults(w), nil) }

// Set is the window of decided command ids with lookups: a Ring, and an
// open-addressing index (linear probing, backward-shift deletion) of
// 32-bit sequence numbers into it. About 30 bytes an id (20 in the ring, 4
// to 8 in the index, the rest slack from doubling), against about 42 for
// the ring beside a map[uuid.UUID]struct{} (22 bytes an id on Go 1.26,
// TestDecidedMemory). It is not safe for concurrent use.
type Set struct {
	ring   *Ring
	k0, k1 uint64 // the hash's random keys: nobody can aim collisions

	// slots holds 1+uint32(s) for each held id s at the slot its hash
	// leads to (or after, by linear probing); 0 is an empty slot. The low
	// 32 bits of s name it: fewer than 2^32 ids are ever held.
	slots []uint32
}

// New returns an empty Set bounded by w (the defaults where w is zero).
func New(w Window) *Set {
	s := &Set{k0: rand.Uint64(), k1: rand.Uint64()}
	s.ring = window.New(withDefaults(w), s.remove)
	return s
}

// FromRing returns a Set that holds what r holds, with r's clock: the Set
// whose Adds r recorded. It takes r, which the caller must not use again.
// An id that r recorded twice (it does not look ids up) is held twice, each
// copy until its own turn to be forgotten.
func FromRing(r *Ring) *Set {
	s := &Set{ring: r, k0: rand.Uint64(), k1: rand.Uint64()}
	r.OnDrop(s.remove)
	s.slots = make([]uint32, max(2048, 1<<bits.Len(uint(2*r.Len())))) // as growIndex would leave it
	seq := r.First()
	for id := range r.All() {
		s.insert(seq, id)
		seq++
	}
	return s
}

// Len is how many ids are held.
func (s *Set) Len() int { return s.ring.Len() }

// Forgotten is Ring.Forgotten.
func (s *Set) Forgotten() (all, early int64) { return s.ring.Forgotten() }

// Has reports whether id is held.
func (s *Set) Has(id uuid.UUID) bool {
	_, ok := s.find(id)
	return ok
}

// Add records that id got its outcome at the given time, unless it is held
// already, then forgets what the bounds no longer cover.
func (s *Set) Add(id uuid.UUID, at time.Time) {
	if s.Has(id) {
		s.ring.Advance(at)
		return
	}
	if 2*(s.ring.Len()+1) > len(s.slots) {
		s.growIndex()
	}
	s.insert(s.ring.Push(id, at), id)
}

// Advance moves the clock of the Age bound to now (if it is later) and
// forgets what the bounds no longer cover.
func (s *Set) Advance(now time.Time) { s.ring.Advance(now) }

// idAt returns the id whose sequence number the slot's content names.
func (s *Set) idAt(slot uint32) uuid.UUID {
	first := s.ring.First()
	return s.ring.Key(first + uint64(slot-1-uint32(first)))
}

// home is the slot where id's probe run starts: a keyed multiply-fold of
// its two halves.
func (s *Set) home(id uuid.UUID) int {
	hi, lo := bits.Mul64(binary.LittleEndian.Uint64(id[:8])^s.k0, binary.LittleEndian.Uint64(id[8:])^s.k1)
	return int((hi ^ lo) & uint64(len(s.slots)-1))
}

// find returns the slot that holds id.
func (s *Set) find(id uuid.UUID) (int, bool) {
	if len(s.slots) == 0 {
		return 0, false
	}
	mask := len(s.slots) - 1
	for i := s.home(id); s.slots[i] != 0; i = (i + 1) & mask {
		if s.idAt(s.slots[i]) == id {
			return i, true
		}
	}
	return 0, false
}

func (s *Set) insert(seq uint64, id uuid.UUID) {
	mask := len(s.slots) - 1
	i := s.home(id)
	for s.slots[i] != 0 {
		i = (i + 1) & mask
	}
	s.slots[i] = 1 + uint32(seq)
}

// remove empties the slot of id as the oldest held (the Ring is about to
// forget it; a copy of it held later keeps its own slot) and moves later
// entries of its probe run back, so that no lookup stops early at the
// hole.
func (s *Set) remove(id uuid.UUID) {
	mask := len(s.slots) - 1
	oldest := 1 + uint32(s.ring.First())
	i := s.home(id)
	for s.slots[i] != oldest {
		if s.slots[i] == 0 {
			return
		}
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; s.slots[j] != 0; j = (j + 1) & mask {
		h := s.home(s.idAt(s.slots[j]))
		// The entry at j may move to the hole at i unless its home lies
		// cyclically in (i, j].
		if (j-h)&mask >= (j-i)&mask {
			s.slots[i], i = s.slots[j], j
		}
	}
	s.slots[i] = 0
}

func (s *Set) growIndex() {
	s.slots = make([]uint32, max(2048, 2*len(s.slots)))
	first := s.ring.First()
	k := uint64(0)
	for id := range s.ring.All() {
		s.insert(first+k, id)
		k++
	}
}
