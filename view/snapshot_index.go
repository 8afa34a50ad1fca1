package view

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/google/uuid"

	"calculator/domain"
	"calculator/snapshot"
)

// The index in a snapshot (encode writes it, decodeIndex reads it back):
//
//	store    16 bytes, the id of the block store the refs are in
//	end      uvarint, the store's end when the index was frozen: every
//	         ref lies below it
//	n        count of values
//	ids      n × 16 bytes, the value ids in increasing order
//	n × value, in the order of the values' numbers in the State the
//	           index stands beside (the fold's, in the same snapshot):
//	  versions  trail
//	  rejected  bool, then the rejections' trail when true
//
// A trail is its partition, entry count and last point, the refs of its
// stored blocks (position, length, CRC-32C, last point), then its
// unfinished block (length, bytes): the stored blocks stay in the store,
// so the snapshot holds a few bytes per markEvery events. The ids in order
// rebuild sortedIDs without a sort; the trails in the order of the numbers
// rebuild versions without looking an id up. A decode copies the
// unfinished blocks into one array, of which each trail is a slice with no
// room beyond its data (its next entry moves it out).
//
// decodeIndex checks everything an index's queries rely on that the
// snapshot holds: the ids increase and are the State's (a sum over both),
// each trail has a ref per completed block, each ref lies below end, and
// each unfinished block decodes to exactly its entries from the last ref's
// point on, with increasing offsets, and ends at the trail's last point.
// So a decoded index answers as the one that was encoded, or the decode
// fails; it never panics on a query later. The stored blocks themselves
// are checked when read (their CRC, and that they end at their ref's
// point), and Restore checks that the store is the snapshot's.

// encode appends the index, which stands beside s and whose refs are in
// the store with id sid, below end, to e.
func (x *index) encode(e *snapshot.Encoder, s *domain.State, sid storeID, end int64) {
	e.Raw(sid[:])
	e.Uvarint(uint64(end))
	e.Int(x.ids.len())
	for _, b := range x.ids.blocks {
		for _, id := range b {
			e.Raw(id[:])
		}
	}
	for k := range x.versions.Len() {
		id, _ := s.At(k)
		encodeTrail(e, x.versions.At(k), x.versionBlocks[id])
		r := x.rejected[id]
		e.Bool(r != nil)
		if r != nil {
			encodeTrail(e, &r.trail, r.blocks)
		}
	}
}

// encodeTrail appends t: its header, its blocks' refs and its unfinished
// block.
func encodeTrail(e *snapshot.Encoder, t *trail, blocks []blockRef) {
	e.Varint(int64(t.partition))
	e.Int(int(t.n))
	e.Varint(t.last.offset)
	e.Varint(t.last.time)
	e.Int(len(blocks))
	for _, r := range blocks {
		e.Uvarint(uint64(r.pos))
		e.Uvarint(uint64(r.length))
		e.Uint32(r.crc)
		e.Varint(r.last.offset)
		e.Varint(r.last.time)
	}
	e.Int(len(t.data))
	e.Raw(t.data)
}

// indexPart is an index as decodeIndexPart read it, before it is matched
// with the State it stands beside: the trails under the values' numbers and
// the ids in order, with the refs and rejections by number, and which
// store the refs are in. Decoding it needs neither the State nor the
// store, so it may run while the fold is decoded.
type indexPart struct {
	x        index // without versionBlocks, rejected and store
	n        int
	sum      idSum // of the ids in order
	blocks   map[int][]blockRef
	rejected map[int]*rejections
	// store and end are the store's id and end when the index was frozen;
	// lastBlock is the ref with the highest position (nil: none).
	store     storeID
	end       int64
	lastBlock *blockRef
}

// unfinishedChunk is the size of the chunks into which decodeIndexPart
// copies the trails' unfinished blocks.
const unfinishedChunk = 1 << 20

