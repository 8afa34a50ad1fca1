package processor

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
)

// The defaults of Window. They are the bounds of the Idempotency-Key index
// (idempotency.DefaultWindow, DefaultMinKeys, DefaultMaxKeys, SPEC §3),
// counted in outcomes instead of keyed commands; the package comment says
// why that is enough.
const (
	DefaultDecidedAge = 24 * time.Hour
	DefaultMinDecided = 1_000_000
	DefaultMaxDecided = 5_000_000
)

// Window bounds the set of decided command ids that a Run keeps to skip a
// command written twice; the zero value means the defaults. An id is
// forgotten once its outcome is older than Age (by the event's timestamp)
// and more than Min newer outcomes are held, or once more than Max newer
// outcomes are held.
type Window struct {
	Age      time.Duration
	Min, Max int
}

func (w Window) withDefaults() Window {
	if w.Age <= 0 {
		w.Age = DefaultDecidedAge
	}
	if w.Min <= 0 {
		w.Min = DefaultMinDecided
	}
	if w.Max <= 0 {
		w.Max = max(DefaultMaxDecided, w.Min)
	}
	return w
}

// decided is the bounded set of command ids that have an outcome, in
// compact memory: a ring of the ids in the order of their outcomes, with
// each outcome's second, and an open-addressing index (linear probing,
// backward-shift deletion) of 32-bit sequence numbers into the ring. About
// 30 bytes an id (20 in the ring, 4 to 8 in the index, the rest slack from
// doubling), against about 50 for a map[uuid.UUID]struct{} that never
// forgets. It is owned by one Run's goroutine.
type decided struct {
	bound  Window
	k0, k1 uint64 // the hash's random keys: nobody can aim collisions

	// The ring: the id with sequence number s (the s-th added since the
	// start) is at ids[(head+s-first)%len(ids)]; first is the oldest held.
	ids     []uuid.UUID
	at      []uint32 // seconds since 1970 of each outcome (until 2106)
	head, n int
	first   uint64

	// slots holds 1+uint32(s) for each held id s at the slot its hash
	// leads to (or after, by linear probing); 0 is an empty slot. The low
	// 32 bits of s name it: fewer than 2^32 ids are ever held.
	slots []uint32

	latest    uint32 // the newest second seen: the clock of the Age bound
	forgotten int64  // ids forgotten since the start
	early     int64  // of which before Age was over, because of Max
}

func newDecided(bound Window) *decided {
	return &decided{bound: bound.withDefaults(), k0: rand.Uint64(), k1: rand.Uint64()}
}

// Len is how many ids are held.
func (d *decided) Len() int { return d.n }

// Has reports whether id is held.
func (d *decided) Has(id uuid.UUID) bool {
	_, ok := d.find(id)
	return ok
}

// Add records that id got its outcome at the given time, unless it is held
// already, then forgets what the bounds no longer cover.
func (d *decided) Add(id uuid.UUID, at time.Time) {
	d.advance(at)
	if d.Has(id) {
		d.forget()
		return
	}
	if d.n == len(d.ids) {
		d.growRing()
	}
	if 2*(d.n+1) > len(d.slots) {
		d.growIndex()
	}
	s := d.first + uint64(d.n)
	i := d.pos(s)
	d.ids[i], d.at[i] = id, seconds(at)
	d.n++
	d.insert(s)
	d.forget()
}

// Advance moves the clock of the Age bound to now (if it is later) and
// forgets what the bounds no longer cover.
func (d *decided) Advance(now time.Time) {
	d.advance(now)
	d.forget()
}

func (d *decided) advance(now time.Time) { d.latest = max(d.latest, seconds(now)) }

// forget drops the oldest ids while they are out of the bounds.
func (d *decided) forget() {
	horizon := int64(d.latest) - int64(d.bound.Age/time.Second)
	for d.n > 0 {
		switch {
		case d.n > d.bound.Max:
			d.early++
		case d.n > d.bound.Min && int64(d.at[d.head]) < horizon:
		default:
			return
		}
		d.remove(d.ids[d.head])
		d.head = (d.head + 1) % len(d.ids)
		d.n--
		d.first++
		d.forgotten++
	}
}

func (d *decided) pos(s uint64) int { return (d.head + int(s-d.first)) % len(d.ids) }

// seq turns a slot's content back into the sequence number it names.
func (d *decided) seq(slot uint32) uint64 { return d.first + uint64(slot-1-uint32(d.first)) }

// home is the slot where id's probe run starts: a keyed multiply-fold of
// its two halves.
func (d *decided) home(id uuid.UUID) int {
	hi, lo := bits.Mul64(binary.LittleEndian.Uint64(id[:8])^d.k0, binary.LittleEndian.Uint64(id[8:])^d.k1)
	return int((hi ^ lo) & uint64(len(d.slots)-1))
}

// find returns the slot that holds id.
func (d *decided) find(id uuid.UUID) (int, bool) {
	if d.n == 0 {
		return 0, false
	}
	mask := len(d.slots) - 1
	for i := d.home(id); d.slots[i] != 0; i = (i + 1) & mask {
		if d.ids[d.pos(d.seq(d.slots[i]))] == id {
			return i, true
		}
	}
	return 0, false
}

func (d *decided) insert(s uint64) {
	mask := len(d.slots) - 1
	i := d.home(d.ids[d.pos(s)])
	for d.slots[i] != 0 {
		i = (i + 1) & mask
	}
	d.slots[i] = 1 + uint32(s)
}

// remove empties id's slot and moves later entries of its probe run back,
// so that no lookup stops early at the hole.
func (d *decided) remove(id uuid.UUID) {
	i, ok := d.find(id)
	if !ok {
		return
	}
	mask := len(d.slots) - 1
	for j := (i + 1) & mask; d.slots[j] != 0; j = (j + 1) & mask {
		h := d.home(d.ids[d.pos(d.seq(d.slots[j]))])
		// The entry at j may move to the hole at i unless its home lies
		// cyclically in (i, j].
		if (j-h)&mask >= (j-i)&mask {
			d.slots[i], i = d.slots[j], j
		}
	}
	d.slots[i] = 0
}

func (d *decided) growRing() {
	size := max(1024, 2*len(d.ids))
	ids, at := make([]uuid.UUID, size), make([]uint32, size)
	for k := range d.n {
		j := (d.head + k) % len(d.ids)
		ids[k], at[k] = d.ids[j], d.at[j]
	}
	d.ids, d.at, d.head = ids, at, 0
}

func (d *decided) growIndex() {
	d.slots = make([]uint32, max(2048, 2*len(d.slots)))
	for k := range d.n {
		d.insert(d.first + uint64(k))
	}
}

// seconds is t in whole seconds since 1970, as the ring keeps it.
func seconds(t time.Time) uint32 {
	return uint32(min(max(t.Unix(), 0), 1<<32-1))
}
