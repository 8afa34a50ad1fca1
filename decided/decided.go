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
	"iter"
	"math/bits"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
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
type Window struct {
	Age      time.Duration
	Min, Max int
}

func (w Window) withDefaults() Window {
	if w.Age <= 0 {
		w.Age = DefaultAge
	}
	if w.Min <= 0 {
		w.Min = DefaultMin
	}
	if w.Max <= 0 {
		w.Max = max(DefaultMax, w.Min)
	}
	return w
}

// Ring is the ids of the window in the order of their outcomes, with each
// outcome's second: 20 bytes an id. It holds what a Set of the same Window
// holds after the same Adds, but does not look ids up (nor notice an id
// added twice). It is not safe for concurrent use.
type Ring struct {
	bound Window
	// The id with sequence number s (the s-th added since the start) is
	// at ids[(head+s-first)%len(ids)]; first is the oldest held.
	ids     []uuid.UUID
	at      []uint32 // seconds since 1970 of each outcome (until 2106)
	head, n int
	first   uint64

	latest    uint32 // the newest second seen: the clock of the Age bound
	forgotten int64  // ids forgotten since the start
	early     int64  // of which before Age was over, because of Max
}

// NewRing returns an empty Ring bounded by w.
func NewRing(w Window) *Ring { return &Ring{bound: w.withDefaults()} }

// Len is how many ids are held.
func (r *Ring) Len() int { return r.n }

// Clock is the newest second seen, by which ids age.
func (r *Ring) Clock() uint32 { return r.latest }

// Forgotten returns how many ids were forgotten since the start, and of
// those how many before their Age was over.
func (r *Ring) Forgotten() (all, early int64) { return r.forgotten, r.early }

// Push records that id got its outcome at the given time, then forgets
// what the bounds no longer cover.
func (r *Ring) Push(id uuid.UUID, at time.Time) {
	r.advance(at)
	r.push(id, seconds(at))
	r.forget(nil)
}

// Advance moves the clock of the Age bound to now (if it is later) and
// forgets what the bounds no longer cover.
func (r *Ring) Advance(now time.Time) {
	r.advance(now)
	r.forget(nil)
}

// All yields the ids held, oldest first, with their outcomes' seconds.
func (r *Ring) All() iter.Seq2[uuid.UUID, uint32] {
	return func(yield func(uuid.UUID, uint32) bool) {
		for k := range r.n {
			i := (r.head + k) % len(r.ids)
			if !yield(r.ids[i], r.at[i]) {
				return
			}
		}
	}
}

func (r *Ring) advance(now time.Time) { r.latest = max(r.latest, seconds(now)) }

// push appends id as the newest, growing the ring when it is full.
func (r *Ring) push(id uuid.UUID, at uint32) {
	if r.n == len(r.ids) {
		size := max(1024, 2*len(r.ids))
		ids, ats := make([]uuid.UUID, size), make([]uint32, size)
		for k := range r.n {
			j := (r.head + k) % len(r.ids)
			ids[k], ats[k] = r.ids[j], r.at[j]
		}
		r.ids, r.at, r.head = ids, ats, 0
	}
	i := r.pos(r.first + uint64(r.n))
	r.ids[i], r.at[i] = id, at
	r.n++
}

// forget drops the oldest ids while they are out of the bounds, calling
// drop (if not nil) with each before it goes.
func (r *Ring) forget(drop func(id uuid.UUID)) {
	horizon := int64(r.latest) - int64(r.bound.Age/time.Second)
	for r.n > 0 {
		switch {
		case r.n > r.bound.Max:
			r.early++
		case r.n > r.bound.Min && int64(r.at[r.head]) < horizon:
		default:
			return
		}
		if drop != nil {
			drop(r.ids[r.head])
		}
		r.head = (r.head + 1) % len(r.ids)
		r.n--
		r.first++
		r.forgotten++
	}
}

