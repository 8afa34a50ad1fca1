package main

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

func TestBucketsAreOrderedAndPrecise(t *testing.T) {
	for _, ns := range []uint64{0, 1, 127, 128, 129, 1000, 123456, 1 << 40, math.MaxInt64} {
		i := bucketOf(ns)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside [0, %d)", ns, i, histBuckets)
		}
		got := bucketValue(i)
		if diff := math.Abs(float64(got) - float64(ns)); diff > float64(ns)/64+1 {
			t.Errorf("bucketValue(bucketOf(%d)) = %d, off by %.0f (more than 1/64)", ns, got, diff)
		}
	}
	for ns := uint64(1); ns < 1<<30; ns = ns*3/2 + 1 {
		if bucketOf(ns) < bucketOf(ns-1) {
			t.Fatalf("bucketOf(%d) < bucketOf(%d)", ns, ns-1)
		}
	}
}

func TestQuantilesMatchSortedSamples(t *testing.T) {
	var h histogram
	samples := make([]time.Duration, 10000)
	for i := range samples {
		samples[i] = time.Duration(rand.ExpFloat64() * float64(time.Millisecond))
		h.Add(samples[i])
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	var s snapshot
	s.add(&h)
	for _, q := range []float64{0.5, 0.95, 0.99} {
		want := samples[int(q*float64(len(samples)))-1]
		got := s.quantile(q)
		if math.Abs(float64(got-want)) > float64(want)/30 {
			t.Errorf("quantile(%v) = %v, want about %v", q, got, want)
		}
	}
	if s.count() != uint64(len(samples)) {
		t.Errorf("count = %d, want %d", s.count(), len(samples))
	}
}
