package subscriptions

import (
	"github.com/google/uuid"

	"calculator/domain"
	"calculator/outcome"
)

// slot is the status of one command in the table, kept small: 72 bytes. A
// command with no flagOutcome is accepted. The event id is not stored when
// it is domain.EventID(command), which it always is for events the processor
// wrote; rejection details are rare and live in extras.
type slot struct {
	command        [16]byte
	value          [16]byte
	result         domain.Decimal
	version        int64
	eventOffset    int64
	eventPartition int32
	flags          uint8
}

const (
	flagOutcome   uint8 = 1 << iota // the outcome is applied: succeeded, or rejected with flagRejected
	flagRejected                    // the outcome is a rejection
	flagExists                      // the value exists after the event
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
	slots    []slot // grows up to capacity, then is reused as a ring
	oldest   int    // the slot to reuse next, once full
	index    map[[16]byte]uint32
	extras   map[[16]byte]extra
	evicted  int64

	// The guesses of findCommand and findOutcome: the slot after the one
	// each found last.
	nextCommand, nextOutcome int
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
func (t *statusTable) find(id uuid.UUID) (i int, ok bool) {
	j, ok := t.index[id]
	return int(j), ok
}

// findCommand is find for the commands read from the commands topic, and
// findOutcome for the commands of the outcomes the view applies. Commands
// and outcomes each arrive in log order and the table fills its slots in
// that order, so each guesses first the slot after the one it found last:
// during a replay the guess is nearly always right and spares the index
// lookup.
func (t *statusTable) findCommand(id uuid.UUID) (int, bool) { return t.findNext(id, &t.nextCommand) }

func (t *statusTable) findOutcome(id uuid.UUID) (int, bool) { return t.findNext(id, &t.nextOutcome) }

// findNext is find with a guess first. A slot holds exactly the command the
// index maps to it, so a right guess is the index's answer.
func (t *statusTable) findNext(id uuid.UUID, guess *int) (i int, ok bool) {
	if i := *guess; i < len(t.slots) && t.slots[i].command == id {
		*guess = (i + 1) % t.capacity
		return i, true
	}
	if i, ok = t.find(id); ok {
		*guess = (i + 1) % t.capacity
	}
	return i, ok
}

// get returns the status of the command with the given id, with the value
// after its outcome when the value exists, and where the outcome's event is
// in the events topic.
func (t *statusTable) get(id uuid.UUID) (outcome.CommandStatus, position, bool) {
	i, ok := t.index[id]
	if !ok {
		return outcome.CommandStatus{}, position{}, false
	}
	s := &t.slots[i]
	st := outcome.CommandStatus{CommandID: id, ValueID: s.value, Status: outcome.Accepted}
	if s.flags&flagOutcome == 0 {
		return st, position{}, true
	}
	st.Status = outcome.Succeeded
	if s.flags&flagRejected != 0 {
		st.Status = outcome.Rejected
	}
	eventID := domain.EventID(id)
	if s.flags&flagExtra != 0 {
		x := t.extras[id]
		st.Reason, st.Message = x.reason, x.message
		if s.flags&flagForeignID != 0 {
			eventID = x.eventID
		}
	}
	st.EventID = &eventID
	if s.flags&flagExists != 0 {
		result := s.result
		st.Value, st.Version = &result, s.version
	}
	return st, position{s.eventPartition, s.eventOffset}, true
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
	t.add(id).value = valueID
}

// complete records the outcome of a command, applied to the view: a.Event
// and the value it left behind.
func (t *statusTable) complete(a outcome.Applied) {
	i, ok := t.find(a.Event.ParentID)
	t.completeAt(&a, i, ok)
}

// completeAt is complete with the result of find for the command.
func (t *statusTable) completeAt(a *outcome.Applied, i int, found bool) {
	id := a.Event.ParentID
	var s *slot
	if found {
		s = &t.slots[i]
		if s.flags&flagOutcome != 0 {
			return // one outcome per command; a repeat changes nothing
		}
	} else {
		s = t.add(id)
	}
	s.value = a.Event.ValueID
	s.result, s.version = a.Value.Value, a.Value.Version
	s.eventPartition, s.eventOffset = a.Record.Partition, a.Record.Offset
	s.flags = flagOutcome
	if a.Exists {
		s.flags |= flagExists
	}
	var x extra
	if a.Event.Action == domain.CommandRejected {
		s.flags |= flagRejected | flagExtra
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

// add returns a fresh slot for a command that is not in the table, taking
// the oldest one when the table is full.
func (t *statusTable) add(id uuid.UUID) *slot {
	var i int
	if len(t.slots) < t.capacity {
		if len(t.slots) == cap(t.slots) {
			// Grow by doubling, but never past capacity: a full table
			// holds exactly capacity slots.
			grown := make([]slot, len(t.slots), min(t.capacity, max(2*cap(t.slots), 1024)))
			copy(grown, t.slots)
			t.slots = grown
		}
		t.slots = append(t.slots, slot{})
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
	t.slots[i] = slot{command: id}
	return &t.slots[i]
}
