package subscriptions

import (
	"github.com/google/uuid"

	"calculator/domain"
	"calculator/internal/idindex"
	"calculator/outcome"
)

// slot is the status of one command in the table, kept small: 48 bytes. A
// command with no flagOutcome is accepted. The value after the outcome is
// not kept: the Hub reads it when it is asked for (see Hub.withValue). The
// event id is not stored when it is domain.EventID(command), which it always
// is for events the processor wrote; rejection details are rare and live in
// extras, as do a version, partition or offset too large to pack.
type slot struct {
	command [16]byte
	value   [16]byte
	// The flags (high 8 bits) and the version of the value after the
	// outcome (low 56 bits).
	flagsVersion uint64
	// Where the outcome's event is in the events topic: the partition (high
	// 16 bits) and the offset (low 48 bits).
	event uint64
}

const (
	flagOutcome   uint8 = 1 << iota // the outcome is applied: succeeded, or rejected with flagRejected
	flagRejected                    // the outcome is a rejection; extras holds its reason and message
	flagExists                      // the value exists after the event
	flagForeignID                   // the event id is not domain.EventID(command); extras holds it
	flagWide                        // the version or the event's position did not fit in the slot; extras holds them
)

// What the slot's packed fields hold, at most.
const (
	versionBits   = 56
	offsetBits    = 48
	partitionBits = 64 - offsetBits
)

// extra is what a few statuses need beyond a slot.
type extra struct {
	reason  domain.Reason
	message string
	eventID uuid.UUID // when flagForeignID
	// when flagWide
	version int64
	event   position
}

func (s *slot) flags() uint8 { return uint8(s.flagsVersion >> versionBits) }

// hasExtra reports whether extras holds something for the slot.
func (s *slot) hasExtra() bool { return s.flags()&(flagRejected|flagForeignID|flagWide) != 0 }

// setOutcome records the outcome's flags, the version of the value after it
// and the event's position, in the slot or, when they do not fit (or are
// negative, which the view never gives), in x: it then adds flagWide.
func (s *slot) setOutcome(flags uint8, version int64, event position, x *extra) {
	if uint64(version) >= 1<<versionBits || uint32(event.partition) >= 1<<partitionBits || uint64(event.offset) >= 1<<offsetBits {
		flags |= flagWide
		x.version, x.event = version, event
		version, event = 0, position{}
	}
	s.flagsVersion = uint64(flags)<<versionBits | uint64(version)
	s.event = uint64(event.partition)<<offsetBits | uint64(event.offset)
}

// outcome returns what setOutcome recorded; x is the slot's extra when it
// has one.
func (s *slot) outcome(x *extra) (version int64, event position) {
	if s.flags()&flagWide != 0 {
		return x.version, x.event
	}
	return int64(s.flagsVersion & (1<<versionBits - 1)), position{int32(s.event >> offsetBits), int64(s.event & (1<<offsetBits - 1))}
}

// statusTable keeps the statuses of the most recent commands in a ring:
// when it is full, recording a new command forgets the oldest one (the first
// recorded). It is not safe for concurrent use; the Hub's mutex guards it.
type statusTable struct {
	capacity int
	slots    []slot                 // grows up to capacity, then is reused as a ring
	oldest   int                    // the slot to reuse next, once full
	index    idindex.Index[slotIDs] // of the slots' commands
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
		extras:   make(map[[16]byte]extra),
	}
}

// len is the number of statuses held.
func (t *statusTable) len() int { return len(t.slots) }

// find returns the slot of the command, if the table holds it. The Hub
// looks a command up once and hands the slot to acceptNew or completeAt:
// with a million statuses every lookup is a cache miss, and the replay at
// startup does one of each per command.
func (t *statusTable) find(id uuid.UUID) (i int, ok bool) { return t.index.Find(id, slotIDs{t.slots}) }

// slotIDs are the commands of the slots, for the index.
type slotIDs struct{ slots []slot }

func (s slotIDs) ID(i int) [16]byte { return s.slots[i].command }

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