// decodeIndexPart reads what encode wrote. Its errors wrap
// snapshot.ErrCorrupt.
func decodeIndexPart(d *snapshot.Decoder) (*indexPart, error) {
	p := &indexPart{blocks: make(map[int][]blockRef), rejected: make(map[int]*rejections)}
	p.store = d.UUID()
	end := d.Uvarint()
	if d.Err() == nil && end > math.MaxInt64 {
		d.Fail("a block store of %d bytes", end)
	}
	p.end = int64(end)
	// Each value takes at least its id and seven bytes of trail.
	n := d.Int(16 + 7)
	raw := d.Raw(16 * n)
	if d.Err() != nil {
		return nil, d.Err()
	}
	p.n = n
	for i := 0; i < len(raw); i += 16 {
		if i > 0 && bytes.Compare(raw[i-16:i], raw[i:i+16]) >= 0 {
			d.Fail("value ids out of order at %d", i/16)
			return nil, d.Err()
		}
		p.sum.add(uuid.UUID(raw[i:]))
	}

	// The trails, one pass: each unfinished block is copied out of d's
	// bytes (which are the whole snapshot's) into chunks of
	// unfinishedChunk bytes, one allocation for many trails.
	var chunk []byte
	keep := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		if cap(chunk)-len(chunk) < len(b) {
			chunk = make([]byte, 0, max(unfinishedChunk, len(b)))
		}
		at := len(chunk)
		chunk = append(chunk, b...)
		// Full: an append to the trail, live, moves it elsewhere rather
		// than over its neighbour's bytes.
		return chunk[at:len(chunk):len(chunk)]
	}
	decode := func(k int) (lookup, bool) {
		l := decodeTrail(d)
		if d.Err() != nil {
			return l, false
		}
		if err := l.check(p.end); err != "" {
			d.Fail("value number %d: %s", k, err)
			return l, false
		}
		for j := range l.blocks {
			if r := &l.blocks[j]; p.lastBlock == nil || r.pos > p.lastBlock.pos {
				p.lastBlock = r
			}
		}
		l.data = keep(l.data)
		return l, true
	}
	for k := range n {
		v, ok := decode(k)
		if !ok {
			return nil, d.Err()
		}
		p.x.versions.Append(v.trail)
		if len(v.blocks) > 0 {
			p.blocks[k] = v.blocks
		}
		if d.Bool() {
			r, ok := decode(k)
			if !ok {
				return nil, d.Err()
			}
			if r.partition == splitPartition {
				d.Fail("value number %d: rejections in no partition", k)
				return nil, d.Err()
			}
			p.rejected[k] = &rejections{trail: r.trail, blocks: r.blocks}
		}
		if d.Err() != nil {
			return nil, d.Err()
		}
	}
	p.x.ids = idsOf(raw)
	return p, nil
}

// attach matches the index with s, the State of the same snapshot's fold,
// and returns it, its blocks in store: s must hold exactly the values whose
// ids the index has in order. Its errors wrap snapshot.ErrCorrupt. It does
// not check the store (see checkStore).
func (p *indexPart) attach(s *domain.State, store blockStore) (index, error) {
	if p.n != s.Len() {
		return index{}, fmt.Errorf("%w: a history for %d values, and %d values", snapshot.ErrCorrupt, p.n, s.Len())
	}
	sum := p.sum
	for id := range s.All() {
		sum.remove(id)
	}
	if sum != (idSum{}) {
		return index{}, fmt.Errorf("%w: the ids in order are not the values' ids", snapshot.ErrCorrupt)
	}
	x := p.x
	x.store = store
	x.versionBlocks = make(map[uuid.UUID][]blockRef, len(p.blocks))
	x.rejected = make(map[uuid.UUID]*rejections, len(p.rejected))
	for k, b := range p.blocks {
		id, _ := s.At(k)
		x.versionBlocks[id] = b
	}
	for k, r := range p.rejected {
		id, _ := s.At(k)
		x.rejected[id] = r
	}
	return x, nil
}

// errHistoryStore: the block store is not the one whose blocks a
// snapshot's index refers to, or no longer holds them.
var errHistoryStore = errors.New("the history file is not the snapshot's")

// checkStore reports whether store holds the blocks the index refers to:
// it is the store the index was frozen with (same id), it is at least as
// long as it was then, and the last block written before the freeze reads
// back whole. Its errors wrap errHistoryStore.
func (p *indexPart) checkStore(store blockStore) error {
	sid, err := store.id()
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w", errHistoryStore, err)
	case sid != p.store:
		return fmt.Errorf("%w: the file's id is %s, the snapshot's %s (the file was started afresh since)", errHistoryStore, sid, p.store)
	case store.end() < p.end:
		return fmt.Errorf("%w: it is %d bytes long, the snapshot refers to %d", errHistoryStore, store.end(), p.end)
	}
	if p.lastBlock != nil {
		if _, err := readBlock(store, *p.lastBlock); err != nil {
			return fmt.Errorf("%w: its last block: %w", errHistoryStore, err)
		}
	}
	return nil
}

