package subscriptions

import "hash/maphash"

// slotIndex finds the slot of a command in the table: an open-addressing
// hash table of slot numbers with linear probing, at most half full, so
// that it costs at most 8 bytes a status (a Go map of the same costs about
// 42) and a lookup probes about 1.5 entries.
//
// It keeps no ids of its own: an entry is a slot number, and the slot says
// which command it holds. So every method takes the table's slots, and the
// index holds exactly one entry for each of them.
//
// The hash is seeded per table: command ids are random UUIDs, but a client
// chooses the id of its commands through their Idempotency-Key, and must not
// be able to choose ids that collide and make the probes long.
type slotIndex struct {
	seed    maphash.Seed
	entries []uint32 // a slot number + 1; 0 is an empty entry. A power of two long
}

func newSlotIndex() slotIndex { return slotIndex{seed: maphash.MakeSeed()} }

// home is the entry where the probe for id starts.
func (x *slotIndex) home(id [16]byte) int {
	return int(maphash.Comparable(x.seed, id) & uint64(len(x.entries)-1))
}

// find returns the slot that holds id, if one does.
func (x *slotIndex) find(slots []slot, id [16]byte) (int, bool) {
	if len(x.entries) == 0 {
		return 0, false
	}
	mask := len(x.entries) - 1
	for e := x.home(id); x.entries[e] != 0; e = (e + 1) & mask {
		if i := int(x.entries[e] - 1); slots[i].command == id {
			return i, true
		}
	}
	return 0, false
}

// insert adds slot i, which holds a command the index does not hold yet.
// The index must have room: rebuild makes it for the slots' capacity.
func (x *slotIndex) insert(slots []slot, i int) {
	mask := len(x.entries) - 1
	e := x.home(slots[i].command)
	for x.entries[e] != 0 {
		e = (e + 1) & mask
	}
	x.entries[e] = uint32(i + 1)
}

// remove takes out slot i, which the index holds, before the slot is
// reused. It leaves no tombstone: each entry after it in its run that may
// move back into the hole does (backward-shift deletion), so that every
// entry stays reachable from its home without a gap on the way, and the
// probes stay as short as in a table that never had the removed entries.
func (x *slotIndex) remove(slots []slot, i int) {
	mask := len(x.entries) - 1
	hole := x.home(slots[i].command)
	for int(x.entries[hole]-1) != i {
		hole = (hole + 1) & mask
	}
	for e := (hole + 1) & mask; x.entries[e] != 0; e = (e + 1) & mask {
		// The entry at e may fill the hole if the hole lies between its
		// home and e: it is then no further from e than the home is.
		home := x.home(slots[x.entries[e]-1].command)
		if (e-home)&mask >= (e-hole)&mask {
			x.entries[hole] = x.entries[e]
			hole = e
		}
	}
	x.entries[hole] = 0
}

// rebuild sizes the index for up to n slots (at least twice as many
// entries, a power of two) and fills it with slots.
func (x *slotIndex) rebuild(slots []slot, n int) {
	size := 1
	for size < 2*n {
		size *= 2
	}
	x.entries = make([]uint32, size)
	for i := range slots {
		x.insert(slots, i)
	}
}
