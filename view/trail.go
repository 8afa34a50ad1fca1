package view

import (
	"encoding/binary"
	"iter"
	"sort"
)

// point is what the view keeps of one event to find it again: its offset
// in its partition, and a time (see trail).
type point struct {
	offset int64
	time   int64 // Unix nanoseconds
}

// markEvery is how many entries of a trail lie between two marks: a lookup
// decodes at most this many.
const markEvery = 128

// mark lets a lookup start decoding in the middle of a trail: the entry
// markEvery*k starts at byte at of the data, and before is the point of
// the entry before it.
type mark struct {
	before point
	at     int
}

// trail is a sequence of points with increasing offsets and non-decreasing
// times, packed: each entry is two uvarints, the offset's difference from
// the previous entry's (1 when the records are neighbours, a few bytes when
// other values' events lie between) and the time's. It is the view's index
// of one value's events: a few bytes an event (TestIndexMemory measures
// them), where the events themselves stay in the log.
//
// Times are kept as a running maximum, so that they never decrease even if
// a clock went back between two events: "the value at instant T" is then
// the value after the longest run of events, from the first, stamped at or
// before T, and a binary search finds it.
//
// A trail is 48 bytes beside its data, small enough to live in a map's
// slot (the view has one per value and updates it for every event: one
// cache miss fewer than behind a pointer). Its marks, which only trails
// longer than markEvery have, are kept apart by the owner: add hands them
// out, and a lookup takes them back.
type trail struct {
	data      []byte
	last      point
	n         int32
	partition int32 // of the offsets
}

// add appends an entry. Offsets must increase; a time earlier than the
// last one's counts as the last one's. When the entry is the first of a
// span of markEvery (but the first), add returns its mark, for the
// lookups.
func (t *trail) add(p point) (m mark, marked bool) {
	if t.n > 0 && t.n%markEvery == 0 {
		m, marked = mark{before: t.last, at: len(t.data)}, true
	}
	p.time = max(p.time, t.last.time)
	t.data = binary.AppendUvarint(t.data, uint64(p.offset-t.last.offset))
	t.data = binary.AppendUvarint(t.data, uint64(p.time-t.last.time))
	t.last = p
	t.n++
	return m, marked
}

// lookup is a trail with its marks, for reading.
type lookup struct {
	trail
	marks []mark // marks[k-1] is the mark of entry markEvery*k
}

// len is the number of entries.
func (l lookup) len() int { return int(l.n) }

// mark returns the mark of entry markEvery*k.
func (l lookup) mark(k int) mark {
	if k == 0 {
		return mark{}
	}
	return l.marks[k-1]
}

// from yields the entries from index i on, with their indexes.
func (l lookup) from(i int) iter.Seq2[int, point] {
	return func(yield func(int, point) bool) {
		k := min(i/markEvery, len(l.marks))
		m := l.mark(k)
		p, at := m.before, m.at
		for j := k * markEvery; j < l.len(); j++ {
			d, w := binary.Uvarint(l.data[at:])
			at += w
			p.offset += int64(d)
			d, w = binary.Uvarint(l.data[at:])
			at += w
			p.time += int64(d)
			if j >= i && !yield(j, p) {
				return
			}
		}
	}
}

// at returns entry i, which must exist.
func (l lookup) at(i int) point {
	for _, p := range l.from(i) {
		return p
	}
	panic("view: trail index out of range")
}

// seek returns the index of the first entry for which past is true, or
// len() if none is; past must be false, then true, along the trail (an
// offset or a time beyond some bound). It finds the span between two marks
// by binary search and decodes only that span.
func (l lookup) seek(past func(point) bool) int {
	// The first mark whose entry before it is already past: the answer is
	// at or before that entry, in the span of the mark before.
	k := sort.Search(len(l.marks), func(k int) bool { return past(l.marks[k].before) })
	for j, p := range l.from(k * markEvery) {
		if past(p) {
			return j
		}
	}
	return l.len()
}

// countUntil returns how many entries, from the first, have times at or
// before time.
func (l lookup) countUntil(time int64) int {
	return l.seek(func(p point) bool { return p.time > time })
}

// after returns the index of the first entry with an offset above offset.
func (l lookup) after(offset int64) int {
	return l.seek(func(p point) bool { return p.offset > offset })
}
