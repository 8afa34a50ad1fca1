package view

import (
	"fmt"

	"github.com/google/uuid"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/internal/chunked"
)

// index is what the view keeps, beside domain's State and under the same
// lock, to read each value's events again from the events log: their
// positions, not the events, and the value ids in order. Every event of a
// value is in one partition (the record key is the value id), so a
// partition and offsets say where each is.
//
// Its methods take the State it stands beside: the index keeps a value's
// trail under the value's number in that State (domain.State.Number), which
// spares a second table of ids.
type index struct {
	// versions holds each value's ValueCreated and ValueUpdated events,
	// the trail of value number k at k: entry i of a trail is version
	// i+1, with its timestamp (for ?at=). The trail's partition is the
	// value's, or splitPartition.
	versions chunked.Slice[trail]
	// versionBlocks are the refs of the stored blocks of the values with
	// at least markEvery versions.
	versionBlocks map[uuid.UUID][]blockRef
	// rejected holds the CommandRejected events concerning a value since
	// it was created, for the values that have some: their offsets (their
	// times are not used).
	rejected map[uuid.UUID]*rejections
	ids      sortedIDs
	// store holds the trails' completed blocks (blocks.go).
	store blockStore
}

// rejections is the trail of a value's rejections, with its blocks' refs.
type rejections struct {
	trail
	blocks []blockRef
}

// splitPartition is the partition of a value one of whose events came in
// another partition than its first: a foreign writer that does not key by
// value id. Its positions are then incomplete, and its history is not
// served.
const splitPartition = -1

func newIndex(store blockStore) index {
	return index{
		versionBlocks: make(map[uuid.UUID][]blockRef),
		rejected:      make(map[uuid.UUID]*rejections),
		store:         store,
	}
}

// add records an event that the view applied to its state; changed is what
// State.Apply said (false for a rejection). It reports whether the event
// made the value's history split (see splitPartition).
//
// A rejection concerning a value that does not exist (an update of an
// unknown id) belongs to no history: it is in the events log, and
// GET /commands/{id} tells it, but a history starts when its value is
// created.
//
// The state has already applied the event (and those after it in the
// batch); the index adds the trail of a value when it sees its
// ValueCreated, in the order the state numbered the values.
func (x *index) add(s *domain.State, rec *eventlog.Record, e *domain.Event, changed bool) (split bool) {
	k, inState := s.Number(e.ValueID)
	if !inState || k >= x.versions.Len() {
		if !changed || e.Action != domain.ValueCreated {
			return false
		}
		if next := x.versions.Append(trail{partition: rec.Partition}); next != k {
			// The state numbers values as they are created, and the
			// view adds each created value here in the same order.
			panic(fmt.Sprintf("view: value %s is number %d in the state and %d in the index", e.ValueID, k, next))
		}
		x.ids.insert(e.ValueID)
	}
	t := x.versions.At(k)
	if rec.Partition != t.partition {
		if t.partition == splitPartition {
			return false
		}
		t.partition = splitPartition
		return true
	}
	p := point{offset: rec.Offset, time: e.Timestamp.UnixNano()}
	switch {
	case changed:
		if ref, stored := t.add(p, x.store); stored {
			x.versionBlocks[e.ValueID] = append(x.versionBlocks[e.ValueID], ref)
		}
	case e.Action == domain.CommandRejected:
		r := x.rejected[e.ValueID]
		if r == nil {
			r = &rejections{trail: trail{partition: t.partition}}
			x.rejected[e.ValueID] = r
		}
		if ref, stored := r.add(point{offset: p.offset}, x.store); stored {
			r.blocks = append(r.blocks, ref)
		}
	}
	return false
}

// history returns the lookups of a value's versions and rejections (the
// latter empty without rejections), and whether the value exists. The
// caller holds the view's lock; the lookups may be read after it lets go
// of it.
func (x *index) history(s *domain.State, id uuid.UUID) (versions, rejected lookup, found bool) {
	k, found := s.Number(id)
	if !found || k >= x.versions.Len() {
		return versions, rejected, false
	}
	versions = lookup{trail: *x.versions.At(k), blocks: x.versionBlocks[id], store: x.store}
	rejected.store = x.store
	if r := x.rejected[id]; r != nil {
		rejected.trail, rejected.blocks = r.trail, r.blocks
	}
	return versions, rejected, true
}

// folded is what became of an event in the view's fold, for the index.
type folded uint8

const (
	notFolded     folded = iota // undecodable, or it did not fit the state
	foldedChanged               // it changed a value
	foldedSame                  // it changed nothing (a rejection)
)

func foldedAs(changed bool) folded {
	if changed {
		return foldedChanged
	}
	return foldedSame
}
