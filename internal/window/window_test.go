package window

import (
	"slices"
	"testing"
	"time"
)

// A Ring holds the newest keys in order, forgets by age only past Min and
// by count past Max, tells drop before it forgets, and numbers keys in the
// order they came.
func TestRing(t *testing.T) {
	var dropped []int
	r := New(Bounds{Age: time.Minute, Min: 2, Max: 4}, func(k int) { dropped = append(dropped, k) })
	start := time.Unix(1_000_000, 0)
	held := func() []int {
		var keys []int
		for k := range r.All() {
			keys = append(keys, k)
		}
		return keys
	}
	for k := range 3 {
		if s := r.Push(k, start); s != uint64(k) {
			t.Fatalf("Push(%d) = sequence %d", k, s)
		}
	}
	r.Advance(start.Add(2 * time.Minute)) // all older than Age: Min stay
	if got := held(); !slices.Equal(got, []int{1, 2}) || !slices.Equal(dropped, []int{0}) {
		t.Fatalf("after the Age: held %v, dropped %v", got, dropped)
	}
	for k := 3; k < 8; k++ {
		r.Push(k, start.Add(2*time.Minute)) // 1 and 2 go for their age, then 3 for Max
	}
	if got := held(); !slices.Equal(got, []int{4, 5, 6, 7}) || r.First() != 4 || r.Key(5) != 5 {
		t.Fatalf("held %v, first %d, key 5 = %d", got, r.First(), r.Key(5))
	}
	if all, early := r.Forgotten(); all != 4 || early != 1 || !slices.Equal(dropped, []int{0, 1, 2, 3}) {
		t.Fatalf("forgotten %d (%v), early %d; want 0 to 3, and 3 early (for Max, within Age)", all, dropped, early)
	}
	r.Advance(start) // the clock does not go back
	if r.Clock() != Seconds(start.Add(2*time.Minute)) || r.Len() != 4 {
		t.Fatalf("clock %d, %d held", r.Clock(), r.Len())
	}
}
