package snapshot

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"iter"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"calculator/decided"
	"calculator/domain"
	"calculator/eventlog"
)

// Fold is the part of a snapshot that the processor and the view both
// rebuild from the events topic, as of a position in it: the values (each
// with the partition of its events), and for the processor the window of
// decided command ids and how far the commands were answered. The view
// takes it; a processor starts from it instead of from offset 0.
type Fold struct {
	// Position is where a reader of the events topic continues after the
	// snapshot: the offset to read next, per partition.
	Position eventlog.Offsets
	// Anchors name the last event folded in each partition, so that a
	// start can check that the events topic is still the one the snapshot
	// was taken of (Verify).
	Anchors map[int32]Anchor
	// Resume is, per commands partition, the offset after the last command
	// that an event before Position answers (the events' command-position
	// headers).
	Resume eventlog.Offsets
	// Decided is the window of decided command ids of each events
	// partition, as a processor that replayed the events up to Position
	// would hold it (before its clock moves to now).
	Decided map[int32]*decided.Ring
	// Split counts the values whose events are in more than one partition
	// (SplitPartition): written by hand, not keyed by value id.
	Split int
}

// Clone returns a copy of f, which changes independently of it.
func (f *Fold) Clone() *Fold {
	c := *f
	c.Position, c.Anchors, c.Resume = maps.Clone(f.Position), maps.Clone(f.Anchors), maps.Clone(f.Resume)
	c.Decided = make(map[int32]*decided.Ring, len(f.Decided))
	for p, r := range f.Decided {
		c.Decided[p] = r.Clone()
	}
	return &c
}

// SplitPartition is the partition of a value whose events are in more than
// one partition.
const SplitPartition = -1

// Anchor is an event by its offset and the CRC-32C of its value.
type Anchor struct {
	Offset int64
	Sum    uint32
}

// AnchorOf returns the anchor of rec.
func AnchorOf(rec *eventlog.Record) Anchor {
	return Anchor{Offset: rec.Offset, Sum: crc32.Checksum(rec.Value, castagnoli)}
}

// Entry is a value of a Fold, with the partition of its events.
type Entry struct {
	ID        uuid.UUID
	Partition int32
	Value     domain.Value
}

// Encode appends f and the values to e.
func (f *Fold) Encode(e *Encoder, values iter.Seq[Entry]) {
	e.Offsets(f.Position)
	e.Int(len(f.Anchors))
	for _, p := range slices.Sorted(maps.Keys(f.Anchors)) {
		e.Varint(int64(p))
		e.Varint(f.Anchors[p].Offset)
		e.Uint32(f.Anchors[p].Sum)
	}
	e.Offsets(f.Resume)
	e.Int(len(f.Decided))
	for _, p := range slices.Sorted(maps.Keys(f.Decided)) {
		r := f.Decided[p]
		e.Varint(int64(p))
		e.Uint32(r.Clock())
		e.Int(r.Len())
		for id, at := range r.All() {
			e.Raw(id[:])
			e.Uint32(at)
		}
	}
	e.Int(f.Split)
	e.Section(func(e *Encoder) {
		for v := range values {
			hi, lo := v.Value.Value.Bits()
			e.Raw(v.ID[:])
			e.Varint(int64(v.Partition))
			e.Uint64(hi)
			e.Uint64(lo)
			e.Uvarint(uint64(v.Value.Version))
		}
	})
}

