package decided

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"calculator/internal/memtest"
)

func newID(rng *rand.Rand) uuid.UUID {
	var id uuid.UUID
	for i := range id {
		id[i] = byte(rng.Uint32())
	}
	return id
}

// An id is forgotten only when it is both older than Age and more than Min
// newer ids are held, or when more than Max are held.
func TestDecidedWindow(t *testing.T) {
	d := New(Window{Age: time.Hour, Min: 3, Max: 6})
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	var ids []uuid.UUID
	add := func(at time.Time) {
		id := newID(rng)
		ids = append(ids, id)
		d.Add(id, at)
	}
	held := func(want ...int) {
		t.Helper()
		var got []int
		for i, id := range ids {
			if d.Has(id) {
				got = append(got, i)
			}
		}
		if !slices.Equal(got, want) || d.Len() != len(want) {
			t.Fatalf("held %v (Len %d), want %v", got, d.Len(), want)
		}
	}
	for range 5 {
		add(start) // 0..4 at the start
	}
	held(0, 1, 2, 3, 4)
	d.Advance(start.Add(2 * time.Hour)) // all out of Age: the 3 newest stay
	held(2, 3, 4)
	add(start.Add(2 * time.Hour)) // 5: 2 goes (older than Age, 3 newer held)
	held(3, 4, 5)
	for k := range 4 {
		add(start.Add(2*time.Hour + time.Duration(k)*time.Second)) // 6..9, inside Age
	}
	// 3 and 4 are out of Age and 5 newer are held; then 5..9 and one more
	// make 6 inside Age, and a seventh pushes the oldest out over Max.
	held(5, 6, 7, 8, 9)
	add(start.Add(2*time.Hour + 10*time.Second)) // 10
	held(5, 6, 7, 8, 9, 10)
	add(start.Add(2*time.Hour + 11*time.Second)) // 11: over Max
	held(6, 7, 8, 9, 10, 11)
	if forgotten, early := d.Forgotten(); early != 1 || forgotten != 6 {
		t.Fatalf("forgotten %d, early %d; want 6 and 1", forgotten, early)
	}
	// Adding a held id again changes nothing.
	d.Add(ids[6], start.Add(2*time.Hour+12*time.Second))
	held(6, 7, 8, 9, 10, 11)
	// The clock does not go back: an old timestamp does not bring anything back.
	d.Advance(start)
	held(6, 7, 8, 9, 10, 11)
}

// burstsAndPauses is the clock of the i-th add: in each period of adds, the
// first half 1 ms apart, the second half pause apart, so that the Age and
// the count bounds take turns.
func burstsAndPauses(now time.Time, i, period int, pause time.Duration) time.Time {
	if i%period < period/2 {
		return now.Add(time.Millisecond)
	}
	return now.Add(pause)
}

// TestDecidedIndex checks the ring and the index against a plain model
// through growth, wrap-around and deletions, with lookups of held,
// forgotten and unknown ids.
func TestDecidedIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const maxIDs = 5000
	d := New(Window{Age: time.Minute, Min: 100, Max: maxIDs})
	start := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	var model []uuid.UUID // the ids in the order they were added
	var times []time.Time
	now := start
	for i := range 60_000 {
		now = burstsAndPauses(now, i, 7000, 50*time.Millisecond)
		id := newID(rng)
		if rng.IntN(10) == 0 && len(model) > 0 {
			id = model[rng.IntN(len(model))] // a repeat, maybe forgotten
		}
		d.Add(id, now)
		if !slices.Contains(model, id) {
			model, times = append(model, id), append(times, now)
		}
		for len(model) > 0 && (len(model) > maxIDs || len(model) > 100 && times[0].Unix() < now.Unix()-60) {
			model, times = model[1:], times[1:]
		}
		if d.Len() != len(model) {
			t.Fatalf("after %d adds: Len %d, want %d", i+1, d.Len(), len(model))
		}
		if i%97 == 0 {
			for _, id := range model {
				if !d.Has(id) {
					t.Fatalf("after %d adds: %s is missing", i+1, id)
				}
			}
			if d.Has(newID(rng)) {
				t.Fatal("an id never added is held")
			}
		}
	}
}

