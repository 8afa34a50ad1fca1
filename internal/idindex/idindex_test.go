package idindex

import (
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"
)

// ring is a table as the statuses keep one: capacity entries reused oldest
// first, each holding an id.
type ring struct {
	ids    []uuid.UUID
	oldest int
	x      Index[ringIDs]
}

type ringIDs struct{ r *ring }

func (i ringIDs) ID(k int) [16]byte { return i.r.ids[k] }

// idList is the IDs of a slice.
type idList []uuid.UUID

func (l idList) ID(k int) [16]byte { return l[k] }

// add records id, taking the oldest entry once the ring is full.
func (r *ring) add(id uuid.UUID, capacity int) {
	if len(r.ids) < capacity {
		if !r.x.Fits(len(r.ids) + 1) {
			r.x.Build(2*len(r.ids)+1, len(r.ids), ringIDs{r})
		}
		r.ids = append(r.ids, id)
		r.x.Insert(id, len(r.ids)-1)
		return
	}
	k := r.oldest
	r.oldest = (r.oldest + 1) % capacity
	r.x.Remove(k, ringIDs{r})
	r.ids[k] = id
	r.x.Insert(id, k)
}

// check fails unless the index holds exactly one slot for each entry, each
// reachable from its home without an empty slot on the way (what linear
// probing needs, and what a wrong deletion breaks), and is at most half
// full.
func check[T IDs](t *testing.T, x *Index[T], n int, ids T) {
	t.Helper()
	if !x.Fits(n) {
		t.Fatalf("%d slots for %d entries: more than half full", len(x.slots), n)
	}
	mask := len(x.slots) - 1
	seen := make(map[uint32]bool)
	for i, s := range x.slots {
		if s == 0 {
			continue
		}
		if seen[s] || int(s) > n {
			t.Fatalf("slot %d holds entry %d, which is held twice or does not exist", i, s-1)
		}
		seen[s] = true
		for p := x.home(ids.ID(int(s - 1))); p != i; p = (p + 1) & mask {
			if x.slots[p] == 0 {
				t.Fatalf("entry %d at slot %d: slot %d on the way from its home is empty", s-1, i, p)
			}
		}
	}
	if len(seen) != n {
		t.Fatalf("%d entries indexed, want %d", len(seen), n)
	}
}

// The index answers as a map would while a ring of entries wraps many
// times, at sizes where the probe runs are long relative to the index and
// where they wrap around its end: lookups of held ids find their entry, of
// removed ones and strangers nothing.
func TestIndexAgreesWithAMap(t *testing.T) {
	for _, capacity := range []int{1, 2, 3, 5, 8, 13, 100, 1500} {
		rng := rand.New(rand.NewPCG(uint64(capacity), 7))
		r := &ring{}
		held := make(map[uuid.UUID]int) // id → entry, as the index should have them
		var order []uuid.UUID           // every id added, oldest first
		for i := range 40 * capacity {
			id := uuid.New()
			r.add(id, capacity)
			if len(order) >= capacity {
				delete(held, order[len(order)-capacity])
			}
			order = append(order, id)
			held[id] = (len(order) - 1) % capacity
			for range 4 {
				var probe uuid.UUID
				switch rng.IntN(3) {
				case 0: // a held one
					probe = order[len(order)-1-rng.IntN(min(capacity, len(order)))]
				case 1: // any, perhaps removed
					probe = order[rng.IntN(len(order))]
				default:
					probe = uuid.New()
				}
				want, wantOK := held[probe]
				if got, ok := r.x.Find(probe, ringIDs{r}); ok != wantOK || got != want && wantOK {
					t.Fatalf("capacity %d, after %d ids: Find = %d, %v; want %d, %v", capacity, i+1, got, ok, want, wantOK)
				}
			}
			if i%7 == 0 || capacity < 20 {
				check(t, &r.x, len(r.ids), ringIDs{r})
			}
		}
	}
}

