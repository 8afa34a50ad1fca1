package view

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"calculator/decided"
	"calculator/domain"
	"calculator/eventlog"
	"calculator/snapshot"
)

// Snapshots says when the view takes snapshots (package snapshot). The view
// is where they are taken because it folds the events topic and knows,
// batch by batch, exactly where it is in it: a snapshot is the view's state
// between two batches, with what a processor needs beside the values (its
// window of decided command ids and how far the commands were answered,
// which the view keeps for this alone) and whatever Take adds at the same
// moment (the subscriptions' statuses).
type Snapshots struct {
	// Every is how many events the view folds between two snapshots.
	Every int64
	// MinInterval is the least time between two snapshots.
	MinInterval time.Duration
	// Window is the processor's window of decided command ids.
	Window decided.Window
	// Take stores a snapshot. Run's goroutine calls it between two
	// batches, once the view is ready, with freeze, which Take calls at
	// once if it takes one: freeze copies the view's part as it is (the
	// view is paused meanwhile) and returns what encodes the copy, on any
	// goroutine, later. encode first makes the history file durable up to
	// where the copy refers to it; when it cannot, it returns the error and
	// the snapshot must not be written. Take returns false when it takes
	// none now (one is still being written), and the view asks again after
	// its next batch.
	Take func(freeze func() (encode func(e *snapshot.Encoder) error)) bool
}

// snapshots is the view's bookkeeping for snapshots, owned by Run's
// goroutine.
type snapshots struct {
	Snapshots
	fold  snapshot.Fold // as of the last batch
	since int64         // events folded since the last snapshot
	last  time.Time     // of the last snapshot (zero: none yet, the first is due once Every events were folded, the replay's included)
}

// WithSnapshots makes the view keep what a snapshot needs and take one
// when s says. It is called before Run.
func (v *View) WithSnapshots(s Snapshots) {
	v.snap = &snapshots{
		Snapshots: s,
		fold: snapshot.Fold{
			Position: eventlog.Offsets{}, Anchors: map[int32]snapshot.Anchor{},
			Resume: eventlog.Offsets{}, Decided: map[int32]*decided.Ring{},
		},
	}
}

// SnapshotPart is the view's own part of a snapshot (what freezeSnapshot's
// encoding wrote after the fold: the history index), decoded.
type SnapshotPart struct{ index *indexPart }

// DecodeSnapshotPart reads the view's own part of a snapshot. It does not
// need the fold, so it may run while the fold is decoded; Restore then
// matches the two.
func DecodeSnapshotPart(part *snapshot.Decoder) (*SnapshotPart, error) {
	p, err := decodeIndexPart(part)
	if err != nil {
		return nil, err
	}
	if err := part.Done(); err != nil {
		return nil, err
	}
	return &SnapshotPart{index: p}, nil
}

// Restore prepares the view to start from a snapshot: the fold and state
// that snapshot.DecodeFold read, and the view's own part of the same
// snapshot. It changes nothing until install is called (before Run, after
// WithSnapshots and WithHistoryFile), so that a snapshot whose other parts
// turn out unusable leaves the view as it was.
//
// It fails when the view's history file is not the one the snapshot's
// index refers to (another id: the file was started afresh since, or
// replaced), is shorter than it was at the snapshot, or its last block
// written before the snapshot does not read back whole: the caller then
// tries an older snapshot, or replays from offset 0, which starts the file
// afresh. Once installed, the view appends to the file after its end: what
// lies between the snapshot's end and the file's (blocks of the events
// after the snapshot, before the restart) is never referred to again, and
// goes at the next start without a snapshot.
func (v *View) Restore(fold *snapshot.Fold, state *domain.State, part *SnapshotPart) (install func(), err error) {
	x, err := part.index.attach(state, v.index.store)
	if err != nil {
		return nil, err
	}
	if err := part.index.checkStore(v.index.store); err != nil {
		return nil, err
	}
	return func() {
		v.state, v.index, v.from = state, x, maps.Clone(fold.Position)
		v.split, v.restored = fold.Split, true
		if v.snap != nil {
			v.snap.fold = *fold
			v.snap.fold.Position = maps.Clone(fold.Position)
		}
	}, nil
}

