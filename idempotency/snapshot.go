package idempotency

import (
	"time"

	"calculator/eventlog"
	"calculator/snapshot"
)

// entrySize is the bytes of a key in a snapshot: its hash, its table value
// and its second.
const entrySize = 8 + 8 + 4

// EncodeSnapshot writes the Index as it is now, for a snapshot (package
// snapshot): its secret, where it is in the commands topic, and the keys it
// has read there, oldest first. A key reserved by a request whose command
// the Index has not read in the log yet is left out: the log decides it,
// when the restored Index reads on from there.
func (ix *Index) EncodeSnapshot(e *snapshot.Encoder) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	t := ix.table
	e.Raw(ix.secret[:])
	e.Offsets(ix.next)
	e.Uint32(t.order.Clock())
	e.Uvarint(uint64(t.conflicts))
	logged := 0
	for key := range t.order.All() {
		if t.entries[key]&flagLogged != 0 {
			logged++
		}
	}
	e.Int(logged)
	e.Grow(logged * entrySize)
	for key, at := range t.order.All() {
		if v := t.entries[key]; v&flagLogged != 0 {
			e.Uint64(key)
			e.Uint64(v)
			e.Uint32(at)
		}
	}
}

// DecodeSnapshot reads what EncodeSnapshot wrote and returns install, which
// makes the Index start from it: Run then reads the commands topic from
// there. It is called before Run. Nothing changes until install is called,
// and on an error (wrapping snapshot.ErrCorrupt) there is none.
func (ix *Index) DecodeSnapshot(d *snapshot.Decoder) (install func(), err error) {
	var secret [32]byte
	copy(secret[:], d.Raw(len(secret)))
	next := d.Offsets()
	clock := d.Uint32()
	conflicts := d.Uvarint()
	n := d.Int(entrySize)
	if err := d.Err(); err != nil {
		return nil, err
	}
	ix.mu.Lock()
	bounds := ix.table.order.Bounds()
	ix.mu.Unlock()
	t := newTable(bounds)
	for range n {
		key, v, at := d.Uint64(), d.Uint64(), d.Uint32()
		if d.Err() != nil {
			break
		}
		if _, dup := t.entries[key]; dup || v&flagMask != flagDurable|flagLogged {
			d.Fail("key %x: held twice, or flags %b of a key not read in the log", key, v&flagMask)
			break
		}
		t.entries[key] = v
		t.order.Push(key, time.Unix(int64(at), 0))
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	t.order.Advance(time.Unix(int64(clock), 0))
	t.conflicts = int64(conflicts)
	return func() {
		ix.mu.Lock()
		defer ix.mu.Unlock()
		ix.secret, ix.next, ix.table = secret, eventlog.Offsets(next), t
	}, nil
}
