package idempotency

import (
	"time"

	"calculator/internal/window"
)

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
// A key is forgotten once it is older than Options.Window (by the ring's
// clock: the latest of the times it was given, a key's first use or now)
// and more than MinKeys newer keys are held, or once more than MaxKeys are
// held (a
// ceiling on memory that a sustained rate of keyed commands could otherwise
// push without bound within the window): window.Ring.
type table struct {
	entries   map[uint64]uint64
	order     *window.Ring[uint64] // the keys held, oldest first: 12 bytes a key
	conflicts int64                // keyed records whose key another request had used first
}

func newTable(b window.Bounds) *table {
	t := &table{entries: make(map[uint64]uint64)}
	t.order = window.New(b, func(key uint64) { delete(t.entries, key) })
	return t
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
	t.order.Push(key, at)
	t.order.Advance(now)
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
