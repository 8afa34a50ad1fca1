package snapshot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"calculator/eventlog"
)

// Encoder appends the parts of a snapshot to a byte slice: fixed-width
// integers little-endian, lengths and most numbers as varints. It cannot
// fail. Its buffer doubles when it is full (append would grow a large one
// by a quarter, and copy a snapshot of hundreds of megabytes many times).
type Encoder struct{ buf []byte }

// room makes room for n more bytes, doubling the buffer when it must grow.
func (e *Encoder) room(n int) {
	if cap(e.buf)-len(e.buf) < n {
		e.buf = slices.Grow(e.buf, max(n, cap(e.buf)))
	}
}

// Grow makes room for n more bytes, so that a part that knows its size
// roughly is not copied again and again as it grows.
func (e *Encoder) Grow(n int) { e.buf = slices.Grow(e.buf, n) }

// Bytes returns what was encoded so far.
func (e *Encoder) Bytes() []byte { return e.buf }

// Len is how many bytes were encoded so far.
func (e *Encoder) Len() int { return len(e.buf) }

// Uvarint appends v as an unsigned varint.
func (e *Encoder) Uvarint(v uint64) {
	e.room(binary.MaxVarintLen64)
	e.buf = binary.AppendUvarint(e.buf, v)
}

// Varint appends v as a signed (zig-zag) varint.
func (e *Encoder) Varint(v int64) {
	e.room(binary.MaxVarintLen64)
	e.buf = binary.AppendVarint(e.buf, v)
}

// Int appends a non-negative count or length.
func (e *Encoder) Int(n int) { e.Uvarint(uint64(n)) }

// Uint32 appends v in four bytes.
func (e *Encoder) Uint32(v uint32) {
	e.room(4)
	e.buf = binary.LittleEndian.AppendUint32(e.buf, v)
}

// Uint64 appends v in eight bytes.
func (e *Encoder) Uint64(v uint64) {
	e.room(8)
	e.buf = binary.LittleEndian.AppendUint64(e.buf, v)
}

// Raw appends b as it is; the reader must know its length.
func (e *Encoder) Raw(b []byte) {
	e.room(len(b))
	e.buf = append(e.buf, b...)
}

// String appends s with its length.
func (e *Encoder) String(s string) {
	e.Int(len(s))
	e.room(len(s))
	e.buf = append(e.buf, s...)
}

// Bool appends b as one byte.
func (e *Encoder) Bool(b bool) {
	var v byte
	if b {
		v = 1
	}
	e.room(1)
	e.buf = append(e.buf, v)
}

// Offsets appends o, its partitions in order.
func (e *Encoder) Offsets(o eventlog.Offsets) {
	e.Int(len(o))
	for _, p := range slices.Sorted(maps.Keys(o)) {
		e.Varint(int64(p))
		e.Varint(o[p])
	}
}

// Section appends what fn encodes, preceded by its length, so that a reader
// can skip it (Decoder.Section).
func (e *Encoder) Section(fn func(e *Encoder)) {
	// Reserve the longest length varint, encode, then move the content
	// back over the unused part of the reservation.
	start := len(e.buf)
	e.room(binary.MaxVarintLen64)
	e.buf = append(e.buf, make([]byte, binary.MaxVarintLen64)...)
	fn(e)
	n := len(e.buf) - start - binary.MaxVarintLen64
	var head [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(head[:], uint64(n))
	copy(e.buf[start:], head[:k])
	copy(e.buf[start+k:], e.buf[start+binary.MaxVarintLen64:])
	e.buf = e.buf[:start+k+n]
}

// ErrCorrupt is wrapped by every error of a Decoder: the bytes are not a
// snapshot part of the expected shape.
var ErrCorrupt = errors.New("snapshot: corrupt")

// Decoder reads what an Encoder wrote. Its first error sticks: after it,
// every read returns a zero value and Err returns that error, so a decoder
// checks Err once at the end of a part (and before acting on a count).
type Decoder struct {
	buf []byte
	off int
	err error
}

// NewDecoder returns a Decoder of b.
func NewDecoder(b []byte) *Decoder { return &Decoder{buf: b} }

// Err returns the first error.
func (d *Decoder) Err() error { return d.err }

// Fail records that the content does not make sense (when no error was
// recorded before).
func (d *Decoder) Fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: at byte %d: %s", ErrCorrupt, d.off, fmt.Sprintf(format, args...))
	}
}

