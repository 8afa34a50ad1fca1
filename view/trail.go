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
// of one value's events: a few bytes an event (BenchmarkHistoryIndex
// measures them), where the events themselves stay in the log.
//
// Times are kept as a running maximum, so that they never decrease even if
// a clock went back between two events: "the value at instant T" is then
// the value after the longest run of events, from the first, stamped at or
// before T, and a binary search finds it.
//
// It is kept small (64 bytes beside its data) because the view has one or
// two per value: the marks, which only trails longer than markEvery have,
// are behind a pointer, and the partition of the offsets fills the word
// that the count leaves.
type trail struct {
	data      []byte
	last      point
	marks     *[]mark // (*marks)[k-1] is the mark of entry markEvery*k
	n         int32
	partition int32
}

// add appends an entry. Offsets must increase; a time earlier than the
// last one's counts as the last one's.
func (t *trail) add(p point) {
	if t.n > 0 && t.n%markEvery == 0 {
		if t.marks == nil {
			t.marks = new([]mark)
		}
		*t.marks = append(*t.marks, mark{before: t.last, at: len(t.data)})
	}
	p.time = max(p.time, t.last.time)
	if cap(t.data)-len(t.data) < 2*binary.MaxVarintLen64 {
		// Grow by a quarter rather than double, as append would: with a
		// hundred thousand short trails, the room held in reserve counts.
		grown := make([]byte, len(t.data), len(t.data)+len(t.data)/4+2*binary.MaxVarintLen64)
		copy(grown, t.data)
		t.data = grown
	}
	t.data = binary.AppendUvarint(t.data, uint64(p.offset-t.last.offset))
	t.data = binary.AppendUvarint(t.data, uint64(p.time-t.last.time))
	t.last = p
	t.n++
}

// len is the number of entries.
func (t *trail) len() int { return int(t.n) }

// nmarks is the number of marks.
func (t *trail) nmarks() int {
	if t.marks == nil {
		return 0
	}
	return len(*t.marks)
}

// mark returns the mark of entry markEvery*k.
func (t *trail) mark(k int) mark {
	if k == 0 {
		return mark{}
	}
	return (*t.marks)[k-1]
}

// from yields the entries from index i on, with their indexes.
func (t *trail) from(i int) iter.Seq2[int, point] {
	return func(yield func(int, point) bool) {
		k := min(i/markEvery, t.nmarks())
		m := t.mark(k)
		p, at := m.before, m.at
		for j := k * markEvery; j < t.len(); j++ {
			d, w := binary.Uvarint(t.data[at:])
			at += w
			p.offset += int64(d)
			d, w = binary.Uvarint(t.data[at:])
			at += w
			p.time += int64(d)
			if j >= i && !yield(j, p) {
				return
			}
		}
	}
}

// at returns entry i, which must exist.
func (t *trail) at(i int) point {
	for _, p := range t.from(i) {
		return p
	}
	panic("view: trail index out of range")
}

// seek returns the index of the first entry for which past is true, or
// len() if none is; past must be false, then true, along the trail (an
// offset or a time beyond some bound). It finds the span between two marks
// by binary search and decodes only that span.
func (t *trail) seek(past func(point) bool) int {
	// The first mark whose entry before it is already past: the answer is
	// at or before that entry, in the span of the mark before.
	k := sort.Search(t.nmarks(), func(k int) bool { return past((*t.marks)[k].before) })
	for j, p := range t.from(k * markEvery) {
		if past(p) {
			return j
		}
	}
	return t.len()
}

// countUntil returns how many entries, from the first, have times at or
// before time.
func (t *trail) countUntil(time int64) int {
	return t.seek(func(p point) bool { return p.time > time })
}

// after returns the index of the first entry with an offset above offset.
func (t *trail) after(offset int64) int {
	return t.seek(func(p point) bool { return p.offset > offset })
}