// idSum is a sum over a set of ids that does not depend on their order:
// the same for the ids in order and for the State's, or (unless the sets
// differ in a way made to cancel out) not.
type idSum struct{ a, b uint64 }

func (s *idSum) add(id uuid.UUID) {
	lo, hi := binary.LittleEndian.Uint64(id[:8]), binary.LittleEndian.Uint64(id[8:])
	s.a += lo ^ hi*0x9e3779b97f4a7c15
	s.b += hi ^ lo*0xc2b2ae3d27d4eb4f
}

func (s *idSum) remove(id uuid.UUID) {
	var neg idSum
	neg.add(id)
	s.a -= neg.a
	s.b -= neg.b
}

// decodeTrail reads a trail, with its refs; its data is a slice of d's
// bytes.
func decodeTrail(d *snapshot.Decoder) (l lookup) {
	partition := d.Varint()
	n := d.Uvarint()
	l.last.offset = d.Varint()
	l.last.time = d.Varint()
	if partition < splitPartition || partition > math.MaxInt32 || n < 1 || n > math.MaxInt32 {
		d.Fail("a trail of %d entries in partition %d", n, partition)
		return lookup{}
	}
	l.partition, l.n = int32(partition), int32(n)
	blocks := d.Int(1 + 1 + 4 + 1 + 1)
	if d.Err() == nil && blocks != int(n)/markEvery {
		d.Fail("%d stored blocks for %d entries", blocks, n)
	}
	if d.Err() != nil {
		return lookup{}
	}
	if blocks > 0 {
		l.blocks = make([]blockRef, blocks)
		for k := range l.blocks {
			r := &l.blocks[k]
			pos, length := d.Uvarint(), d.Uvarint()
			r.crc = d.Uint32()
			r.last.offset, r.last.time = d.Varint(), d.Varint()
			if d.Err() == nil && (pos > math.MaxInt64 || length == 0 || length > maxBlockLen) {
				d.Fail("a block of %d bytes at %d", length, pos)
			}
			r.pos, r.length = int64(pos), uint32(length)
		}
	}
	l.data = d.Raw(d.Int(1))
	return l
}

// check walks l and reports what does not fit its header: the refs must
// lie below end, with increasing offsets and non-decreasing times; the
// unfinished block must hold the entries after the stored blocks', from
// the last ref's point on, with increasing offsets, and end at last. It
// returns "" when all fits.
func (l *lookup) check(end int64) string {
	var p point
	for k, r := range l.blocks {
		if r.pos < 0 || r.pos > end-int64(r.length) {
			return "a block beyond the store's end"
		}
		if k > 0 && (r.last.offset <= p.offset || r.last.time < p.time) {
			return "blocks out of order"
		}
		p = r.last
	}
	at := 0
	for j := len(l.blocks) * markEvery; j < int(l.n); j++ {
		d, w := binary.Uvarint(l.data[at:])
		if w <= 0 || d > math.MaxInt64 || (j > 0 && d == 0) || p.offset+int64(d) < p.offset {
			return "an entry with a bad offset"
		}
		at += w
		p.offset += int64(d)
		d, w = binary.Uvarint(l.data[at:])
		if w <= 0 {
			return "an entry with a bad time"
		}
		at += w
		p.time += int64(d)
	}
	switch {
	case at != len(l.data):
		return "trail data longer than its entries"
	case p != l.last:
		return "a last point that is not the trail's last entry"
	}
	return ""
}

// idsFill is how full decodeIndex leaves each block of sortedIDs: room for
// a quarter more before a block splits, about how full random inserts
// leave them.
const idsFill = blockSize * 3 / 4

// idsOf returns the sortedIDs of raw, 16-byte ids in increasing order. The
// blocks share one array, each with room to grow to blockSize in place.
func idsOf(raw []byte) sortedIDs {
	n := len(raw) / 16
	if n == 0 {
		return sortedIDs{}
	}
	blocks := (n + idsFill - 1) / idsFill
	all := make([]uuid.UUID, blocks*blockSize)
	s := sortedIDs{blocks: make([][]uuid.UUID, blocks), n: n}
	for i := range s.blocks {
		b := all[i*blockSize : i*blockSize+min(idsFill, n-i*idsFill) : (i+1)*blockSize]
		for j := range b {
			b[j] = uuid.UUID(raw[16*(i*idsFill+j):])
		}
		s.blocks[i] = b
	}
	return s
}
