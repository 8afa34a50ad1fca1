package view

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
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

// stores returns the block stores a test runs on: in memory, and a history
// file in a temporary directory.
func stores(t testing.TB) map[string]func() blockStore {
	return map[string]func() blockStore{
		"memory": func() blockStore { return newMemBlocks() },
		"file":   func() blockStore { return newFileStore(t) },
	}
}

// newFileStore returns a history file, started afresh, in a temporary
// directory; the test's cleanup closes it.
func newFileStore(t testing.TB) *fileBlocks {
	t.Helper()
	s, err := openFileBlocks(filepath.Join(t.TempDir(), "history.blocks"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.close() })
	if err := s.reset(); err != nil {
		t.Fatal(err)
	}
	return s
}

// mustAt, mustAfter and mustCountUntil are the lookups of a trail whose
// blocks must read back.
func mustAt(t testing.TB, l lookup, i int) point {
	t.Helper()
	p, err := l.at(i)
	if err != nil {
		t.Fatalf("at(%d): %v", i, err)
	}
	return p
}

func mustAfter(t testing.TB, l lookup, offset int64) int {
	t.Helper()
	i, err := l.after(offset)
	if err != nil {
		t.Fatalf("after(%d): %v", offset, err)
	}
	return i
}

func mustCountUntil(t testing.TB, l lookup, time int64) int {
	t.Helper()
	i, err := l.countUntil(time)
	if err != nil {
		t.Fatalf("countUntil(%d): %v", time, err)
	}
	return i
}

// TestTrailAgainstASlice checks every lookup of a trail against the same
// points in a plain slice, at sizes around the blocks, with its blocks in
// memory and in a history file.
func TestTrailAgainstASlice(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			store := open()
			for _, n := range []int{0, 1, 2, markEvery - 1, markEvery, markEvery + 1, 3*markEvery + 17, 4 * markEvery, 2000} {
				checkTrail(t, store, randomPoints(rng, n))
			}
		})
	}
}

// checkTrail adds points to a trail whose blocks go to store, and checks
// every lookup against the points.
func checkTrail(t *testing.T, store blockStore, points []point) {
	n := len(points)
	tr := lookup{store: store} // a trail with the refs it hands out
	want := make([]point, n)   // the points as the trail keeps them: times as a running maximum
	var maxTime int64
	for i, p := range points {
		if ref, stored := tr.add(p, store); stored {
			tr.blocks = append(tr.blocks, ref)
		}
		maxTime = max(maxTime, p.time)
		want[i] = point{offset: p.offset, time: maxTime}
	}
	if tr.len() != n || len(tr.blocks) != n/markEvery {
		t.Fatalf("n=%d: len %d, %d blocks stored", n, tr.len(), len(tr.blocks))
	}
	if len(tr.data) > maxBlockLen {
		t.Fatalf("n=%d: %d bytes in memory, more than a block", n, len(tr.data))
	}
	for i := range n {
		if got := mustAt(t, tr, i); got != want[i] {
			t.Fatalf("n=%d: at(%d) = %+v, want %+v", n, i, got, want[i])
		}
	}
	for _, start := range []int{0, 1, markEvery - 1, markEvery, n / 2, n - 1, n} {
		if start < 0 || start > n {
			continue
		}
		next := start
		err := tr.from(start, func(i int, p point) bool {
			if i != next || p != want[i] {
				t.Fatalf("n=%d: from(%d) yielded %d %+v, want %d %+v", n, start, i, p, next, want[next])
			}
			next++
			return true
		})
		if err != nil || next != n {
			t.Fatalf("n=%d: from(%d) stopped at %d: %v", n, start, next, err)
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
			if got, wantAfter := mustAfter(t, tr, o), upTo(o, func(p point) int64 { return p.offset }); got != wantAfter {
				t.Fatalf("n=%d: after(%d) = %d, want %d", n, o, got, wantAfter)
			}
		}
		for _, tm := range times {
			if got, wantCount := mustCountUntil(t, tr, tm), upTo(tm, func(p point) int64 { return p.time }); got != wantCount {
				t.Fatalf("n=%d: countUntil(%d) = %d, want %d", n, tm, got, wantCount)
			}
		}
	}
}

// A stored block damaged on disk, or missing, is an error for every lookup
// that needs it (a *blockError that says where), never a wrong point; the
// lookups that need only other blocks still answer.
func TestTrailDamagedBlock(t *testing.T) {
	store := newFileStore(t)
	tr := lookup{store: store}
	points := randomPoints(rand.New(rand.NewPCG(3, 4)), 3*markEvery+10)
	for _, p := range points {
		if ref, stored := tr.add(p, store); stored {
			tr.blocks = append(tr.blocks, ref)
		}
	}
	damaged := tr.blocks[1]
	flipByte(t, store.path, damaged.pos+5)
	isDamage := func(what string, err error) {
		t.Helper()
		var be *blockError
		if !errors.As(err, &be) || be.pos != damaged.pos || !errors.Is(err, errBlockChecksum) {
			t.Fatalf("%s: error %v, want the checksum error of the block at %d", what, err, damaged.pos)
		}
	}
	for _, i := range []int{markEvery, markEvery + 64, 2*markEvery - 1} {
		_, err := tr.at(i)
		isDamage(fmt.Sprintf("at(%d)", i), err)
	}
	_, err := tr.after(points[markEvery+3].offset)
	isDamage("after, in the damaged block", err)
	_, err = tr.countUntil(1 << 62)
	if err != nil {
		t.Fatalf("countUntil past the end, in the unfinished block: %v", err)
	}
	var yielded int
	err = tr.from(0, func(int, point) bool { yielded++; return true })
	isDamage("from(0)", err)
	if yielded != markEvery {
		t.Fatalf("from(0) yielded %d entries before the damaged block, want %d", yielded, markEvery)
	}
	for _, i := range []int{0, markEvery - 1, 2 * markEvery, 3*markEvery + 9} {
		if _, err := tr.at(i); err != nil {
			t.Fatalf("at(%d), in an undamaged block: %v", i, err)
		}
	}
	// Cut short: the blocks past the end are not there.
	if err := os.Truncate(store.path, tr.blocks[2].pos+3); err != nil {
		t.Fatal(err)
	}
	_, err = tr.at(2 * markEvery)
	if be := (*blockError)(nil); !errors.As(err, &be) || be.pos != tr.blocks[2].pos || !errors.Is(err, io.EOF) {
		t.Fatalf("at(%d) of a block cut short: %v, want a blockError at %d wrapping EOF", 2*markEvery, err, tr.blocks[2].pos)
	}
}

// flipByte flips a bit of the byte at pos of the file at path.
func flipByte(t *testing.T, path string, pos int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, pos); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, pos); err != nil {
		t.Fatal(err)
	}
}