func (r *Ring) pos(s uint64) int { return (r.head + int(s-r.first)) % len(r.ids) }

// Set is the window of decided command ids with lookups: a Ring, and an
// open-addressing index (linear probing, backward-shift deletion) of
// 32-bit sequence numbers into it. About 30 bytes an id (20 in the ring, 4
// to 8 in the index, the rest slack from doubling), against about 50 for a
// map[uuid.UUID]struct{} that never forgets. It is not safe for concurrent
// use.
type Set struct {
	ring   Ring
	k0, k1 uint64 // the hash's random keys: nobody can aim collisions

	// slots holds 1+uint32(s) for each held id s at the slot its hash
	// leads to (or after, by linear probing); 0 is an empty slot. The low
	// 32 bits of s name it: fewer than 2^32 ids are ever held.
	slots []uint32
}

// New returns an empty Set bounded by w.
func New(w Window) *Set {
	return &Set{ring: Ring{bound: w.withDefaults()}, k0: rand.Uint64(), k1: rand.Uint64()}
}

// FromRing returns a Set that holds what r holds, with r's clock: the Set
// whose Adds r recorded (but for an id r recorded twice, which the Set
// holds once).
func FromRing(r *Ring) *Set {
	s := New(r.bound)
	for id, at := range r.All() {
		s.Add(id, time.Unix(int64(at), 0))
	}
	s.ring.latest = max(s.ring.latest, r.latest)
	s.ring.forgotten, s.ring.early = r.forgotten, r.early
	s.ring.forget(s.remove)
	return s
}

// Len is how many ids are held.
func (s *Set) Len() int { return s.ring.n }

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
	s.ring.advance(at)
	if s.Has(id) {
		s.ring.forget(s.remove)
		return
	}
	if 2*(s.ring.n+1) > len(s.slots) {
		s.growIndex()
	}
	s.ring.push(id, seconds(at))
	s.insert(s.ring.first + uint64(s.ring.n-1))
	s.ring.forget(s.remove)
}

// Advance moves the clock of the Age bound to now (if it is later) and
// forgets what the bounds no longer cover.
func (s *Set) Advance(now time.Time) {
	s.ring.advance(now)
	s.ring.forget(s.remove)
}

// seq turns a slot's content back into the sequence number it names.
func (s *Set) seq(slot uint32) uint64 { return s.ring.first + uint64(slot-1-uint32(s.ring.first)) }

func (s *Set) idAt(slot uint32) uuid.UUID { return s.ring.ids[s.ring.pos(s.seq(slot))] }

// home is the slot where id's probe run starts: a keyed multiply-fold of
// its two halves.
func (s *Set) home(id uuid.UUID) int {
	hi, lo := bits.Mul64(binary.LittleEndian.Uint64(id[:8])^s.k0, binary.LittleEndian.Uint64(id[8:])^s.k1)
	return int((hi ^ lo) & uint64(len(s.slots)-1))
}

// find returns the slot that holds id.
func (s *Set) find(id uuid.UUID) (int, bool) {
	if s.ring.n == 0 {
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

func (s *Set) insert(seq uint64) {
	mask := len(s.slots) - 1
	i := s.home(s.ring.ids[s.ring.pos(seq)])
	for s.slots[i] != 0 {
		i = (i + 1) & mask
	}
	s.slots[i] = 1 + uint32(seq)
}

// remove empties id's slot and moves later entries of its probe run back,
// so that no lookup stops early at the hole.
func (s *Set) remove(id uuid.UUID) {
	i, ok := s.find(id)
	if !ok {
		return
	}
	mask := len(s.slots) - 1
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
	for k := range s.ring.n {
		s.insert(s.ring.first + uint64(k))
	}
}

// seconds is t in whole seconds since 1970, as the ring keeps it.
func seconds(t time.Time) uint32 {
	return uint32(min(max(t.Unix(), 0), 1<<32-1))
}
