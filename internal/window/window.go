// Package window keeps the newest keys of a stream, each with the second it
// came in, bounded by age and count: the memory of recent things that the
// processor keeps of decided command ids (package decided) and the
// Idempotency-Key index of keys (package idempotency).
package window

import (
	"iter"
	"time"
)

// Bounds say what a Ring holds: a key is forgotten once it is older than
// Age (by the Ring's clock) and more than Min newer keys are held, or once
// more than Max newer keys are held (a ceiling on memory that a sustained
// rate could otherwise push without bound within Age).
type Bounds struct {
	Age      time.Duration
	Min, Max int
}

// Or returns b with each zero (or negative) field taken from def, and Max
// raised to Min when only Min was given.
func (b Bounds) Or(def Bounds) Bounds {
	if b.Age <= 0 {
		b.Age = def.Age
	}
	if b.Min <= 0 {
		b.Min = def.Min
	}
	if b.Max <= 0 {
		b.Max = max(def.Max, b.Min)
	}
	return b
}

// Ring is the keys in the order they were pushed, with each one's second,
// in two slices that grow by doubling: the size of a key and 4 bytes each.
// Its clock is the latest second it was given (by Push or Advance): it
// never goes back. It is not safe for concurrent use.
type Ring[K any] struct {
	bounds Bounds
	drop   func(K) // told of each key before it is forgotten; may be nil

	// The key with sequence number s (the s-th pushed since the start) is
	// at keys[(head+s-first)%len(keys)]; first is the oldest held.
	keys    []K
	at      []uint32
	head, n int
	first   uint64

	latest    uint32
	forgotten int64 // keys forgotten since the start
	early     int64 // of which before Age was over, because of Max
}

// New returns an empty Ring; drop, if not nil, is called with each key
// that the Ring forgets, before it does.
func New[K any](b Bounds, drop func(K)) *Ring[K] {
	return &Ring[K]{bounds: b, drop: drop}
}

// OnDrop makes drop the function told of each key before it is forgotten
// (in place of New's).
func (r *Ring[K]) OnDrop(drop func(K)) { r.drop = drop }

// Bounds returns the Ring's bounds.
func (r *Ring[K]) Bounds() Bounds { return r.bounds }

// Len is how many keys are held.
func (r *Ring[K]) Len() int { return r.n }

// Clock is the latest second the Ring was given.
func (r *Ring[K]) Clock() uint32 { return r.latest }

// Forgotten returns how many keys were forgotten since the start, and of
// those how many before their Age was over.
func (r *Ring[K]) Forgotten() (all, early int64) { return r.forgotten, r.early }

// First is the sequence number of the oldest key held.
func (r *Ring[K]) First() uint64 { return r.first }

// Key returns the key with sequence number s, which must be held.
func (r *Ring[K]) Key(s uint64) K { return r.keys[(r.head+int(s-r.first))%len(r.keys)] }

// Clone returns a copy of r that changes independently of it (and tells
// no one what it forgets).
func (r *Ring[K]) Clone() *Ring[K] {
	c := *r
	c.drop, c.head = nil, 0
	c.keys, c.at = make([]K, r.n), make([]uint32, r.n)
	for k := range r.n {
		j := (r.head + k) % len(r.keys)
		c.keys[k], c.at[k] = r.keys[j], r.at[j]
	}
	return &c
}

// Grow makes room for n more keys, so that a Ring about to be filled with a
// known number (from a snapshot) grows once.
func (r *Ring[K]) Grow(n int) {
	if r.n+n > len(r.keys) {
		r.resize(r.n + n)
	}
}

// Push appends k, which came in at the given time, moves the clock there
// (if it is later) and forgets what the bounds no longer cover. It returns
// k's sequence number.
func (r *Ring[K]) Push(k K, at time.Time) uint64 {
	if r.n == len(r.keys) {
		r.grow()
	}
	s := r.first + uint64(r.n)
	i := (r.head + r.n) % len(r.keys)
	r.keys[i], r.at[i] = k, Seconds(at)
	r.n++
	r.Advance(at)
	return s
}

// Advance moves the clock to now (if it is later) and forgets what the
// bounds no longer cover.
func (r *Ring[K]) Advance(now time.Time) {
	r.latest = max(r.latest, Seconds(now))
	horizon := int64(r.latest) - int64(r.bounds.Age/time.Second)
	for r.n > 0 {
		switch {
		case r.n > r.bounds.Max:
			r.early++
		case r.n > r.bounds.Min && int64(r.at[r.head]) < horizon:
		default:
			return
		}
		if r.drop != nil {
			r.drop(r.keys[r.head])
		}
		r.head = (r.head + 1) % len(r.keys)
		r.n--
		r.first++
		r.forgotten++
	}
}

// All yields the keys held, oldest first, with their seconds.
func (r *Ring[K]) All() iter.Seq2[K, uint32] {
	return func(yield func(K, uint32) bool) {
		for k := range r.n {
			i := (r.head + k) % len(r.keys)
			if !yield(r.keys[i], r.at[i]) {
				return
			}
		}
	}
}

func (r *Ring[K]) grow() { r.resize(max(1024, 2*len(r.keys))) }

func (r *Ring[K]) resize(size int) {
	keys, at := make([]K, size), make([]uint32, size)
	for k := range r.n {
		j := (r.head + k) % len(r.keys)
		keys[k], at[k] = r.keys[j], r.at[j]
	}
	r.keys, r.at, r.head = keys, at, 0
}

// Seconds is t in whole seconds since 1970, as a Ring keeps it: a uint32,
// which lasts until 2106.
func Seconds(t time.Time) uint32 {
	return uint32(min(max(t.Unix(), 0), 1<<32-1))
}
