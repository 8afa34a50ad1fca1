package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// The wire format of the logs (SPEC §4): JSON with kebab-case fields and an
// RFC 3339 UTC timestamp. Encoding is written by hand because it runs once per
// command and per event on the hot path. Decoding takes a hand-written fast
// path (decode.go) for records in the form written here and otherwise goes
// through encoding/json into the structs below, then checks that every
// required field is there.

type wireCommand struct {
	ID     *uuid.UUID `json:"id"`
	Action Action     `json:"action"`
	Data   struct {
		ValueID   *uuid.UUID `json:"value-id"`
		Operation *string    `json:"operation"`
		Value     *float64   `json:"value"`
	} `json:"data"`
	Timestamp time.Time `json:"timestamp"`
}

type wireEvent struct {
	ID       *uuid.UUID `json:"id"`
	ParentID *uuid.UUID `json:"parent-id"`
	Action   Action     `json:"action"`
	Data     struct {
		ValueID   *uuid.UUID `json:"value-id"`
		Operation *string    `json:"operation"`
		Value     *float64   `json:"value"`
		Result    *float64   `json:"result"`
		Reason    Reason     `json:"reason"`
		Message   string     `json:"message"`
	} `json:"data"`
	Timestamp time.Time `json:"timestamp"`
}

// AppendJSON appends the command's wire form to b.
func (c Command) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":"`...)
	b = appendUUID(b, c.ID)
	b = append(b, `","action":"`...)
	b = append(b, c.Action...)
	b = append(b, `","data":{"value-id":"`...)
	b = appendUUID(b, c.ValueID)
	b = append(b, '"')
	if c.Action == UpdateValue {
		b = append(b, `,"operation":"`...)
		b = append(b, c.Operation...)
		b = append(b, '"')
	}
	b = append(b, `,"value":`...)
	b = appendNumber(b, c.Value)
	b = append(b, `},"timestamp":"`...)
	b = c.Timestamp.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// MarshalJSON implements json.Marshaler with the wire format.
func (c Command) MarshalJSON() ([]byte, error) { return c.AppendJSON(nil), nil }

// AppendJSON appends the event's wire form to b.
func (e Event) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":"`...)
	b = appendUUID(b, e.ID)
	b = append(b, `","parent-id":"`...)
	b = appendUUID(b, e.ParentID)
	b = append(b, `","action":"`...)
	b = append(b, e.Action...)
	b = append(b, `","data":{"value-id":"`...)
	b = appendUUID(b, e.ValueID)
	b = append(b, '"')
	switch e.Action {
	case ValueCreated:
		b = append(b, `,"value":`...)
		b = appendNumber(b, e.Value)
	case ValueUpdated:
		b = append(b, `,"operation":"`...)
		b = append(b, e.Operation...)
		b = append(b, `","value":`...)
		b = appendNumber(b, e.Value)
		b = append(b, `,"result":`...)
		b = appendNumber(b, e.Result)
	case CommandRejected:
		b = append(b, `,"reason":"`...)
		b = append(b, e.Reason...)
		b = append(b, `","message":`...)
		b = strconv.AppendQuote(b, e.Message)
	}
	b = append(b, `},"timestamp":"`...)
	b = e.Timestamp.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// MarshalJSON implements json.Marshaler with the wire format.
func (e Event) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil), nil }

func appendUUID(b []byte, id uuid.UUID) []byte {
	var buf [36]byte
	// uuid.UUID.MarshalText allocates; this is its encoding without the allocation.
	const hexDigits = "0123456789abcdef"
	j := 0
	for i, x := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			buf[j] = '-'
			j++
		}
		buf[j], buf[j+1] = hexDigits[x>>4], hexDigits[x&0x0f]
		j += 2
	}
	return append(b, buf[:]...)
}

// appendNumber writes a finite float the way encoding/json does: the shortest
// representation, integers without a fraction.
func appendNumber(b []byte, x float64) []byte {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		// Not representable in JSON; Decide never lets one into an event.
		return append(b, "null"...)
	}
	abs := math.Abs(x)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, x, format, -1, 64)
}

// ErrMalformed marks a record that is not a valid command or event.
var ErrMalformed = errors.New("malformed record")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// DecodeCommand parses a command from its wire form. Any record that is not a
// complete, valid command yields an error wrapping ErrMalformed.
func DecodeCommand(b []byte) (Command, error) {
	if c, ok := fastDecodeCommand(b); ok {
		return c, nil
	}
	return decodeCommandJSON(b)
}

// decodeCommandJSON is DecodeCommand through encoding/json: the reference.
func decodeCommandJSON(b []byte) (Command, error) {
	var w wireCommand
	if err := json.Unmarshal(b, &w); err != nil {
		return Command{}, malformed("command: %v", err)
	}
	if w.ID == nil || w.Data.ValueID == nil || w.Data.Value == nil {
		return Command{}, malformed("command: id, data.value-id and data.value are required")
	}
	c := Command{ID: *w.ID, Action: w.Action, ValueID: *w.Data.ValueID, Value: *w.Data.Value, Timestamp: w.Timestamp}
	switch w.Action {
	case CreateValue:
		if w.Data.Operation != nil {
			return Command{}, malformed("command %s: CreateValue has no operation", c.ID)
		}
	case UpdateValue:
		if w.Data.Operation == nil {
			return Command{}, malformed("command %s: UpdateValue needs an operation", c.ID)
		}
		op, err := ParseOperation(*w.Data.Operation)
		if err != nil {
			return Command{}, malformed("command %s: %v", c.ID, err)
		}
		c.Operation = op
	default:
		return Command{}, malformed("command %s: unknown action %q", c.ID, w.Action)
	}
	return c, nil
}

// DecodeEvent parses an event from its wire form. Any record that is not a
// complete, valid event yields an error wrapping ErrMalformed.
func DecodeEvent(b []byte) (Event, error) {
	if e, ok := fastDecodeEvent(b); ok {
		return e, nil
	}
	return decodeEventJSON(b)
}

// decodeEventJSON is DecodeEvent through encoding/json: the reference.
func decodeEventJSON(b []byte) (Event, error) {
	var w wireEvent
	if err := json.Unmarshal(b, &w); err != nil {
		return Event{}, malformed("event: %v", err)
	}
	if w.ID == nil || w.ParentID == nil || w.Data.ValueID == nil {
		return Event{}, malformed("event: id, parent-id and data.value-id are required")
	}
	e := Event{ID: *w.ID, ParentID: *w.ParentID, Action: w.Action, ValueID: *w.Data.ValueID, Timestamp: w.Timestamp}
	switch w.Action {
	case ValueCreated:
		if w.Data.Value == nil {
			return Event{}, malformed("event %s: ValueCreated needs a value", e.ID)
		}
		e.Value = *w.Data.Value
	case ValueUpdated:
		if w.Data.Operation == nil || w.Data.Value == nil || w.Data.Result == nil {
			return Event{}, malformed("event %s: ValueUpdated needs operation, value and result", e.ID)
		}
		op, err := ParseOperation(*w.Data.Operation)
		if err != nil {
			return Event{}, malformed("event %s: %v", e.ID, err)
		}
		e.Operation, e.Value, e.Result = op, *w.Data.Value, *w.Data.Result
	case CommandRejected:
		if w.Data.Reason == "" {
			return Event{}, malformed("event %s: CommandRejected needs a reason", e.ID)
		}
		e.Reason, e.Message = w.Data.Reason, w.Data.Message
	default:
		return Event{}, malformed("event %s: unknown action %q", e.ID, w.Action)
	}
	return e, nil
}
