package view

import (
	"math/rand/v2"
	"testing"
)

// randomPoints returns n points as a value's events could have them:
// increasing offsets (neighbours, or other values' events between) and
// times that mostly go forward, sometimes back (a clock set back).
func randomPoints(rng *rand.Rand, n int) []point {
	out := make([]point, n)
	offset, time := int64(rng.IntN(1000)), int64(1_700_000_000_000_000_000)
	for i := range out {
		offset += 1 + int64(rng.IntN(3))*int64(rng.IntN(5000))
		time += int64(rng.IntN(2_000_000_000)) - 100_000_000
		out[i] = point{offset: offset, time: time}
	}
	return out
}

// TestTrailAgainstASlice checks every lookup of a trail against the same
// points in a plain slice, at sizes around the marks.
func TestTrailAgainstASlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, markEvery - 1, markEvery, markEvery + 1, 3*markEvery + 17, 2000} {
		points := randomPoints(rng, n)
		var tr lookup            // a trail with the marks it hands out
		want := make([]point, n) // the points as the trail keeps them: times as a running maximum
		var maxTime int64
		for i, p := range points {
			if m, marked := tr.add(p); marked {
				tr.marks = append(tr.marks, m)
			}
			maxTime = max(maxTime, p.time)
			want[i] = point{offset: p.offset, time: maxTime}
		}
		if tr.len() != n {
			t.Fatalf("n=%d: len %d", n, tr.len())
		}
		for i := range n {
			if got := tr.at(i); got != want[i] {
				t.Fatalf("n=%d: at(%d) = %+v, want %+v", n, i, got, want[i])
			}
		}
		for _, start := range []int{0, 1, markEvery - 1, markEvery, n / 2, n - 1, n} {
			if start < 0 || start > n {
				continue
			}
			next := start
			for i, p := range tr.from(start) {
				if i != next || p != want[i] {
					t.Fatalf("n=%d: from(%d) yielded %d %+v, want %d %+v", n, start, i, p, next, want[next])
				}
				next++
			}
			if next != n {
				t.Fatalf("n=%d: from(%d) stopped at %d", n, start, next)
			}
		}
		// Lookups at, between and beyond the points.
		for i := -1; i <= n; i++ {
			var offsets, times []int64
			if i < 0 {
				offsets, times = []int64{-1, 0}, []int64{0, 1}
			} else if i < n {
				offsets = []int64{want[i].offset - 1, want[i].offset, want[i].offset + 1}
				times = []int64{want[i].time - 1, want[i].time, want[i].time + 1}
			} else {
				offsets, times = []int64{1 << 62}, []int64{1 << 62}
			}
			// upTo is how many points have a key (their offset or time) of
			// at most v: the answer after and countUntil must give.
			upTo := func(v int64, key func(point) int64) int {
				k := 0
				for k < n && key(want[k]) <= v {
					k++
				}
				return k
			}
			for _, o := range offsets {
				if got, wantAfter := tr.after(o), upTo(o, func(p point) int64 { return p.offset }); got != wantAfter {
					t.Fatalf("n=%d: after(%d) = %d, want %d", n, o, got, wantAfter)
				}
			}
			for _, tm := range times {
				if got, wantCount := tr.countUntil(tm), upTo(tm, func(p point) int64 { return p.time }); got != wantCount {
					t.Fatalf("n=%d: countUntil(%d) = %d, want %d", n, tm, got, wantCount)
				}
			}
		}
	}
}
