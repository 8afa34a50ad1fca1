package domain

import (
	"bytes"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// The fast path of DecodeCommand and DecodeEvent. Every record is decoded
// twice at startup (by the processor and by the view) and once more per
// command while running, so encoding/json's reflection (about 2 µs and a
// dozen allocations a record) dominated a replay.
//
// The fast path reads a record laid out as AppendJSON writes it: the fields
// in that order, no whitespace, no escape sequence in a string. It gives up
// (ok = false) at the first difference, and on null, non-UTF-8, a timestamp
// with an offset other than Z, a missing field or a value out of range. The
// caller then decodes the record with encoding/json, which stays the
// reference: the fast path never decides an error, and FuzzDecode checks
// that whenever it succeeds, encoding/json agrees with it exactly.
//
// A command with an expected-version is not in the fast path's form: its
// "data" goes on past "value", so the scan gives up and encoding/json
// decodes it. Only PUTs sent with If-Match carry one.
//
// Records in another form (written by kcat or a script: other key orders,
// whitespace, escapes) take encoding/json. A general object scanner for them
// decoded them in 0.2-0.35 µs instead of encoding/json's 2-3 µs
// (BenchmarkDecodeForeign) and was removed: such records are rare, and a
// replay's cost is in the records AppendJSON writes.

// fields of a record in canonical form; has says which optional fields were
// present.
type fields struct {
	id, parentID, valueID          uuid.UUID
	action, operation, reason, msg []byte
	value, result                  Decimal
	timestamp                      time.Time
	has                            uint8
}

const (
	hasParentID = 1 << iota
	hasOperation
	hasValue
	hasResult
	hasReason
	hasMessage
)

// fastDecodeCommand decodes a command on the fast path.
func fastDecodeCommand(b []byte) (Command, bool) {
	f, ok := scanCanonical(b)
	if !ok || f.has&(hasParentID|hasResult|hasReason|hasMessage) != 0 || f.has&hasValue == 0 {
		return Command{}, false
	}
	c := Command{ID: f.id, ValueID: f.valueID, Value: f.value, Timestamp: f.timestamp}
	switch string(f.action) {
	case string(CreateValue):
		if f.has&hasOperation != 0 {
			return Command{}, false
		}
		c.Action = CreateValue
	case string(UpdateValue):
		op, ok := operation(f)
		if !ok {
			return Command{}, false
		}
		c.Action, c.Operation = UpdateValue, op
	default:
		return Command{}, false
	}
	return c, true
}

// fastDecodeEvent decodes an event on the fast path.
func fastDecodeEvent(b []byte) (Event, bool) {
	f, ok := scanCanonical(b)
	if !ok || f.has&hasParentID == 0 {
		return Event{}, false
	}
	e := Event{ID: f.id, ParentID: f.parentID, ValueID: f.valueID, Timestamp: f.timestamp}
	switch string(f.action) {
	case string(ValueCreated):
		if f.has&hasValue == 0 {
			return Event{}, false
		}
		e.Action, e.Value = ValueCreated, f.value
	case string(ValueUpdated):
		op, ok := operation(f)
		if !ok || f.has&(hasValue|hasResult) != hasValue|hasResult {
			return Event{}, false
		}
		e.Action, e.Operation, e.Value, e.Result = ValueUpdated, op, f.value, f.result
	case string(CommandRejected):
		if len(f.reason) == 0 {
			return Event{}, false
		}
		e.Action, e.Reason = CommandRejected, reason(f.reason)
		if len(f.msg) > 0 {
			e.Message = string(f.msg)
		}
	default:
		return Event{}, false
	}
	return e, true
}

func operation(f fields) (Operation, bool) {
	if f.has&hasOperation == 0 {
		return "", false
	}
	switch string(f.operation) {
	case string(Add):
		return Add, true
	case string(Subtract):
		return Subtract, true
	case string(Multiply):
		return Multiply, true
	case string(Divide):
		return Divide, true
	}
	op, err := ParseOperation(string(f.operation))
	return op, err == nil
}

// reason returns the constant for a known reason, so that decoding one does
// not allocate.
func reason(b []byte) Reason {
	for _, r := range []Reason{ValueExists, ValueNotFound, DivisionByZero, Overflow, Underflow, VersionConflict} {
		if string(b) == string(r) {
			return r
		}
	}
	return Reason(b)
}

// scanCanonical reads a record laid out exactly as AppendJSON writes it:
// the fields in that order, no whitespace. It gives up at the first
// difference.
func scanCanonical(b []byte) (f fields, ok bool) {
	s := scanner{b: b}
	if !s.lit(`{"id":`) || !s.uuid(&f.id) {
		return f, false
	}
	if s.lit(`,"parent-id":`) {
		if !s.uuid(&f.parentID) {
			return f, false
		}
		f.has |= hasParentID
	}
	if !s.lit(`,"action":`) || !s.str(&f.action) || !s.lit(`,"data":{"value-id":`) || !s.uuid(&f.valueID) {
		return f, false
	}
	if s.lit(`,"operation":`) {
		if !s.str(&f.operation) {
			return f, false
		}
		f.has |= hasOperation
	}
	if s.lit(`,"value":`) {
		if !s.number(&f.value) {
			return f, false
		}
		f.has |= hasValue
	}
	if s.lit(`,"result":`) {
		if !s.number(&f.result) {
			return f, false
		}
		f.has |= hasResult
	}
	if s.lit(`,"reason":`) {
		if !s.str(&f.reason) {
			return f, false
		}
		f.has |= hasReason
	}
	if s.lit(`,"message":`) {
		if !s.str(&f.msg) {
			return f, false
		}
		f.has |= hasMessage
	}
	ok = s.lit(`},"timestamp":`) && s.time(&f.timestamp) && s.lit(`}`) && s.i == len(b)
	return f, ok
}

// scanner reads JSON from b at i. Its methods return false when they meet
// anything the fast path does not take.
type scanner struct {
	b []byte
	i int
}

// lit consumes the literal l if the input continues with it.
func (s *scanner) lit(l string) bool {
	if len(s.b)-s.i >= len(l) && string(s.b[s.i:s.i+len(l)]) == l {
		s.i += len(l)
		return true
	}
	return false
}

// consume consumes c if the input continues with it.
func (s *scanner) consume(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escape sequences, as the bytes between its
// quotes (pointing into the record).
func (s *scanner) str(v *[]byte) bool {
	if !s.consume('"') {
		return false
	}
	start, ascii := s.i, true
	for j := start; j < len(s.b); j++ {
		if c := s.b[j]; plainByte[c] {
			continue
		} else if c == '"' {
			*v, s.i = s.b[start:j], j+1
			return ascii || utf8.Valid(*v)
		} else if c >= utf8.RuneSelf {
			ascii = false
		} else {
			return false // an escape sequence or a control character
		}
	}
	return false
}

// number reads a JSON number into a Decimal, as Decimal.UnmarshalJSON
// would (straight from the digits, never through a float64).
func (s *scanner) number(v *Decimal) bool {
	x, n, status := parseNumber(s.b[s.i:])
	if status != numberOK {
		return false
	}
	*v, s.i = x, s.i+n
	return true
}

// uuid reads a UUID in its 36-character form. Every byte is checked (hex
// digit or dash), so there is no need to look for escapes.
func (s *scanner) uuid(v *uuid.UUID) bool {
	if s.i+38 > len(s.b) || s.b[s.i] != '"' || s.b[s.i+37] != '"' {
		return false
	}
	b := s.b[s.i+1 : s.i+37]
	if b[8] != '-' || b[13] != '-' || b[18] != '-' || b[23] != '-' {
		return false
	}
	bad := byte(0)
	for j, i := range uuidHexAt {
		hi, lo := hexValue[b[i]], hexValue[b[i+1]]
		bad |= hi | lo
		v[j] = hi<<4 | lo
	}
	s.i += 38
	return bad&0xf0 == 0
}

// uuidHexAt are the positions of the 16 hex pairs of a UUID's text.
var uuidHexAt = [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// hexValue maps a hex digit to its value and any other byte to 0xff.
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := range 10 {
		t['0'+i] = byte(i)
	}
	for i := range 6 {
		t['a'+i], t['A'+i] = byte(10+i), byte(10+i)
	}
	return t
}()

// time reads an RFC 3339 timestamp in UTC ("Z") with at most nine digits of
// fraction, the form AppendJSON writes. Every byte is checked, so there is no
// need to look for escapes.
func (s *scanner) time(v *time.Time) bool {
	if !s.consume('"') {
		return false
	}
	n := bytes.IndexByte(s.b[s.i:], '"')
	if n < 0 {
		return false
	}
	b := s.b[s.i : s.i+n]
	s.i += n + 1
	if len(b) < len("2006-01-02T15:04:05Z") || b[len(b)-1] != 'Z' ||
		b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return false
	}
	num := func(b []byte) int {
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(b[0:4]), num(b[5:7]), num(b[8:10])
	hour, minute, sec := num(b[11:13]), num(b[14:16]), num(b[17:19])
	nsec := 0
	if frac := b[19 : len(b)-1]; len(frac) > 0 {
		if len(frac) < 2 || len(frac) > 10 || frac[0] != '.' {
			return false
		}
		if nsec = num(frac[1:]); nsec < 0 {
			return false
		}
		for range 10 - len(frac) {
			nsec *= 10
		}
	}
	if year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if t.Day() != day { // the 31st of a shorter month, say
		return false
	}
	*v = t
	return true
}
