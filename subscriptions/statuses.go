package subscriptions

import (
	"github.com/google/uuid"

	"calculator/domain"
)

// DefaultCapacity is how many command statuses are kept by default: at least
// the most recent 1,000,000 (2^20).
const DefaultCapacity = 1 << 20

// Status names the states of a command.
const (
	StatusAccepted  = "accepted"
	StatusSucceeded = "succeeded"
	StatusRejected  = "rejected"
)

// commandStatus is what is known of one command, as handed out by the table.
type commandStatus struct {
	CommandID uuid.UUID
	ValueID   uuid.UUID
	State     string // StatusAccepted, StatusSucceeded or StatusRejected

	// Set once the outcome is applied (State is not StatusAccepted).
	EventID        uuid.UUID
	EventPartition int32
	EventOffset    int64
	Reason         domain.Reason // rejections only
	Message        string        // rejections only
	Value          domain.Value  // the value after the event
	Exists         bool          // whether the value exists after the event
}

// finished reports whether the command's outcome has been applied.
func (s commandStatus) finished() bool { return s.State != StatusAccepted }

// status is one slot of the table, kept small: 64 bytes. The event id is not
// stored when it is domain.EventID(command), which it always is for events
// the processor wrote; rejection details are rare and live in extras.
type status struct {
	command        [16]byte
	value          [16]byte
	result         float64
	version        int64
	eventOffset    int64
	eventPartition int32
	state          uint8
	flags          uint8
}

const (
	stateAccepted uint8 = iota + 1
	stateSucceeded
	stateRejected
)

const (
	flagExists    uint8 = 1 << iota // the value exists after the event
	flagExtra                       // extras holds the reason, message or a foreign event id
	flagForeignID                   // the event id is not domain.EventID(command)
)

// extra is what a few statuses need beyond a slot.
type extra struct {
	reason  domain.Reason
	message string
	eventID uuid.UUID // when flagForeignID
}

// statusTable keeps the statuses of the most recent commands in a ring:
// when it is full, recording a new command forgets the oldest one (the first
// recorded). It is not safe for concurrent use; the Hub's mutex guards it.
type statusTable struct {
	capacity int
	slots    []status // grows up to capacity, then is reused as a ring
	oldest   int      // the slot to reuse next, once full
	index    map[[16]byte]uint32
	extras   map[[16]byte]extra
	evicted  int64
}

func newStatusTable(capacity int) *statusTable {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	return &statusTable{
		capacity: capacity,
		index:    make(map[[16]byte]uint32),
		extras:   make(map[[16]byte]extra),
	}
}

// len is the number of statuses held.
func (t *statusTable) len() int { return len(t.slots) }

// find returns the slot of the command, if the table holds it. The Hub
// looks a command up once and hands the slot to acceptNew or completeAt:
// with a million statuses every lookup is a cache miss, and the replay at
// startup does one of each per command.
func (t *statusTable) find(id uuid.UUID) (slot int, ok bool) {
	i, ok := t.index[id]
	return int(i), ok
}

// findNext is find with a guess first: the slot after the one this cursor
// found last. Commands and outcomes each arrive in log order and the table
// fills its slots in that order, so during a replay the guess is nearly
// always right and spares the index lookup. A slot holds exactly the command
// the index maps to it, so a right guess is the index's answer.
func (t *statusTable) findNext(id uuid.UUID, cursor *int) (slot int, ok bool) {
	if i := *cursor; i < len(t.slots) && t.slots[i].command == id {
		*cursor = (i + 1) % t.capacity
		return i, true
	}
	if slot, ok = t.find(id); ok {
		*cursor = (slot + 1) % t.capacity
	}
	return slot, ok
}

// get returns the status of the command with the given id.
func (t *statusTable) get(id uuid.UUID) (commandStatus, bool) {
	i, ok := t.index[id]
	if !ok {
		return commandStatus{}, false
	}
	s := &t.slots[i]
	out := commandStatus{CommandID: id, ValueID: s.value, State: StatusAccepted}
	if s.state == stateAccepted {
		return out, true
	}
	out.State = StatusSucceeded
	if s.state == stateRejected {
		out.State = StatusRejected
	}
	out.EventID = domain.EventID(id)
	out.EventPartition, out.EventOffset = s.eventPartition, s.eventOffset
	out.Value = domain.Value{Value: s.result, Version: s.version}
	out.Exists = s.flags&flagExists != 0
	if s.flags&flagExtra != 0 {
		x := t.extras[id]
		out.Reason, out.Message = x.reason, x.message
		if s.flags&flagForeignID != 0 {
			out.EventID = x.eventID
		}
	}
	return out, true
}

// accept records a command seen in the commands topic. It changes nothing
// if the command is already known (a command written twice, or one whose
// outcome was seen first).
func (t *statusTable) accept(id, valueID uuid.UUID) {
	if _, ok := t.index[id]; ok {
		return
	}
	t.acceptNew(id, valueID)
}

// acceptNew is accept for a command that find did not find.
func (t *statusTable) acceptNew(id, valueID uuid.UUID) {
	s := t.slot(id)
	s.value = valueID
	s.state = stateAccepted
}

// complete records the outcome of a command, applied to the view: a.Event
// and the value it left behind.
func (t *statusTable) complete(a Applied) {
	i, ok := t.find(a.Event.ParentID)
	t.completeAt(&a, i, ok)
}

// completeAt is complete with the result of find for the command.
func (t *statusTable) completeAt(a *Applied, i int, found bool) {
	id := a.Event.ParentID
	var s *status
	if found {
		s = &t.slots[i]
		if s.state != stateAccepted {
			return // one outcome per command; a repeat changes nothing
		}
	} else {
		s = t.slot(id)
	}
	s.value = a.Event.ValueID
	s.state = stateSucceeded
	if a.Event.Action == domain.CommandRejected {
		s.state = stateRejected
	}
	s.result, s.version = a.Value.Value, a.Value.Version
	s.eventPartition, s.eventOffset = a.Record.Partition, a.Record.Offset
	s.flags = 0
	if a.Exists {
		s.flags |= flagExists
	}
	var x extra
	if a.Event.Action == domain.CommandRejected {
		s.flags |= flagExtra
		x.reason, x.message = a.Event.Reason, a.Event.Message
	}
	if a.Event.ID != domain.EventID(id) {
		s.flags |= flagExtra | flagForeignID
		x.eventID = a.Event.ID
	}
	if s.flags&flagExtra != 0 {
		t.extras[id] = x
	}
}

// slot returns a fresh slot for a command that is not in the table, taking
// the oldest one when the table is full.
func (t *statusTable) slot(id uuid.UUID) *status {
	var i int
	if len(t.slots) < t.capacity {
		if len(t.slots) == cap(t.slots) {
			// Grow by doubling, but never past capacity: a full table
			// holds exactly capacity slots.
			grown := make([]status, len(t.slots), min(t.capacity, max(2*cap(t.slots), 1024)))
			copy(grown, t.slots)
			t.slots = grown
		}
		t.slots = append(t.slots, status{})
		i = len(t.slots) - 1
	} else {
		i = t.oldest
		t.oldest = (t.oldest + 1) % t.capacity
		old := &t.slots[i]
		delete(t.index, old.command)
		if old.flags&flagExtra != 0 {
			delete(t.extras, old.command)
		}
		t.evicted++
	}
	t.index[id] = uint32(i)
	t.slots[i] = status{command: id}
	return &t.slots[i]
}