// Remove shifts back the slots after the hole, also across the end of the
// index: an index half full (8 entries in 16 slots) has long runs, and
// often one that wraps around the end. Removing its entries one by one, in
// a random order, leaves each of the others findable.
func TestRemove(t *testing.T) {
	wrapped := 0
	for range 200 {
		r := &ring{}
		for range 8 {
			r.add(uuid.New(), 8)
		}
		check(t, &r.x, 8, ringIDs{r})
		if s := r.x.slots; s[0] != 0 && s[len(s)-1] != 0 {
			wrapped++
		}
		removed := make(map[int]bool)
		for _, k := range rand.Perm(8) {
			r.x.Remove(k, ringIDs{r})
			removed[k] = true
			if _, ok := r.x.Find(r.ids[k], ringIDs{r}); ok {
				t.Fatalf("entry %d found after its removal", k)
			}
			for j, id := range r.ids {
				if got, ok := r.x.Find(id, ringIDs{r}); !removed[j] && (!ok || got != j) {
					t.Fatalf("entry %d: Find = %d, %v after removing entry %d", j, got, ok, k)
				}
			}
		}
		for i, s := range r.x.slots {
			if s != 0 {
				t.Fatalf("slot %d still holds entry %d after every removal", i, s-1)
			}
		}
	}
	if wrapped == 0 {
		t.Fatal("no run wrapped around the end of the index")
	}
}

// BuildDistinct indexes every entry, whatever their count, and reports an
// id held twice, wherever the two entries are; Build indexes them all, and
// finds the first of two with the same id until it is removed.
func TestBuild(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 8, 9, 1000, 70_000} {
		ids := make([]uuid.UUID, n)
		for i := range ids {
			ids[i] = uuid.New()
		}
		var x Index[idList]
		if _, ok := x.BuildDistinct(n, n, idList(ids)); !ok {
			t.Fatalf("%d entries: an id twice", n)
		}
		check(t, &x, n, idList(ids))
		for k, id := range ids {
			if got, ok := x.Find(id, idList(ids)); !ok || got != k {
				t.Fatalf("%d entries: Find(entry %d) = %d, %v", n, k, got, ok)
			}
		}
		if n < 2 {
			continue
		}
		for _, pair := range [][2]int{{0, n - 1}, {n / 2, n/2 - 1}, {1, 0}} {
			twice := append([]uuid.UUID(nil), ids...)
			twice[pair[1]] = twice[pair[0]]
			dup, ok := x.BuildDistinct(n, n, idList(twice))
			if ok || (dup != pair[0] && dup != pair[1]) {
				t.Fatalf("%d entries, entry %d's id at %d too: BuildDistinct = %d, %v", n, pair[0], pair[1], dup, ok)
			}
			x.Build(n, n, idList(twice))
			check(t, &x, n, idList(twice))
			first := min(pair[0], pair[1])
			if got, ok := x.Find(twice[first], idList(twice)); !ok || got != first {
				t.Fatalf("%d entries, entry %d's id at %d too: Find = %d, %v; want the first, %d", n, pair[0], pair[1], got, ok, first)
			}
			x.Remove(first, idList(twice))
			if got, ok := x.Find(twice[first], idList(twice)); !ok || got != max(pair[0], pair[1]) {
				t.Fatalf("%d entries, entry %d's id at %d too: after removing the first, Find = %d, %v", n, pair[0], pair[1], got, ok)
			}
			x.Remove(first, idList(twice)) // not held any more: nothing changes
			for k, id := range twice {
				if got, ok := x.Find(id, idList(twice)); k != first && (!ok || got != k && id != twice[first]) {
					t.Fatalf("%d entries, after removing entry %d: Find(entry %d) = %d, %v", n, first, k, got, ok)
				}
			}
		}
	}
}

// BenchmarkBuild rebuilds the index of 1,000,000 entries, as a restart
// from a snapshot does; BenchmarkInsert inserts them one by one.
func BenchmarkBuild(b *testing.B) {
	ids := make([]uuid.UUID, 1_000_000)
	for i := range ids {
		ids[i] = uuid.New()
	}
	b.Run("build", func(b *testing.B) {
		for b.Loop() {
			var x Index[idList]
			x.BuildDistinct(len(ids), len(ids), idList(ids))
		}
	})
	b.Run("insert", func(b *testing.B) {
		for b.Loop() {
			var x Index[idList]
			x.Build(len(ids), 0, idList(ids))
			for k, id := range ids {
				x.Insert(id, k)
			}
		}
	})
}
