package chunked

import "testing"

func TestSliceAppendAtClone(t *testing.T) {
	var s Slice[int]
	const n = 3*ChunkLen + 17
	var clone Slice[int]
	for i := range n {
		if k := s.Append(i * 3); k != i {
			t.Fatalf("Append returned %d, want %d", k, i)
		}
		if i == ChunkLen {
			clone = s.Clone()
		}
	}
	if s.Len() != n {
		t.Fatalf("Len = %d, want %d", s.Len(), n)
	}
	for i := range n {
		if *s.At(i) != i*3 {
			t.Fatalf("At(%d) = %d, want %d", i, *s.At(i), i*3)
		}
	}
	*s.At(3) = -1
	if clone.Len() != ChunkLen+1 || *clone.At(3) != 9 || *clone.At(ChunkLen) != 3*ChunkLen {
		t.Fatalf("the clone changed with the original, or does not hold what it was cloned with")
	}
	next := 0
	for k, v := range s.All() {
		if k != next || v != s.At(k) {
			t.Fatalf("All yields %d, want %d", k, next)
		}
		next++
	}
	if next != n {
		t.Fatalf("All yields %d elements, want %d", next, n)
	}
	if c := s.chunks[0]; cap(c) != ChunkLen {
		t.Fatalf("the first chunk holds %d, want %d once full", cap(c), ChunkLen)
	}
}
