// Package memtest measures the live heap, for the tests that report what a
// structure costs in memory.
package memtest

import "runtime"

// HeapInUse is the live heap, in bytes, after two full collections (the
// second frees what finalizers of the first kept).
func HeapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