// observe notes what a snapshot needs of a batch: the decodable events'
// command ids and positions, each partition's last record and where the
// reader is.
func (s *snapshots) observe(b *eventlog.Batch, events []domain.Event, errs []error) {
	f := &s.fold
	for i := range b.Records {
		rec := &b.Records[i]
		if i+1 == len(b.Records) || b.Records[i+1].Partition != rec.Partition {
			f.Anchors[rec.Partition] = snapshot.AnchorOf(rec) // the last of its partition in the batch
		}
		if errs[i] != nil {
			continue
		}
		ring := f.Decided[rec.Partition]
		if ring == nil {
			ring = decided.NewRing(s.Window)
			f.Decided[rec.Partition] = ring
		}
		ring.Push(events[i].ParentID, events[i].Timestamp)
		if partition, offset, ok := eventlog.CommandPosition(rec.Headers); ok && offset >= f.Resume[partition] {
			f.Resume[partition] = offset + 1
		}
	}
	maps.Copy(f.Position, b.Next)
	s.since += int64(len(b.Records))
}

// due reports whether a snapshot is due.
func (s *snapshots) due() bool {
	return s.Every > 0 && s.since >= s.Every && time.Since(s.last) >= s.MinInterval
}

// takeSnapshot asks Take for a snapshot.
func (v *View) takeSnapshot() {
	if !v.snap.Take(v.freezeSnapshot) {
		return
	}
	v.snap.since, v.snap.last = 0, time.Now()
}

// freezeSnapshot copies what the view's part of a snapshot holds, and
// returns what writes it: the fold (with the values) and the index, each a
// section. Run's goroutine calls it (through Take): it is the only one that
// changes the state, so it reads it without the lock. A copy shares what
// only ever grows at its end (a trail's unfinished block and its refs,
// which the copy reads no further than its own length) and copies the
// rest. The index's stored blocks stay in the history file: the copy
// records the file's end, and encode fsyncs the file first, so that the
// snapshot, once written, refers only to durable blocks.
func (v *View) freezeSnapshot() (encode func(e *snapshot.Encoder) error) {
	fold := v.snap.fold.Clone()
	fold.Split = v.split
	state, x := v.state.Clone(), v.index.clone()
	sid, idErr := x.store.id()
	end := x.store.end()
	return func(e *snapshot.Encoder) error {
		if idErr != nil {
			return fmt.Errorf("the view's history file: %w", idErr)
		}
		if err := x.store.sync(); err != nil {
			return fmt.Errorf("the view's history file: %w", err)
		}
		e.Section(func(e *snapshot.Encoder) {
			fold.Encode(e, func(yield func(snapshot.Entry) bool) {
				k := 0
				for id, value := range state.All() {
					partition := int32(snapshot.SplitPartition)
					if k < x.versions.Len() {
						partition = x.versions.At(k).partition
					}
					if !yield(snapshot.Entry{ID: id, Partition: partition, Value: value}) {
						return
					}
					k++
				}
			})
		})
		e.Section(func(e *snapshot.Encoder) { x.encode(e, state, sid, end) })
		return nil
	}
}

// clone returns a copy of x for a snapshot to encode while x changes: the
// maps and the ids are copied; the trails' unfinished blocks and refs are
// shared, as they only grow at their end, past the copy's lengths (a
// completed block moves its trail to a new array).
func (x *index) clone() *index {
	c := &index{
		versions:      x.versions.Clone(),
		versionBlocks: maps.Clone(x.versionBlocks),
		rejected:      make(map[uuid.UUID]*rejections, len(x.rejected)),
		ids:           sortedIDs{blocks: make([][]uuid.UUID, len(x.ids.blocks)), n: x.ids.n},
		store:         x.store,
	}
	for id, r := range x.rejected {
		copied := *r
		c.rejected[id] = &copied
	}
	for i, b := range x.ids.blocks {
		c.ids.blocks[i] = slices.Clone(b)
	}
	return c
}
