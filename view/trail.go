package view

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"
)

// point is what the view keeps of one event to find it again: its offset
// in its partition, and a time (see trail).
type point struct {
	offset int64
	time   int64 // Unix nanoseconds
}

// markEvery is how many entries of a trail make a block: a lookup decodes
// at most this many, and a completed block leaves memory for the block
// store (blocks.go).
const markEvery = 128

// trail is a sequence of points with increasing offsets and non-decreasing
// times, packed: each entry is two uvarints, the offset's difference from
// the previous entry's (1 when the records are neighbours, a few bytes when
// other values' events lie between) and the time's. It is the view's index
// of one value's events: a few bytes an event, where the events themselves
// stay in the log.
//
// The entries come in blocks of markEvery. A trail holds in memory only its
// last, unfinished block (data); each completed one is in the block store,
// and the trail's owner keeps its blockRef (add hands it out, and a lookup
// takes the refs back). So a trail costs memory in proportion to its
// blocks (a 32-byte ref each), not to its entries.
//
// Times are kept as a running maximum, so that they never decrease even if
// a clock went back between two events: "the value at instant T" is then
// the value after the longest run of events, from the first, stamped at or
// before T, and a binary search finds it.
//
// A trail is 48 bytes, small enough to live in a slot of the index's
// chunked slice (the view has one per value and updates it for every
// event).
type trail struct {
	data      []byte // the entries of the unfinished block
	last      point
	n         int32 // entries, the stored blocks' included
	partition int32 // of the offsets
}

// add appends an entry. Offsets must increase; a time earlier than the
// last one's counts as the last one's. When the entry completes a block,
// add appends the block to store, returns its ref, and the trail starts a
// new block in a new array (a copy of the trail taken before, by a lookup
// or a snapshot, keeps reading the old one, which is never written again).
func (t *trail) add(p point, store blockStore) (ref blockRef, stored bool) {
	p.time = max(p.time, t.last.time)
	t.data = binary.AppendUvarint(t.data, uint64(p.offset-t.last.offset))
	t.data = binary.AppendUvarint(t.data, uint64(p.time-t.last.time))
	t.last = p
	t.n++
	if t.n%markEvery != 0 {
		return blockRef{}, false
	}
	ref = blockRef{last: p, pos: store.add(t.data), length: uint32(len(t.data)), crc: crc32.Checksum(t.data, castagnoli)}
	// Room for the next block, about as long as this one: one allocation
	// a block, and the same heap from one block to the next (growing from
	// nothing by append's doublings would take five or six, and a heap
	// that depends on how far each value is into its block).
	t.data = make([]byte, 0, len(t.data)+len(t.data)/8)
	return ref, true
}

// lookup is a trail with its blocks' refs and their store, for reading. A
// copy taken under the view's lock may be read after it is released: the
// trail's data and refs only grow past the copy's lengths.
type lookup struct {
	trail
	blocks []blockRef // blocks[k] holds entries markEvery*k to markEvery*(k+1)-1
	store  blockStore
}

// len is the number of entries.
func (l lookup) len() int { return int(l.n) }

// errBadBlock: a block's bytes, read back whole, do not decode to its
// entries.
var errBadBlock = errors.New("the block does not decode to its entries")

// from calls yield with the entries from index i on, with their indexes,
// until yield returns false. It reads each stored block it needs from the
// store, and fails (with a *blockError) when one cannot be read or is
// damaged: what it yielded before is right, it yields nothing wrong.
func (l lookup) from(i int, yield func(int, point) bool) error {
	for k := i / markEvery; k*markEvery < l.len(); k++ {
		data, p := l.data, point{}
		if k > 0 {
			p = l.blocks[k-1].last
		}
		stored := k < len(l.blocks)
		if stored {
			var err error
			if data, err = readBlock(l.store, l.blocks[k]); err != nil {
				return err
			}
		}
		at := 0
		for j := k * markEvery; j < min((k+1)*markEvery, l.len()); j++ {
			d, w := binary.Uvarint(data[at:])
			at += max(w, 0)
			p.offset += int64(d)
			t, w2 := binary.Uvarint(data[at:])
			at += max(w2, 0)
			p.time += int64(t)
			if w <= 0 || w2 <= 0 {
				if stored {
					return &blockError{pos: l.blocks[k].pos, length: l.blocks[k].length, err: errBadBlock}
				}
				return fmt.Errorf("the history index's unfinished block: %w", errBadBlock)
			}
			if j >= i && !yield(j, p) {
				return nil
			}
		}
		if stored && (p != l.blocks[k].last || at != len(data)) {
			return &blockError{pos: l.blocks[k].pos, length: l.blocks[k].length, err: errBadBlock}
		}
	}
	return nil
}

// at returns entry i, which must exist.
func (l lookup) at(i int) (point, error) {
	if i < 0 || i >= l.len() {
		panic("view: trail index out of range")
	}
	var got point
	err := l.from(i, func(_ int, p point) bool { got = p; return false })
	return got, err
}

// seek returns the index of the first entry for which past is true, or
// len() if none is; past must be false, then true, along the trail (an
// offset or a time beyond some bound). It finds the block by binary search
// over the blocks' last points and decodes only that one.
func (l lookup) seek(past func(point) bool) (int, error) {
	// The first block whose last entry is past holds the answer; when
	// none is, the unfinished block holds it, or no entry is past.
	k := sort.Search(len(l.blocks), func(k int) bool { return past(l.blocks[k].last) })
	found := l.len()
	err := l.from(k*markEvery, func(j int, p point) bool {
		if past(p) {
			found = j
			return false
		}
		return true
	})
	return found, err
}

// countUntil returns how many entries, from the first, have times at or
// before time.
func (l lookup) countUntil(time int64) (int, error) {
	return l.seek(func(p point) bool { return p.time > time })
}

// after returns the index of the first entry with an offset above offset.
func (l lookup) after(offset int64) (int, error) {
	return l.seek(func(p point) bool { return p.offset > offset })
}
