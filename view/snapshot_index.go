package view

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/google/uuid"

	"calculator/domain"
	"calculator/snapshot"
)

// The index in a snapshot (encode writes it, decodeIndex reads it back):
//
//	n        count of values
//	ids      n × 16 bytes, the value ids in increasing order
//	n × value, in the order of the values' numbers in the State the
//	           index stands beside (the fold's, in the same snapshot):
//	  versions  trail
//	  rejected  bool, then the rejections' trail when true
//
// A trail is its data's length, partition, entry count and last point, its
// marks, then its data. The ids in order rebuild sortedIDs without a sort;
// the trails in the order of the numbers rebuild versions without looking
// an id up. A decode copies the data of every trail into one array, of
// which each trail is a slice with no room beyond its data (its next entry
// moves it out).
//
// decodeIndex checks everything an index's queries rely on: the ids
// increase and are the State's (a sum over both), each trail's data
// decodes to exactly its entry count and ends at its last point, with
// increasing offsets, and its marks are the ones add would have handed
// out. So a decoded index answers as the one that was encoded, or the
// decode fails; it never panics on a query later.

// encode appends the index, which stands beside s, to e.
func (x *index) encode(e *snapshot.Encoder, s *domain.State) {
	e.Int(x.ids.len())
	for _, b := range x.ids.blocks {
		for _, id := range b {
			e.Raw(id[:])
		}
	}
	for k := range x.versions.Len() {
		id, _ := s.At(k)
		encodeTrail(e, x.versions.At(k), x.versionMarks[id])
		r := x.rejected[id]
		e.Bool(r != nil)
		if r != nil {
			encodeTrail(e, &r.trail, r.marks)
		}
	}
}

// encodeTrail appends t: its header, its marks and its data.
func encodeTrail(e *snapshot.Encoder, t *trail, marks []mark) {
	e.Int(len(t.data))
	e.Varint(int64(t.partition))
	e.Int(int(t.n))
	e.Varint(t.last.offset)
	e.Varint(t.last.time)
	e.Int(len(marks))
	for _, m := range marks {
		e.Varint(m.before.offset)
		e.Varint(m.before.time)
		e.Int(m.at)
	}
	e.Raw(t.data)
}

// indexPart is an index as decodeIndexPart read it, before it is matched
// with the State it stands beside: the trails under the values' numbers and
// the ids in order, with the marks and rejections by number. Decoding it
// does not need the State, so it may run while the fold is decoded.
type indexPart struct {
	x        index // without versionMarks and rejected
	n        int
	sum      idSum // of the ids in order
	marks    map[int][]mark
	rejected map[int]*lookup
}

// decodeIndexPart reads what encode wrote. Its errors wrap
// snapshot.ErrCorrupt.
func decodeIndexPart(d *snapshot.Decoder) (*indexPart, error) {
	// Each value takes at least its id and seven bytes of trail.
	n := d.Int(16 + 7)
	raw := d.Raw(16 * n)
	if d.Err() != nil {
		return nil, d.Err()
	}
	p := &indexPart{n: n, marks: make(map[int][]mark), rejected: make(map[int]*lookup)}
	for i := 0; i < len(raw); i += 16 {
		if i > 0 && bytes.Compare(raw[i-16:i], raw[i:i+16]) >= 0 {
			d.Fail("value ids out of order at %d", i/16)
			return nil, d.Err()
		}
		p.sum.add(uuid.UUID(raw[i:]))
	}

	// The trails, their data still in d's bytes.
	type decoded struct {
		k          int // the value's number
		l          lookup
		rejections bool
	}
	trails := make([]decoded, 0, n)
	total := 0
	for k := range n {
		v := decodeTrail(d)
		trails = append(trails, decoded{k: k, l: v})
		total += len(v.data)
		if d.Bool() {
			r := decodeTrail(d)
			if r.partition == splitPartition {
				d.Fail("value number %d: rejections in no partition", k)
			}
			trails = append(trails, decoded{k: k, l: r, rejections: true})
			total += len(r.data)
		}
		if d.Err() != nil {
			return nil, d.Err()
		}
	}

	p.x.ids = idsOf(raw)
	data := make([]byte, 0, total)
	for i := range trails {
		t := &trails[i]
		if err := t.l.check(); err != "" {
			d.Fail("value number %d: %s", t.k, err)
			return nil, d.Err()
		}
		at := len(data)
		data = append(data, t.l.data...)
		t.l.data = data[at:len(data):len(data)]
		if t.rejections {
			r := t.l
			p.rejected[t.k] = &r
			continue
		}
		p.x.versions.Append(t.l.trail)
		if len(t.l.marks) > 0 {
			p.marks[t.k] = t.l.marks
		}
	}
	return p, nil
}

// attach matches the index with s, the State of the same snapshot's fold,
// and returns it: s must hold exactly the values whose ids the index has
// in order. Its errors wrap snapshot.ErrCorrupt.
func (p *indexPart) attach(s *domain.State) (index, error) {
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
	x.versionMarks = make(map[uuid.UUID][]mark, len(p.marks))
	x.rejected = make(map[uuid.UUID]*lookup, len(p.rejected))
	for k, m := range p.marks {
		id, _ := s.At(k)
		x.versionMarks[id] = m
	}
	for k, r := range p.rejected {
		id, _ := s.At(k)
		x.rejected[id] = r
	}
	return x, nil
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

// decodeTrail reads a trail; its data is a slice of d's bytes.
func decodeTrail(d *snapshot.Decoder) (l lookup) {
	size := d.Int(1)
	partition := d.Varint()
	n := d.Uvarint()
	l.last.offset = d.Varint()
	l.last.time = d.Varint()
	if partition < splitPartition || partition > math.MaxInt32 || n < 1 || n > math.MaxInt32 {
		d.Fail("a trail of %d entries in partition %d", n, partition)
		return lookup{}
	}
	l.partition, l.n = int32(partition), int32(n)
	marks := d.Int(3)
	if d.Err() == nil && marks != (int(n)-1)/markEvery {
		d.Fail("%d marks for %d entries", marks, n)
	}
	if d.Err() != nil {
		return lookup{}
	}
	if marks > 0 {
		l.marks = make([]mark, marks)
		for k := range l.marks {
			m := &l.marks[k]
			m.before.offset, m.before.time = d.Varint(), d.Varint()
			m.at = d.Int(1)
		}
	}
	l.data = d.Raw(size)
	return l
}

// check walks the data of l and reports what does not fit its header: the
// entries must be n, with increasing offsets, end at last, and the marks
// be those of entries markEvery, 2×markEvery... It returns "" when all
// fits.
func (l *lookup) check() string {
	var p point
	at := 0
	for j := range int(l.n) {
		if j > 0 && j%markEvery == 0 {
			if m := l.marks[j/markEvery-1]; m.before != p || m.at != at {
				return "a mark that is not where its entry is"
			}
		}
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