// Remaining is how many bytes are left.
func (d *Decoder) Remaining() int { return len(d.buf) - d.off }

// Done fails unless every byte was read.
func (d *Decoder) Done() error {
	if d.err == nil && d.off != len(d.buf) {
		d.Fail("%d bytes left over", len(d.buf)-d.off)
	}
	return d.err
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 { return readVarint(d, binary.Uvarint) }

// Varint reads a signed varint.
func (d *Decoder) Varint() int64 { return readVarint(d, binary.Varint) }

func readVarint[T uint64 | int64](d *Decoder, read func([]byte) (T, int)) T {
	if d.err != nil {
		return 0
	}
	v, n := read(d.buf[d.off:])
	if n <= 0 {
		d.Fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

// Int reads a count or length that Int wrote. Each of the things it
// counts takes at least minSize bytes, so a count larger than the bytes
// left can hold is an error (and allocating for it is never tried).
func (d *Decoder) Int(minSize int) int {
	v := d.Uvarint()
	if d.err == nil && v > uint64(d.Remaining()/max(minSize, 1)) {
		d.Fail("count %d larger than the %d bytes left can hold", v, d.Remaining())
		return 0
	}
	return int(v)
}

// Uint32 reads four bytes.
func (d *Decoder) Uint32() uint32 {
	b := d.Raw(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

// Uint64 reads eight bytes.
func (d *Decoder) Uint64() uint64 {
	b := d.Raw(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// Raw returns the next n bytes (not a copy), or nil after an error.
func (d *Decoder) Raw(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > d.Remaining() {
		d.Fail("%d bytes wanted, %d left", n, d.Remaining())
		return nil
	}
	b := d.buf[d.off : d.off+n : d.off+n]
	d.off += n
	return b
}

// String reads what Encoder.String wrote.
func (d *Decoder) String() string { return string(d.Raw(d.Int(1))) }

// Bool reads what Encoder.Bool wrote.
func (d *Decoder) Bool() bool {
	b := d.Raw(1)
	switch {
	case b == nil:
		return false
	case b[0] > 1:
		d.Fail("bad bool %d", b[0])
	}
	return b != nil && b[0] == 1
}

// Offsets reads what Encoder.Offsets wrote.
func (d *Decoder) Offsets() eventlog.Offsets {
	n := d.Int(2)
	o := make(eventlog.Offsets, n)
	for range n {
		p, off := d.Varint(), d.Varint()
		if p < 0 || p > 1<<31-1 || off < 0 {
			d.Fail("bad offset %d in partition %d", off, p)
			return nil
		}
		o[int32(p)] = off
	}
	return o
}

// Section returns a Decoder of the next section (see Encoder.Section) and
// moves past it.
func (d *Decoder) Section() *Decoder {
	b := d.Raw(d.Int(1))
	if d.err != nil {
		return &Decoder{err: d.err}
	}
	return &Decoder{buf: b}
}

// UUID reads 16 raw bytes, as Encoder.Raw(id[:]) wrote them.
func (d *Decoder) UUID() (id [16]byte) {
	if b := d.Raw(16); b != nil {
		copy(id[:], b)
	}
	return id
}

// Restore decodes a part with decode, a component's two-step restore
// (which changes nothing until install is called), and installs it: what
// a test or a caller with one part to restore needs.
func Restore(decode func(*Decoder) (install func(), err error), d *Decoder) error {
	install, err := decode(d)
	if err != nil {
		return err
	}
	install()
	return nil
}
