package domain

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// The wire format of the logs (SPEC §4): JSON with kebab-case fields and an
// RFC 3339 UTC timestamp. Encoding is written by hand because it runs once per
// command and per event on the hot path; strings are written byte for byte as
// encoding/json writes them, numbers with exactly their digits (Decimal.Append). Decoding takes a hand-written
// fast path (decode.go) for records in the form written here and otherwise
// goes through encoding/json into the structs below, then checks that every
// required field is there.

type wireCommand struct {
	ID     *uuid.UUID `json:"id"`
	Action Action     `json:"action"`
	Data   struct {
		ValueID         *uuid.UUID `json:"value-id"`
		Operation       *string    `json:"operation"`
		Value           *Decimal   `json:"value"`
		ExpectedVersion *int64     `json:"expected-version"`
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
		Value     *Decimal   `json:"value"`
		Result    *Decimal   `json:"result"`
		Reason    Reason     `json:"reason"`
		Message   string     `json:"message"`
	} `json:"data"`
	Timestamp time.Time `json:"timestamp"`
}

// AppendJSON appends the command's wire form to b.
func (c Command) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":"`...)
	b = appendUUID(b, c.ID)
	b = append(b, `","action":`...)
	b = appendString(b, string(c.Action))
	b = append(b, `,"data":{"value-id":"`...)
	b = appendUUID(b, c.ValueID)
	b = append(b, '"')
	if c.Action == UpdateValue {
		b = append(b, `,"operation":`...)
		b = appendString(b, string(c.Operation))
	}
	b = append(b, `,"value":`...)
	b = c.Value.Append(b)
	if c.Action == UpdateValue && c.ExpectedVersion != 0 {
		b = append(b, `,"expected-version":`...)
		b = strconv.AppendInt(b, c.ExpectedVersion, 10)
	}
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
	b = append(b, `","action":`...)
	b = appendString(b, string(e.Action))
	b = append(b, `,"data":{"value-id":"`...)
	b = appendUUID(b, e.ValueID)
	b = append(b, '"')
	switch e.Action {
	case ValueCreated:
		b = append(b, `,"value":`...)
		b = e.Value.Append(b)
	case ValueUpdated:
		b = append(b, `,"operation":`...)
		b = appendString(b, string(e.Operation))
		b = append(b, `,"value":`...)
		b = e.Value.Append(b)
		b = append(b, `,"result":`...)
		b = e.Result.Append(b)
	case CommandRejected:
		b = append(b, `,"reason":`...)
		b = appendString(b, string(e.Reason))
		b = append(b, `,"message":`...)
		b = appendString(b, e.Message)
	}
	b = append(b, `},"timestamp":"`...)
	b = e.Timestamp.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// MarshalJSON implements json.Marshaler with the wire format.
func (e Event) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil), nil }

const hexDigits = "0123456789abcdef"

func appendUUID(b []byte, id uuid.UUID) []byte {
	var buf [36]byte
	// uuid.UUID.MarshalText allocates; this is its encoding without the allocation.
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

// appendString writes s as a JSON string, byte for byte as encoding/json
// does without its HTML escaping: a quote, a backslash and the control
// characters escaped (\n, \r, \t, \b, \f or \u00XX), U+2028 and U+2029
// escaped for JavaScript, and each byte that is not valid UTF-8 replaced by
// \ufffd. A string that needs none of this (the common case: ASCII without
// quotes or controls) is copied in one append.
func appendString(b []byte, s string) []byte {
	if i := plainPrefix(s); i < len(s) {
		return appendEscaped(b, s, i)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainPrefix is the length of the longest prefix of s made of plain bytes
// (see plainByte). It looks at eight bytes at a time, flagging in a byte's
// top bit one that is not ASCII (its own top bit), below 0x20 (subtracting
// 0x20 borrows into it) or a quote or backslash (w^c has a zero byte there,
// and x-1 &^ x flags a zero byte). A borrow only spreads above a byte that
// is flagged rightly, so a flagged word holds a byte that is not plain; that
// word's bytes are then looked at one by one.
func plainPrefix(s string) int {
	const ones, tops = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := binary.LittleEndian.Uint64([]byte(s[i : i+8]))
		quote, backslash := w^(ones*'"'), w^(ones*'\\')
		if (w|(w-ones*0x20)|(quote-ones)&^quote|(backslash-ones)&^backslash)&tops != 0 {
			break
		}
	}
	for i < len(s) && plainByte[s[i]] {
		i++
	}
	return i
}

// appendEscaped is appendString for a string whose first i bytes are plain.
func appendEscaped(b []byte, s string, i int) []byte {
	b = append(b, '"')
	start := 0 // s[start:i] is still to be copied as is
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if plainByte[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// plainByte is true for the ASCII bytes that stand for themselves in a JSON
// string: not a quote, a backslash or a control character.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

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
	if !inRFC3339(w.Timestamp) {
		return Command{}, malformed("command %s: timestamp %v is out of range in UTC", *w.ID, w.Timestamp)
	}
	c := Command{ID: *w.ID, Action: w.Action, ValueID: *w.Data.ValueID, Value: *w.Data.Value, Timestamp: w.Timestamp}
	switch w.Action {
	case CreateValue:
		if w.Data.Operation != nil || w.Data.ExpectedVersion != nil {
			return Command{}, malformed("command %s: CreateValue has no operation and no expected-version", c.ID)
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
		if v := w.Data.ExpectedVersion; v != nil {
			if *v < 1 {
				return Command{}, malformed("command %s: expected-version %d is not a version (they start at 1)", c.ID, *v)
			}
			c.ExpectedVersion = *v
		}
	default:
		return Command{}, malformed("command %s: unknown action %q", c.ID, w.Action)
	}
	return c, nil
}

// inRFC3339 is false for a time whose UTC form has a year RFC 3339 cannot
// write (an offset can carry 0000-01-01 or 9999-12-31 past the range), which
// AppendJSON could not write back.
func inRFC3339(t time.Time) bool {
	y := t.UTC().Year()
	return 0 <= y && y <= 9999
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
	if !inRFC3339(w.Timestamp) {
		return Event{}, malformed("event %s: timestamp %v is out of range in UTC", *w.ID, w.Timestamp)
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
