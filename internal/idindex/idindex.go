// Package idindex is an open-addressing hash index from 16-byte ids (UUIDs)
// to the numbers of the entries that hold them, for a table that keeps its
// entries, ids included, in a slice of its own: domain.State's values, the
// subscriptions' statuses. The index keeps no ids: an index entry is an
// entry number (below 2^32-1), and the table says which id that entry holds
// (IDs). At most half full, it costs at most 8 bytes an entry, where a Go
// map from id to number costs about 40, and a lookup probes about 1.5
// index entries.
//
// The hash is keyed per index, with random keys: most ids are random UUIDs,
// but clients choose some (a command's id follows from its
// Idempotency-Key), and must not be able to choose ids that collide and
// make the probes long. It is a multiply-fold of the id's halves with the
// keys (as in wyhash): a few cycles, where hash/maphash costs about 10 ns.
package idindex

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"slices"
)

// IDs is the table an Index stands beside: ID returns the id that entry k
// holds. The generic code calls it indirectly (a few nanoseconds a probe,
// measured against a hand-inlined index in domain.BenchmarkApply); a small
// struct value (a pointer or slice of the table's) passes without
// allocating.
type IDs interface{ ID(k int) [16]byte }

// Index is the index. The zero Index holds nothing and has no room: call
// Build first. It is not safe for concurrent use.
type Index[T IDs] struct {
	k0, k1 uint64   // the hash's keys
	slots  []uint32 // an entry number + 1; 0 is an empty slot. A power of two long
}

// Clone returns a copy of x, which changes independently of it.
func (x *Index[T]) Clone() Index[T] {
	return Index[T]{k0: x.k0, k1: x.k1, slots: slices.Clone(x.slots)}
}

// Fits reports whether the index has room for n entries (without being
// more than half full).
func (x *Index[T]) Fits(n int) bool { return 2*n <= len(x.slots) }

// home is the slot where the probe for id starts.
func (x *Index[T]) home(id [16]byte) int {
	hi, lo := bits.Mul64(binary.LittleEndian.Uint64(id[:8])^x.k0, binary.LittleEndian.Uint64(id[8:])^x.k1)
	return int((hi ^ lo) & uint64(len(x.slots)-1))
}

// Find returns the number of the entry that holds id, if one does.
func (x *Index[T]) Find(id [16]byte, ids T) (int, bool) {
	if len(x.slots) == 0 {
		return 0, false
	}
	mask := len(x.slots) - 1
	for i := x.home(id); x.slots[i] != 0; i = (i + 1) & mask {
		if k := int(x.slots[i] - 1); ids.ID(k) == id {
			return k, true
		}
	}
	return 0, false
}

// Insert adds entry k, which holds id, an id the index does not hold yet.
// The index must have room (Fits).
func (x *Index[T]) Insert(id [16]byte, k int) { x.place(x.home(id), k) }

// place puts entry k in the first empty slot from home on.
func (x *Index[T]) place(home, k int) {
	mask := len(x.slots) - 1
	i := home
	for x.slots[i] != 0 {
		i = (i + 1) & mask
	}
	x.slots[i] = uint32(k + 1)
}

// Remove takes out entry k (if the index holds it) before the table reuses
// it: ids must still give its id. It leaves no tombstone: each slot after
// it in its run that may move back into the hole does (backward-shift
// deletion), so that every entry stays reachable from its home without a
// gap on the way, and the probes stay as short as in an index that never
// had the removed entries.
func (x *Index[T]) Remove(k int, ids T) {
	mask := len(x.slots) - 1
	hole := x.home(ids.ID(k))
	for int(x.slots[hole]-1) != k {
		if x.slots[hole] == 0 {
			return // not held
		}
		hole = (hole + 1) & mask
	}
	for i := (hole + 1) & mask; x.slots[i] != 0; i = (i + 1) & mask {
		// The slot at i may fill the hole if the hole lies between its
		// home and i: it is then no further from i than the home is.
		home := x.home(ids.ID(int(x.slots[i] - 1)))
		if (i-home)&mask >= (i-hole)&mask {
			x.slots[hole] = x.slots[i]
			hole = i
		}
	}
	x.slots[hole] = 0
}

// Build makes the index anew, with room for capacity entries, and puts
// entries 0 to n-1 in it. Entries may hold the same id: Find then finds the
// one with the lowest number until it is removed. Build places them in the
// order of their home slots, so that it writes the index from one end to
// the other rather than at random: rebuilding the index of a million
// entries takes a few milliseconds and no cache miss an entry.
func (x *Index[T]) Build(capacity, n int, ids T) { x.build(capacity, n, ids, false) }

// BuildDistinct is Build for entries that must hold distinct ids. If two
// hold the same id, it reports one of them and false (two such have the
// same home, so they are neighbours in that order), and the index is then
// incomplete.
func (x *Index[T]) BuildDistinct(capacity, n int, ids T) (dup int, ok bool) {
	return x.build(capacity, n, ids, true)
}

func (x *Index[T]) build(capacity, n int, ids T, distinct bool) (dup int, ok bool) {
	size := 1
	for size < 2*max(capacity, n, 1) {
		size *= 2
	}
	if x.slots == nil {
		x.k0, x.k1 = rand.Uint64(), rand.Uint64()
	}
	x.slots = make([]uint32, size)
	// Each entry as its home (the high half) and number (the low half).
	order := make([]uint64, n)
	for k := range order {
		order[k] = uint64(x.home(ids.ID(k)))<<32 | uint64(k)
	}
	sortByHigh(order, bits.Len(uint(size-1)))
	for i, o := range order {
		k := int(uint32(o))
		if distinct && i > 0 && order[i-1]>>32 == o>>32 {
			id := ids.ID(k)
			for j := i - 1; j >= 0 && order[j]>>32 == o>>32; j-- {
				if ids.ID(int(uint32(order[j]))) == id {
					return k, false
				}
			}
		}
		x.place(int(o>>32), k)
	}
	return 0, true
}

// sortByHigh sorts keys by their high 32 bits, of which only the lowest
// width can be set: a least-significant-digit radix sort, stable, so that
// the low halves (the entry numbers) stay in order within a home.
func sortByHigh(keys []uint64, width int) {
	const digit = 11
	if len(keys) == 0 {
		return
	}
	buf := make([]uint64, len(keys))
	src, dst := keys, buf
	for shift := 32; shift < 32+width; shift += digit {
		var count [1<<digit + 1]int
		for _, k := range src {
			count[(k>>shift)&(1<<digit-1)+1]++
		}
		for i := 1; i < len(count); i++ {
			count[i] += count[i-1]
		}
		for _, k := range src {
			d := (k >> shift) & (1<<digit - 1)
			dst[count[d]] = k
			count[d]++
		}
		src, dst = dst, src
	}
	if &src[0] != &keys[0] {
		copy(keys, src)
	}
}
