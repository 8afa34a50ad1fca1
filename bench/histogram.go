package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram counts durations in log-linear buckets: exact below 128 ns, then
// 64 buckets per power of two, so a percentile is off by less than 1.6%. Its
// memory does not grow with the number of samples, which keeps a long run
// bounded. Add is safe for concurrent use (one writer per histogram in
// practice, read by the progress line).
type histogram struct {
	counts [histBuckets]atomic.Uint64
}

const (
	histSubBits = 6
	histExact   = 1 << (histSubBits + 1) // 128: values below are their own bucket
	histBuckets = histExact + (64-histSubBits-1)*(1<<histSubBits)
)

func bucketOf(ns uint64) int {
	if ns < histExact {
		return int(ns)
	}
	shift := bits.Len64(ns) - histSubBits - 1 // >= 1
	top := ns >> shift                        // in [64, 128)
	return histExact + (shift-1)<<histSubBits + int(top-1<<histSubBits)
}

// bucketValue is the middle of bucket i, in nanoseconds.
func bucketValue(i int) uint64 {
	if i < histExact {
		return uint64(i)
	}
	i -= histExact
	shift := i>>histSubBits + 1
	top := uint64(i&(1<<histSubBits-1)) + 1<<histSubBits
	return top<<shift + 1<<(shift-1)
}

func (h *histogram) Add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))].Add(1)
}

// snapshot is a point-in-time copy of one or more histograms.
type snapshot [histBuckets]uint64

func (s *snapshot) add(h *histogram) {
	for i := range s {
		s[i] += h.counts[i].Load()
	}
}

// minus returns s - o (the samples taken between two snapshots).
func (s *snapshot) minus(o *snapshot) *snapshot {
	var d snapshot
	for i := range s {
		d[i] = s[i] - o[i]
	}
	return &d
}

func (s *snapshot) count() uint64 {
	var n uint64
	for _, c := range s {
		n += c
	}
	return n
}

// quantile returns the q-quantile (0 < q <= 1); 0 when there are no samples.
func (s *snapshot) quantile(q float64) time.Duration {
	n := s.count()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range s {
		seen += c
		if seen >= rank {
			return time.Duration(bucketValue(i))
		}
	}
	return time.Duration(bucketValue(histBuckets - 1))
}

// maxValue returns the largest sample's bucket.
func (s *snapshot) maxValue() time.Duration {
	for i := histBuckets - 1; i >= 0; i-- {
		if s[i] > 0 {
			return time.Duration(bucketValue(i))
		}
	}
	return 0
}