// TestDecidedMemory reports the heap bytes an id costs in a window of
// 1,000,000 ids, and those of the map that held every id before.
func TestDecidedMemory(t *testing.T) {
	if testing.Short() || raceDetector {
		t.Skip("holds a million ids and measures the heap: not with -short or -race")
	}
	const n = 1_000_000
	rng := rand.New(rand.NewPCG(5, 6))
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = newID(rng)
	}
	start := time.Now()

	before := memtest.HeapInUse()
	d := New(Window{Min: n, Max: n})
	for i, id := range ids {
		d.Add(id, start.Add(time.Duration(i)*time.Millisecond))
	}
	perID := float64(memtest.HeapInUse()-before) / n
	runtime.KeepAlive(d)
	d = nil

	before = memtest.HeapInUse()
	m := make(map[uuid.UUID]struct{})
	for _, id := range ids {
		m[id] = struct{}{}
	}
	perMapID := float64(memtest.HeapInUse()-before) / n
	runtime.KeepAlive(m)

	t.Logf("1,000,000 decided ids: %.1f bytes an id (a map[uuid.UUID]struct{}: %.1f)", perID, perMapID)
	if perID > 64 {
		t.Errorf("%.1f bytes an id, want at most 64", perID)
	}
}

// BenchmarkDecided is a lookup and an add of a new id in a full window of
// 1,000,000 ids (each add forgets the oldest).
func BenchmarkDecided(b *testing.B) {
	const n = 1_000_000
	rng := rand.New(rand.NewPCG(7, 8))
	d := New(Window{Min: n, Max: n})
	start := time.Now()
	for range n {
		d.Add(newID(rng), start)
	}
	ids := make([]uuid.UUID, b.N)
	for i := range ids {
		ids[i] = newID(rng)
	}
	b.ResetTimer()
	for i := range b.N {
		if !d.Has(ids[i]) {
			d.Add(ids[i], start)
		}
	}
}

// cloneRing returns a Ring that holds what r holds, with its clock.
func cloneRing(r *Ring) *Ring {
	c := NewRing(r.Bounds())
	for id, at := range r.All() {
		c.Push(id, time.Unix(int64(at), 0))
	}
	c.Advance(time.Unix(int64(r.Clock()), 0))
	return c
}

// TestRingHoldsWhatTheSetHolds: a Ring given the Adds of a Set holds the
// Set's ids in order, and the Set rebuilt from it (FromRing) answers as the
// Set does, through both bounds.
func TestRingHoldsWhatTheSetHolds(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	w := Window{Age: time.Minute, Min: 100, Max: 3000}
	set, ring := New(w), NewRing(w)
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	var added []uuid.UUID
	// add gives the i-th id to the Set, the Ring and the others.
	add := func(i int, others ...*Set) {
		now = burstsAndPauses(now, i, 5000, 100*time.Millisecond)
		id := newID(rng)
		added = append(added, id)
		set.Add(id, now)
		ring.Push(id, now)
		for _, o := range others {
			o.Add(id, now)
		}
	}
	for i := range 20_000 {
		add(i)
		if i%1000 != 999 {
			continue
		}
		rebuilt := FromRing(cloneRing(ring))
		if set.Len() != ring.Len() || rebuilt.Len() != set.Len() {
			t.Fatalf("after %d: Set %d, Ring %d, FromRing %d ids", i+1, set.Len(), ring.Len(), rebuilt.Len())
		}
		for _, id := range added {
			if set.Has(id) != rebuilt.Has(id) {
				t.Fatalf("after %d: %s held by the Set %v, by FromRing %v", i+1, id, set.Has(id), rebuilt.Has(id))
			}
		}
		var inRing []uuid.UUID
		for id := range ring.All() {
			inRing = append(inRing, id)
		}
		if want := added[len(added)-set.Len():]; !slices.Equal(inRing, want) {
			t.Fatalf("after %d: the Ring does not hold the newest %d ids in order", i+1, set.Len())
		}
	}
	// A Set rebuilt from a Ring goes on as the Set does: adds, forgets.
	rebuilt := FromRing(cloneRing(ring))
	for i := range 5000 {
		add(i, rebuilt)
	}
	for _, id := range added {
		if set.Has(id) != rebuilt.Has(id) {
			t.Fatalf("after more adds: %s held by the Set %v, by the rebuilt Set %v", id, set.Has(id), rebuilt.Has(id))
		}
	}
	if rebuilt.Len() != set.Len() {
		t.Fatalf("after more adds: the rebuilt Set holds %d, the Set %d", rebuilt.Len(), set.Len())
	}
	set.Advance(now.Add(time.Hour))
	ring.Advance(now.Add(time.Hour))
	if set.Len() != 100 || ring.Len() != 100 || FromRing(cloneRing(ring)).Len() != 100 {
		t.Fatalf("after the Age: Set %d, Ring %d ids; want Min, 100", set.Len(), ring.Len())
	}
}

// BenchmarkFromRing rebuilds the Set of a full default window (5,000,000
// ids) from its Ring, as a processor starting from a snapshot does.
func BenchmarkFromRing(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	r := NewRing(Window{})
	start := time.Now()
	for range DefaultMax {
		r.Push(newID(rng), start)
	}
	for b.Loop() {
		FromRing(r.Clone())
	}
}
