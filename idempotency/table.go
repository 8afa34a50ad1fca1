package idempotency

import "time"

// entry flags, in the two low bits of a table value (the rest is the
// request's fingerprint prefix).
const (
	flagDurable uint64 = 1 << iota // a command of this request is durable in the log
	flagLogged                     // the index has read that command in the log
	flagMask    = flagDurable | flagLogged
)

// table remembers which request first used each key, in bounded memory: a
// 64-bit hash of the key maps to the first 62 bits of the request's
// fingerprint and two flags, and a ring lists the keys in the order they
// were first seen, with when, so that the oldest can be forgotten. Whole
// keys are never kept. It is not safe for concurrent use; the Index's mutex
// guards it.
//
// A key is forgotten once it is older than window and more than minKeys
// newer keys are held, or once more than maxKeys are held (a ceiling on
// memory that a sustained rate of keyed commands could otherwise push
// without bound within the window).
type table struct {
	window           time.Duration
	minKeys, maxKeys int
	entries          map[uint64]uint64
	order            ring
	forgotten        int64 // keys forgotten since start
	forgottenEarly   int64 // of which before their window was over, for maxKeys
	conflicts        int64 // keyed records whose key another request had used first
}

func newTable(window time.Duration, minKeys, maxKeys int) *table {
	return &table{window: window, minKeys: minKeys, maxKeys: maxKeys, entries: make(map[uint64]uint64)}
}

// prefix is the part of a fingerprint that the table keeps.
func (fp Fingerprint) prefix() uint64 {
	var p uint64
	for _, b := range fp[:8] {
		p = p<<8 | uint64(b)
	}
	return p &^ flagMask
}

// add records a key that the table does not hold, first seen at at, and
// forgets what it must to stay within its bounds as of now.
func (t *table) add(key, value uint64, at, now time.Time) {
	t.entries[key] = value
	t.order.push(key, unixSeconds(at))
	t.forget(now)
}

// observe records a keyed command read in the log, written at at. The log
// decides who used a key first: a key reserved in this process for a
// request that the log has not shown yet is taken over by the request the
// log shows. It returns false when the log shows a second request under a
// key it already showed for another (two processes took the key at the
// same moment); the first one stays.
func (t *table) observe(key, prefix uint64, at, now time.Time) bool {
	v, known := t.entries[key]
	switch {
	case !known:
		t.add(key, prefix|flagDurable|flagLogged, at, now)
	case v&^flagMask == prefix || v&flagLogged == 0:
		t.entries[key] = prefix | flagDurable | flagLogged
	default:
		t.conflicts++
		return false
	}
	return true
}

// forget drops the oldest keys that are out of the window, or over the
// ceiling.
func (t *table) forget(now time.Time) {
	horizon := unixSeconds(now.Add(-t.window))
	for t.order.n > 0 {
		key, at := t.order.front()
		switch {
		case t.order.n > t.maxKeys:
			t.forgottenEarly++
		case t.order.n > t.minKeys && at < horizon:
		default:
			return
		}
		t.order.pop()
		delete(t.entries, key)
		t.forgotten++
	}
}

// unixSeconds is t in whole seconds since 1970, as the ring keeps it: a
// uint32, which lasts until 2106.
func unixSeconds(t time.Time) uint32 {
	return uint32(min(max(t.Unix(), 0), 1<<32-1))
}

// ring is a queue of keys with the second each was first seen, oldest
// first, in two slices that grow by doubling: 12 bytes a key.
type ring struct {
	keys    []uint64
	at      []uint32
	head, n int
}

func (r *ring) push(key uint64, at uint32) {
	if r.n == len(r.keys) {
		r.grow()
	}
	i := (r.head + r.n) % len(r.keys)
	r.keys[i], r.at[i] = key, at
	r.n++
}

func (r *ring) front() (uint64, uint32) { return r.keys[r.head], r.at[r.head] }

func (r *ring) pop() {
	r.head = (r.head + 1) % len(r.keys)
	r.n--
}

func (r *ring) grow() {
	size := max(1024, 2*len(r.keys))
	keys, at := make([]uint64, size), make([]uint32, size)
	for i := range r.n {
		j := (r.head + i) % len(r.keys)
		keys[i], at[i] = r.keys[j], r.at[j]
	}
	r.keys, r.at, r.head = keys, at, 0
}