// get returns the status of the command with the given id, and where the
// outcome's event is in the events topic. When the value exists after the
// outcome, the status has the value's Version then but not its Value, which
// the table does not keep (see Hub.withValue).
func (t *statusTable) get(id uuid.UUID) (outcome.CommandStatus, position, bool) {
	i, ok := t.find(id)
	if !ok {
		return outcome.CommandStatus{}, position{}, false
	}
	s := &t.slots[i]
	st := outcome.CommandStatus{CommandID: id, ValueID: s.value, Status: outcome.Accepted}
	flags := s.flags()
	if flags&flagOutcome == 0 {
		return st, position{}, true
	}
	st.Status = outcome.Succeeded
	if flags&flagRejected != 0 {
		st.Status = outcome.Rejected
	}
	eventID := domain.EventID(id)
	var x extra
	if s.hasExtra() {
		x = t.extras[id]
		st.Reason, st.Message = x.reason, x.message
		if flags&flagForeignID != 0 {
			eventID = x.eventID
		}
	}
	st.EventID = &eventID
	version, at := s.outcome(&x)
	if flags&flagExists != 0 {
		st.Version = version
	}
	return st, at, true
}

// accept records a command seen in the commands topic. It changes nothing
// if the command is already known (a command written twice, or one whose
// outcome was seen first).
func (t *statusTable) accept(id, valueID uuid.UUID) {
	if _, ok := t.find(id); ok {
		return
	}
	t.acceptNew(id, valueID)
}

// acceptNew is accept for a command that find did not find.
func (t *statusTable) acceptNew(id, valueID uuid.UUID) {
	t.add(id).value = valueID
}

// complete records the outcome of a command, applied to the view: a.Event
// and the version of the value it left behind. It reports whether it
// recorded it: not when the command has an outcome already.
func (t *statusTable) complete(a outcome.Applied) bool {
	i, ok := t.find(a.Event.ParentID)
	return t.completeAt(&a, i, ok)
}

// completeAt is complete with the result of find for the command.
func (t *statusTable) completeAt(a *outcome.Applied, i int, found bool) bool {
	id := a.Event.ParentID
	var s *slot
	if found {
		s = &t.slots[i]
		if s.flags()&flagOutcome != 0 {
			return false // one outcome per command; a repeat changes nothing
		}
	} else {
		s = t.add(id)
	}
	s.value = a.Event.ValueID
	flags := flagOutcome
	if a.Exists {
		flags |= flagExists
	}
	var x extra
	if a.Event.Action == domain.CommandRejected {
		flags |= flagRejected
		x.reason, x.message = a.Event.Reason, a.Event.Message
	}
	if a.Event.ID != domain.EventID(id) {
		flags |= flagForeignID
		x.eventID = a.Event.ID
	}
	s.setOutcome(flags, a.Value.Version, positionOf(&a.Record), &x)
	if s.hasExtra() {
		t.extras[id] = x
	}
	return true
}

// add returns a fresh slot for a command that is not in the table, taking
// the oldest one when the table is full.
func (t *statusTable) add(id uuid.UUID) *slot {
	var i int
	if len(t.slots) < t.capacity {
		if len(t.slots) == cap(t.slots) {
			// Grow by doubling, but never past capacity: a full table
			// holds exactly capacity slots. The index grows with it.
			grown := make([]slot, len(t.slots), min(t.capacity, max(2*cap(t.slots), 1024)))
			copy(grown, t.slots)
			t.slots = grown
			t.index.Build(cap(t.slots), len(t.slots), slotIDs{t.slots})
		}
		t.slots = append(t.slots, slot{})
		i = len(t.slots) - 1
	} else {
		i = t.oldest
		t.oldest = (t.oldest + 1) % t.capacity
		t.index.Remove(i, slotIDs{t.slots})
		if old := &t.slots[i]; old.hasExtra() {
			delete(t.extras, old.command)
		}
		t.evicted++
	}
	t.slots[i] = slot{command: id}
	t.index.Insert(id, i)
	return &t.slots[i]
}
