// Package domain is the calculator's model: the commands a client asks for, the
// events that record what happened, Decide (which turns a command into exactly
// one event) and State.Apply (which folds an event into the values).
//
// It is plain Go without I/O. The processor uses Decide and Apply to validate
// commands; the view uses Apply to answer queries. Both fold the same events
// with the same code, so they cannot disagree about what an event means.
//
// Values are Decimals, held exactly (decimal.go), computed with
// Operation.Apply (arith.go).
package domain

import (
	"crypto/sha1"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Action names a command or an event on the wire (the "action" field).
type Action string

// The commands (imperative) and events (past tense) of the calculator.
const (
	CreateValue     Action = "CreateValue"
	UpdateValue     Action = "UpdateValue"
	ValueCreated    Action = "ValueCreated"
	ValueUpdated    Action = "ValueUpdated"
	CommandRejected Action = "CommandRejected"
)

// Operation is what an UpdateValue does to a value with its operand.
type Operation string

// The operations, upper case as on the wire.
const (
	Add      Operation = "ADD"
	Subtract Operation = "SUBTRACT"
	Multiply Operation = "MULTIPLY"
	Divide   Operation = "DIVIDE"
)

// ParseOperation accepts an operation name in any case.
func ParseOperation(s string) (Operation, error) {
	switch op := Operation(strings.ToUpper(s)); op {
	case Add, Subtract, Multiply, Divide:
		return op, nil
	}
	return "", fmt.Errorf("unknown operation %q (want ADD, SUBTRACT, MULTIPLY or DIVIDE)", s)
}

// Reason says why a command was rejected.
type Reason string

// The rejection reasons of the contract.
const (
	ValueExists    Reason = "value_exists"
	ValueNotFound  Reason = "value_not_found"
	DivisionByZero Reason = "division_by_zero"
	Overflow       Reason = "overflow"  // the result's magnitude would be beyond MaxDecimal
	Underflow      Reason = "underflow" // the result would be nearer to 0 than a Decimal holds: no digit left
	// VersionConflict rejects an UpdateValue whose ExpectedVersion is not
	// the value's version when the processor decides it.
	VersionConflict Reason = "version_conflict"
)

// Command asks the calculator to create a value (CreateValue) or to change one
// (UpdateValue). Operation is empty for CreateValue.
//
// ExpectedVersion, on an UpdateValue, is the version the value must have
// when the command is decided (optimistic concurrency, from If-Match); 0
// asks for none. A CreateValue has none.
type Command struct {
	ID              uuid.UUID
	Action          Action
	ValueID         uuid.UUID
	Operation       Operation
	Value           Decimal
	ExpectedVersion int64
	Timestamp       time.Time
}

// Event is the outcome of one command; ParentID is that command's ID.
//
//   - ValueCreated: Value is the initial value.
//   - ValueUpdated: Operation and Value (the operand) repeat the command, Result is the new value.
//   - CommandRejected: Reason and Message say why; nothing changed.
type Event struct {
	ID        uuid.UUID
	ParentID  uuid.UUID
	Action    Action
	ValueID   uuid.UUID
	Operation Operation
	Value     Decimal
	Result    Decimal
	Reason    Reason
	Message   string
	Timestamp time.Time
}

// eventNamespace makes event ids a function of their command's id, so that
// deciding the same command twice yields the same event id.
var eventNamespace = uuid.MustParse("6f1c1c52-6d0c-4c5e-9a43-4a1e8f0b6a57")

// EventID is the id of the event that answers the command with the given id:
// uuid.NewSHA1(eventNamespace, commandID[:]), computed without allocating
// (it runs for every command, and for every event the subscriptions record).
func EventID(commandID uuid.UUID) uuid.UUID {
	var in [32]byte
	copy(in[:16], eventNamespace[:])
	copy(in[16:], commandID[:])
	sum := sha1.Sum(in[:])
	var id uuid.UUID
	copy(id[:], sum[:16])
	id[6] = id[6]&0x0f | 0x50 // version 5 (name-based, SHA-1)
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id
}

// Value is the current state of one value: its number and how many events
// (ValueCreated, then ValueUpdated) made it.
type Value struct {
	Value   Decimal
	Version int64
}

// Decide answers a command with exactly one event, given the state before it.
// It does not change the state: apply the event for that. now becomes the
// event's timestamp.
func Decide(s *State, c Command, now time.Time) Event {
	e := Event{
		ID:        EventID(c.ID),
		ParentID:  c.ID,
		ValueID:   c.ValueID,
		Timestamp: now.UTC(),
	}
	current, exists := s.Get(c.ValueID)
	switch {
	case c.Action == CreateValue && exists:
		return reject(e, ValueExists, fmt.Sprintf("value %s already exists", c.ValueID))
	case c.Action == CreateValue:
		e.Action, e.Value = ValueCreated, c.Value
		return e
	case c.Action != UpdateValue:
		return reject(e, ValueNotFound, fmt.Sprintf("unknown action %q", c.Action))
	case !exists:
		return reject(e, ValueNotFound, fmt.Sprintf("value %s does not exist", c.ValueID))
	case c.ExpectedVersion != 0 && c.ExpectedVersion != current.Version:
		return reject(e, VersionConflict, fmt.Sprintf("value %s is at version %d, not the expected %d", c.ValueID, current.Version, c.ExpectedVersion))
	}
	result, reason := c.Operation.Apply(current.Value, c.Value)
	switch reason {
	case "":
	case DivisionByZero:
		return reject(e, reason, fmt.Sprintf("cannot divide %v by zero", current.Value))
	case Underflow:
		return reject(e, reason, fmt.Sprintf("%v %s %v would round to 0: it is not 0, but nearer to 0 than half of 1e%d, the smallest magnitude kept", current.Value, c.Operation, c.Value, TinyExponent))
	default:
		return reject(e, reason, fmt.Sprintf("%v %s %v is beyond %v, the largest magnitude kept", current.Value, c.Operation, c.Value, MaxDecimal))
	}
	e.Action, e.Operation, e.Value, e.Result = ValueUpdated, c.Operation, c.Value, result
	return e
}

func reject(e Event, reason Reason, message string) Event {
	e.Action, e.Reason, e.Message = CommandRejected, reason, message
	return e
}
