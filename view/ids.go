package view

import (
	"bytes"
	"slices"
	"sort"

	"github.com/google/uuid"
)

// blockSize bounds the ids of one block of sortedIDs: an insertion moves
// at most this many ids (16 bytes each) and a split copies half of them.
const blockSize = 512

// sortedIDs is the value ids in order, for GET /values: a list of sorted
// blocks, each at most blockSize ids, and each block's ids all below the
// next block's. The view inserts an id once, when the value is created, at
// O(log n) comparisons and a copy of at most blockSize ids; a page is a
// binary search and a walk. Ids compare as bytes, which is the order of
// their text form too.
type sortedIDs struct {
	blocks [][]uuid.UUID
	n      int
}

func compareIDs(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }

// block returns the index of the block where id belongs: the last one whose
// first id is not above it (the first block when id is below all).
func (s *sortedIDs) block(id uuid.UUID) int {
	i := sort.Search(len(s.blocks), func(i int) bool { return compareIDs(s.blocks[i][0], id) > 0 })
	return max(i-1, 0)
}

// insert adds id, if it is not there yet.
func (s *sortedIDs) insert(id uuid.UUID) {
	if len(s.blocks) == 0 {
		s.blocks = [][]uuid.UUID{append(make([]uuid.UUID, 0, blockSize), id)}
		s.n = 1
		return
	}
	i := s.block(id)
	b := s.blocks[i]
	j, found := slices.BinarySearchFunc(b, id, compareIDs)
	if found {
		return
	}
	s.n++
	if len(b) < blockSize {
		s.blocks[i] = slices.Insert(b, j, id)
		return
	}
	// Full: split in halves, each with room to grow to blockSize.
	upper := make([]uuid.UUID, blockSize/2, blockSize)
	copy(upper, b[blockSize/2:])
	lower := b[:blockSize/2]
	if j <= blockSize/2 {
		lower = slices.Insert(lower, j, id)
	} else {
		upper = slices.Insert(upper, j-blockSize/2, id)
	}
	s.blocks[i] = lower
	s.blocks = slices.Insert(s.blocks, i+1, upper)
}

// len is the number of ids.
func (s *sortedIDs) len() int { return s.n }

// page returns up to limit ids in order: from the first when after is nil,
// else from the first above *after.
func (s *sortedIDs) page(after *uuid.UUID, limit int) []uuid.UUID {
	out := make([]uuid.UUID, 0, min(limit, s.n))
	i, j := 0, 0
	if after != nil && len(s.blocks) > 0 {
		i = s.block(*after)
		var found bool
		j, found = slices.BinarySearchFunc(s.blocks[i], *after, compareIDs)
		if found {
			j++
		}
	}
	for ; i < len(s.blocks) && len(out) < limit; i, j = i+1, 0 {
		b := s.blocks[i][j:]
		out = append(out, b[:min(len(b), limit-len(out))]...)
	}
	return out
}
