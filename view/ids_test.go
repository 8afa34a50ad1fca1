package view

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/uuid"
)

// TestSortedIDsPages inserts ids in random order (some twice) and reads
// them back a page at a time, as GET /values does, against a sorted slice.
func TestSortedIDsPages(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, blockSize, blockSize + 1, 5*blockSize + 3} {
		var s sortedIDs
		var want []uuid.UUID
		for range n {
			var id uuid.UUID
			for i := range id {
				id[i] = byte(rng.UintN(256))
			}
			s.insert(id)
			want = append(want, id)
			if rng.IntN(10) == 0 {
				s.insert(want[rng.IntN(len(want))]) // a second insert changes nothing
			}
		}
		slices.SortFunc(want, compareIDs)
		if s.len() != n {
			t.Fatalf("n=%d: len %d", n, s.len())
		}
		for _, limit := range []int{1, 7, 100, 1000} {
			var got []uuid.UUID
			var after *uuid.UUID
			for {
				page := s.page(after, limit)
				if len(page) > limit {
					t.Fatalf("n=%d: a page of %d ids for limit %d", n, len(page), limit)
				}
				got = append(got, page...)
				if len(page) < limit {
					break
				}
				after = &page[len(page)-1]
			}
			if !slices.Equal(got, want) {
				t.Fatalf("n=%d limit=%d: paging gave %d ids, not the %d in order", n, limit, len(got), len(want))
			}
		}
		// After an id that is not in the set: from the next above it.
		if n > 0 {
			i := n / 2
			between := want[i]
			between[15]-- // just below want[i], above want[i-1] (random ids differ earlier)
			if page := s.page(&between, 1); len(page) != 1 || page[0] != want[i] {
				t.Fatalf("n=%d: page after %s = %v, want %s", n, between, page, want[i])
			}
		}
		if page := s.page(&uuid.UUID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 10); len(page) != 0 {
			t.Fatalf("n=%d: page after the largest id = %v", n, page)
		}
	}
}
