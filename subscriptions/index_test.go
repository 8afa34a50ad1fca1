package subscriptions

import (
	"testing"

	"github.com/google/uuid"
)

// The table finds its commands through the index while the ring wraps many
// times, at sizes where the index's probe runs are long relative to it and
// wrap around its end (internal/idindex tests the index itself): every
// command held is found in its slot, and the one just evicted is not.
func TestFindAcrossWraps(t *testing.T) {
	for _, capacity := range []int{1, 2, 3, 5, 8, 13, 100} {
		tab := newStatusTable(capacity)
		var order []uuid.UUID // every command recorded, oldest first
		for i := range 40 * capacity {
			id := uuid.New()
			if i%3 == 0 {
				tab.complete(created(i, id, uuid.New()))
			} else {
				tab.accept(id, uuid.New())
			}
			order = append(order, id)
			if len(order) > capacity {
				if _, ok := tab.find(order[len(order)-capacity-1]); ok {
					t.Fatalf("capacity %d, after %d commands: the evicted command is found", capacity, i+1)
				}
			}
			for k := max(0, len(order)-capacity); k < len(order); k++ {
				if slot, ok := tab.find(order[k]); !ok || slot != k%capacity {
					t.Fatalf("capacity %d, after %d commands: command %d found = %d, %v; want slot %d", capacity, i+1, k, slot, ok, k%capacity)
				}
			}
		}
		if tab.len() != capacity || tab.evicted != int64(39*capacity) {
			t.Errorf("capacity %d: %d statuses, %d evicted", capacity, tab.len(), tab.evicted)
		}
	}
}