// DecodeFold reads what Encode wrote. The values of the partitions keep
// accepts (every one when keep is nil) go into the returned State, and the
// windows of decided ids are rebuilt with the bounds w.
func DecodeFold(d *Decoder, w decided.Window, keep func(partition int32) bool) (*Fold, *domain.State, error) {
	f := &Fold{Position: d.Offsets(), Anchors: map[int32]Anchor{}, Decided: map[int32]*decided.Ring{}}
	for n := d.Int(3); n > 0 && d.Err() == nil; n-- {
		p, offset, sum := d.partition(), d.Varint(), d.Uint32()
		f.Anchors[p] = Anchor{Offset: offset, Sum: sum}
	}
	f.Resume = d.Offsets()
	for n := d.Int(3); n > 0 && d.Err() == nil; n-- {
		p, clock := d.partition(), d.Uint32()
		r := decided.NewRing(w)
		k := d.Int(20)
		r.Grow(k)
		for ; k > 0 && d.Err() == nil; k-- {
			id, at := uuid.UUID(d.UUID()), d.Uint32()
			r.Push(id, time.Unix(int64(at), 0))
		}
		r.Advance(time.Unix(int64(clock), 0))
		f.Decided[p] = r
	}
	f.Split = d.Int(1)
	values := d.Section()
	if err := d.Err(); err != nil {
		return nil, nil, err
	}
	state, err := domain.StateOf(func(yield func(uuid.UUID, domain.Value) bool) {
		for values.Remaining() > 0 && values.Err() == nil {
			id, p := uuid.UUID(values.UUID()), values.partition()
			hi, lo, version := values.Uint64(), values.Uint64(), values.Uvarint()
			if values.Err() != nil {
				return
			}
			value, err := domain.DecimalFromBits(hi, lo)
			if err != nil || version == 0 || version > 1<<62 {
				values.Fail("value %s: bad number or version %d", id, version)
				return
			}
			if (keep == nil || keep(p)) && !yield(id, domain.Value{Value: value, Version: int64(version)}) {
				return
			}
		}
	})
	if err := values.Err(); err != nil {
		return nil, nil, err
	}
	if err != nil {
		values.Fail("%v", err)
		return nil, nil, values.Err()
	}
	return f, state, nil
}

// partition reads a partition number (SplitPartition or above).
func (d *Decoder) partition() int32 {
	p := d.Varint()
	if p < SplitPartition || p > 1<<31-1 {
		d.Fail("bad partition %d", p)
		return 0
	}
	return int32(p)
}

// ErrStale is wrapped by Verify's error: the log is not the one the
// snapshot was taken of, or not all of it is there any more.
var ErrStale = errors.New("snapshot: the log is not the one the snapshot was taken of")

// Log is what Verify needs of the log.
type Log interface {
	End(ctx context.Context, topic string) (eventlog.Offsets, error)
	Read(ctx context.Context, topic string, partition int32, offsets []int64) ([]eventlog.Record, error)
}

// Verify checks that the events topic still holds what the fold was taken
// of, in the given partitions (every partition of the fold when nil): it
// reaches Position, and the anchor of each partition is the same event.
// A topic that was replaced, emptied or cut short fails with ErrStale.
func (f *Fold) Verify(ctx context.Context, log Log, topic string, partitions []int32) error {
	end, err := log.End(ctx, topic)
	if err != nil {
		return fmt.Errorf("snapshot: end of %s: %w", topic, err)
	}
	if partitions == nil {
		partitions = slices.Sorted(maps.Keys(f.Position))
	}
	for _, p := range partitions {
		if end[p] < f.Position[p] {
			return fmt.Errorf("%w: %s ends at offset %d in partition %d, the snapshot is at %d", ErrStale, topic, end[p], p, f.Position[p])
		}
		a, ok := f.Anchors[p]
		if !ok {
			continue
		}
		recs, err := log.Read(ctx, topic, p, []int64{a.Offset})
		if errors.Is(err, eventlog.ErrNoRecord) {
			return fmt.Errorf("%w: %s holds no event at offset %d of partition %d", ErrStale, topic, a.Offset, p)
		}
		if err != nil {
			return fmt.Errorf("snapshot: read %s: %w", topic, err)
		}
		if got := AnchorOf(&recs[0]); got != a {
			return fmt.Errorf("%w: the event at offset %d of partition %d of %s is another than the snapshot's", ErrStale, a.Offset, p, topic)
		}
	}
	return nil
}
