package subscriptions

import (
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"
)

// indexed is the number of entries of the table's index.
func (t *statusTable) indexed() int {
	n := 0
	for _, e := range t.index.entries {
		if e != 0 {
			n++
		}
	}
	return n
}

// checkIndex fails unless the index holds exactly one entry for each slot,
// each reachable from its home without an empty entry on the way (what
// linear probing needs, and what a wrong deletion breaks), and it is at
// most half full.
func checkIndex(t *testing.T, tab *statusTable) {
	t.Helper()
	x := &tab.index
	if n := tab.indexed(); n != len(tab.slots) || 2*cap(tab.slots) > len(x.entries) {
		t.Fatalf("%d entries of %d for %d slots (room for %d)", n, len(x.entries), len(tab.slots), cap(tab.slots))
	}
	mask := len(x.entries) - 1
	seen := make(map[uint32]bool)
	for e, entry := range x.entries {
		if entry == 0 {
			continue
		}
		if seen[entry] {
			t.Fatalf("slot %d has two entries", entry-1)
		}
		seen[entry] = true
		for p := x.home(tab.slots[entry-1].command); p != e; p = (p + 1) & mask {
			if x.entries[p] == 0 {
				t.Fatalf("slot %d at entry %d: entry %d on the way from its home is empty", entry-1, e, p)
			}
		}
	}
}

// The index answers as a map would while the ring wraps many times, at
// sizes where the probe runs are long relative to the index, and where
// they wrap around its end: lookups of held commands find their slot, of
// evicted ones and strangers find nothing.
func TestIndexAgreesWithAMap(t *testing.T) {
	for _, capacity := range []int{1, 2, 3, 5, 8, 13, 100, 1500} {
		rng := rand.New(rand.NewPCG(uint64(capacity), 7))
		tab := newStatusTable(capacity)
		held := make(map[uuid.UUID]int) // command → slot, as the table should hold them
		var order []uuid.UUID           // every command recorded, oldest first
		for i := range 40 * capacity {
			id := uuid.New()
			if i%3 == 0 {
				tab.complete(created(i, id, uuid.New()))
			} else {
				tab.accept(id, uuid.New())
			}
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
				case 1: // any, perhaps evicted
					probe = order[rng.IntN(len(order))]
				default:
					probe = uuid.New()
				}
				wantSlot, wantOK := held[probe]
				if gotSlot, gotOK := tab.find(probe); gotOK != wantOK || gotSlot != wantSlot && wantOK {
					t.Fatalf("capacity %d, after %d commands: find = %d, %v; want %d, %v", capacity, i+1, gotSlot, gotOK, wantSlot, wantOK)
				}
			}
			if i%7 == 0 || capacity < 20 {
				checkIndex(t, tab)
			}
		}
		checkIndex(t, tab)
		if tab.len() != capacity || tab.evicted != int64(39*capacity) {
			t.Errorf("capacity %d: %d statuses, %d evicted", capacity, tab.len(), tab.evicted)
		}
	}
}

// remove shifts back the entries after the hole, also across the end of
// the index: an index half full (8 slots in 16 entries) has long runs, and
// often one that wraps around the end. Removing its slots one by one, in a
// random order, leaves each of the others findable.
func TestIndexRemove(t *testing.T) {
	wrapped := 0
	for range 200 {
		tab := newStatusTable(8)
		for range 8 {
			tab.accept(uuid.New(), uuid.New())
		}
		checkIndex(t, tab)
		if e := tab.index.entries; e[0] != 0 && e[len(e)-1] != 0 {
			wrapped++
		}
		removed := make(map[int]bool)
		for _, i := range rand.Perm(8) {
			id := tab.slots[i].command
			tab.index.remove(tab.slots, i)
			removed[i] = true
			if _, ok := tab.index.find(tab.slots, id); ok {
				t.Fatalf("slot %d found after its removal", i)
			}
			for j := range tab.slots {
				if got, ok := tab.index.find(tab.slots, tab.slots[j].command); !removed[j] && (!ok || got != j) {
					t.Fatalf("slot %d: find = %d, %v after removing slot %d", j, got, ok, i)
				}
			}
		}
		if n := tab.indexed(); n != 0 {
			t.Fatalf("%d entries left after removing every slot", n)
		}
	}
	if wrapped == 0 {
		t.Fatal("no run wrapped around the end of the index")
	}
}
