// Package chunked is an append-only slice stored in fixed-size chunks: its
// elements never move, it never holds more than one partly filled chunk in
// reserve, and growing it never copies what it holds. The calculator keeps
// one element per value in such slices (domain.State's entries, the view's
// trails), where a plain slice's doubling would hold up to twice the memory
// at times and copy everything at each growth.
package chunked

const (
	chunkBits = 12
	// ChunkLen is the number of elements in a full chunk.
	ChunkLen  = 1 << chunkBits
	chunkMask = ChunkLen - 1
)

// Slice is an append-only sequence of T. The zero Slice is empty and ready
// to use. It is not safe for concurrent use.
type Slice[T any] struct {
	chunks [][]T
	n      int
}

// Len is the number of elements.
func (s *Slice[T]) Len() int { return s.n }

// At returns element k, which must be below Len. The pointer stays valid
// until the next Append (the first chunk grows from small by moving).
func (s *Slice[T]) At(k int) *T { return &s.chunks[k>>chunkBits][k&chunkMask] }

// Append adds v at the end and returns its index.
func (s *Slice[T]) Append(v T) int {
	last := len(s.chunks) - 1
	if last < 0 || len(s.chunks[last]) == ChunkLen {
		s.chunks = append(s.chunks, nil)
		last++
	}
	c := s.chunks[last]
	if len(c) == cap(c) {
		// The first chunk grows from small, so that a short Slice stays
		// small; the others are made whole at once.
		size := ChunkLen
		if last == 0 {
			size = min(ChunkLen, max(2*cap(c), 8))
		}
		c = append(make([]T, 0, size), c...)
	}
	s.chunks[last] = append(c, v)
	s.n++
	return s.n - 1
}

// Clone returns a copy of s (a shallow copy of each element).
func (s *Slice[T]) Clone() Slice[T] {
	c := Slice[T]{chunks: make([][]T, len(s.chunks)), n: s.n}
	for k, chunk := range s.chunks {
		c.chunks[k] = append(make([]T, 0, cap(chunk)), chunk...)
	}
	return c
}

// All yields the elements' indexes and pointers to them, in order.
func (s *Slice[T]) All() func(yield func(int, *T) bool) {
	return func(yield func(int, *T) bool) {
		k := 0
		for _, c := range s.chunks {
			for i := range c {
				if !yield(k, &c[i]) {
					return
				}
				k++
			}
		}
	}
}
