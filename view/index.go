package view

import (
	"github.com/google/uuid"

	"calculator/domain"
	"calculator/eventlog"
)

// history is what the view keeps of one value's events to read them again
// from the events log: their positions, not the events. Every event of a
// value is in one partition (the record key is the value id), so a
// partition and offsets say where each is.
type history struct {
	// versions are the ValueCreated and ValueUpdated events: entry i is
	// version i+1, with its timestamp (for ?at=). Its partition is the
	// value's, or split (when an event of the value came in another
	// partition, from a foreign writer that does not key by value id: the
	// positions are then incomplete, and the history is not served).
	versions trail
	// rejected are the CommandRejected events concerning the value since it
	// was created (nil when there are none): their offsets; their times
	// are not used.
	rejected *trail
}

// splitPartition is the partition of a value whose events are in several.
const splitPartition = -1

// partition is the partition of the value's events, or splitPartition.
func (h *history) partition() int32 { return h.versions.partition }

// index is every value's history and the value ids in order, kept by the
// view beside domain's State, under the view's lock.
type index struct {
	values map[uuid.UUID]*history
	ids    sortedIDs
}

func newIndex() index {
	return index{values: make(map[uuid.UUID]*history)}
}

// add records an event that the view applied to its state; changed is what
// State.Apply said (false for a rejection). It reports whether the event
// came in a partition other than the value's, which makes the value's
// history unavailable.
//
// A rejection concerning a value that does not exist (an update of an
// unknown id) belongs to no history: it is in the events log, and
// GET /commands/{id} tells it, but a history starts when its value is
// created.
func (x *index) add(rec *eventlog.Record, e *domain.Event, changed bool) (split bool) {
	h := x.values[e.ValueID]
	if h == nil {
		if !changed || e.Action != domain.ValueCreated {
			return false
		}
		h = &history{versions: trail{partition: rec.Partition}}
		x.values[e.ValueID] = h
		x.ids.insert(e.ValueID)
	}
	if p := h.versions.partition; rec.Partition != p {
		h.versions.partition = splitPartition
		return p != splitPartition
	}
	p := point{offset: rec.Offset, time: e.Timestamp.UnixNano()}
	switch {
	case changed:
		h.versions.add(p)
	case e.Action == domain.CommandRejected:
		if h.rejected == nil {
			h.rejected = new(trail)
		}
		h.rejected.add(point{offset: p.offset})
	}
	return false
}
