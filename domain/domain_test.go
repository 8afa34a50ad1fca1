package domain

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

var (
	now     = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	valueID = uuid.MustParse("11111111-1111-1111-1111-111111111111")
	cmdID   = uuid.MustParse("22222222-2222-2222-2222-222222222222")
)

// num is the Decimal of a JSON number.
func num(s string) Decimal { return MustParseDecimal(s) }

func stateWith(v string) *State {
	s := NewState()
	if _, _, err := s.Apply(Event{Action: ValueCreated, ValueID: valueID, Value: num(v)}); err != nil {
		panic(err)
	}
	return s
}

func create(v string) Command {
	return Command{ID: cmdID, Action: CreateValue, ValueID: valueID, Value: num(v)}
}

func update(op Operation, v string) Command {
	return Command{ID: cmdID, Action: UpdateValue, ValueID: valueID, Operation: op, Value: num(v)}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name       string
		state      *State
		cmd        Command
		wantAction Action
		wantResult string
		wantReason Reason
	}{
		{"create new value", NewState(), create("3"), ValueCreated, "3", ""},
		{"create keeps every digit", NewState(), create("9007199254740993"), ValueCreated, "9007199254740993", ""},
		{"create existing value", stateWith("1"), create("3"), CommandRejected, "", ValueExists},
		{"add", stateWith("2"), update(Add, "2"), ValueUpdated, "4", ""},
		{"add a tenth", stateWith("2.2"), update(Add, "0.1"), ValueUpdated, "2.3", ""},
		{"subtract", stateWith("2"), update(Subtract, "5"), ValueUpdated, "-3", ""},
		{"multiply", stateWith("4"), update(Multiply, "3"), ValueUpdated, "12", ""},
		{"multiply -0", stateWith("-0"), update(Multiply, "1"), ValueUpdated, "0", ""},
		{"divide", stateWith("9"), update(Divide, "2"), ValueUpdated, "4.5", ""},
		{"divide the smallest double", stateWith("5e-324"), update(Divide, "2"), ValueUpdated, "2.5e-324", ""},
		{"update missing value", NewState(), update(Add, "1"), CommandRejected, "", ValueNotFound},
		{"divide by zero", stateWith("9"), update(Divide, "0"), CommandRejected, "", DivisionByZero},
		{"divide by -0", stateWith("9"), update(Divide, "-0"), CommandRejected, "", DivisionByZero},
		{"zero divided by zero", stateWith("0"), update(Divide, "0"), CommandRejected, "", DivisionByZero},
		{"multiply overflows", stateWith(maxDecimal), update(Multiply, "10"), CommandRejected, "", Overflow},
		{"add overflows", stateWith(maxDecimal), update(Add, maxDecimal), CommandRejected, "", Overflow},
		{"subtract overflows", stateWith("-" + maxDecimal), update(Subtract, maxDecimal), CommandRejected, "", Overflow},
		{"divide overflows", stateWith(maxDecimal), update(Divide, "0.5"), CommandRejected, "", Overflow},
		{"divide underflows", stateWith("1e-6176"), update(Divide, "3"), CommandRejected, "", Underflow},
		{"multiply underflows", stateWith("-1e-6000"), update(Multiply, "1e-200"), CommandRejected, "", Underflow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := tt.state.Get(valueID)
			e := Decide(tt.state, tt.cmd, now)
			if e.Action != tt.wantAction || e.Reason != tt.wantReason {
				t.Fatalf("Decide = %s (reason %q), want %s (reason %q)", e.Action, e.Reason, tt.wantAction, tt.wantReason)
			}
			if e.ParentID != tt.cmd.ID || e.ValueID != valueID || e.ID != EventID(tt.cmd.ID) || !e.Timestamp.Equal(now) {
				t.Fatalf("Decide = %+v: wrong ids or timestamp", e)
			}
			if after, _ := tt.state.Get(valueID); after != before {
				t.Fatalf("Decide changed the state from %+v to %+v", before, after)
			}
			if e.Action == CommandRejected && e.Message == "" {
				t.Fatal("rejection without a message")
			}
			v, changed, err := tt.state.Apply(e)
			if err != nil {
				t.Fatalf("Apply(Decide(...)) = %v", err)
			}
			if changed != (e.Action != CommandRejected) {
				t.Fatalf("Apply changed = %v for %s", changed, e.Action)
			}
			if changed && v.Value != num(tt.wantResult) {
				t.Fatalf("value after = %v, want %v", v.Value, tt.wantResult)
			}
		})
	}
}

func TestApplyCountsVersions(t *testing.T) {
	s := NewState()
	events := []Event{
		{Action: ValueCreated, ValueID: valueID, Value: num("2")},
		{Action: ValueUpdated, ValueID: valueID, Operation: Add, Value: num("2"), Result: num("4")},
		{Action: CommandRejected, ValueID: valueID, Reason: DivisionByZero},
		{Action: ValueUpdated, ValueID: valueID, Operation: Multiply, Value: num("3"), Result: num("12")},
	}
	for _, e := range events {
		if _, _, err := s.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := must(s.Get(valueID)), (Value{Value: num("12"), Version: 3}); got != want {
		t.Fatalf("after the walk-through: %+v, want %+v", got, want)
	}
}

func must(v Value, ok bool) Value {
	if !ok {
		panic("missing")
	}
	return v
}

func TestApplyRefusesEventsThatDoNotFit(t *testing.T) {
	tests := map[string]struct {
		state *State
		event Event
	}{
		"created twice":     {stateWith("1"), Event{Action: ValueCreated, ValueID: valueID, Value: num("5")}},
		"update of nothing": {NewState(), Event{Action: ValueUpdated, ValueID: valueID, Operation: Add, Result: num("5")}},
		"unknown action":    {stateWith("1"), Event{Action: "ValueDeleted", ValueID: valueID}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			before, existed := tt.state.Get(valueID)
			if _, _, err := tt.state.Apply(tt.event); err == nil {
				t.Fatal("Apply accepted it")
			}
			if after, exists := tt.state.Get(valueID); after != before || exists != existed {
				t.Fatalf("state changed to %+v", after)
			}
		})
	}
}

func TestParseOperation(t *testing.T) {
	for in, want := range map[string]Operation{"add": Add, "Multiply": Multiply, "SUBTRACT": Subtract, "divide": Divide} {
		if got, err := ParseOperation(in); err != nil || got != want {
			t.Errorf("ParseOperation(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "POW", "add "} {
		if _, err := ParseOperation(in); err == nil {
			t.Errorf("ParseOperation(%q) succeeded", in)
		}
	}
}

func TestWireFormat(t *testing.T) {
	ts := time.Date(2026, 11, 23, 12, 0, 0, 500, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"CreateValue", Command{ID: cmdID, Action: CreateValue, ValueID: valueID, Value: num("3"), Timestamp: ts}.AppendJSON(nil),
			`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":3},"timestamp":"2026-11-23T11:00:00.0000005Z"}`},
		{"UpdateValue", Command{ID: cmdID, Action: UpdateValue, ValueID: valueID, Operation: Multiply, Value: num("3"), Timestamp: now}.AppendJSON(nil),
			`{"id":"22222222-2222-2222-2222-222222222222","action":"UpdateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","operation":"MULTIPLY","value":3},"timestamp":"2026-11-23T12:00:00Z"}`},
		{"ValueCreated", Event{ID: valueID, ParentID: cmdID, Action: ValueCreated, ValueID: valueID, Value: num("0.5"), Timestamp: now}.AppendJSON(nil),
			`{"id":"11111111-1111-1111-1111-111111111111","parent-id":"22222222-2222-2222-2222-222222222222","action":"ValueCreated","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":0.5},"timestamp":"2026-11-23T12:00:00Z"}`},
		{"ValueUpdated", Event{ID: valueID, ParentID: cmdID, Action: ValueUpdated, ValueID: valueID, Operation: Multiply, Value: num("3"), Result: num("9"), Timestamp: now}.AppendJSON(nil),
			`{"id":"11111111-1111-1111-1111-111111111111","parent-id":"22222222-2222-2222-2222-222222222222","action":"ValueUpdated","data":{"value-id":"11111111-1111-1111-1111-111111111111","operation":"MULTIPLY","value":3,"result":9},"timestamp":"2026-11-23T12:00:00Z"}`},
		{"CommandRejected", Event{ID: valueID, ParentID: cmdID, Action: CommandRejected, ValueID: valueID, Reason: ValueNotFound, Message: `no "x"`, Timestamp: now}.AppendJSON(nil),
			`{"id":"11111111-1111-1111-1111-111111111111","parent-id":"22222222-2222-2222-2222-222222222222","action":"CommandRejected","data":{"value-id":"11111111-1111-1111-1111-111111111111","reason":"value_not_found","message":"no \"x\""},"timestamp":"2026-11-23T12:00:00Z"}`},
		{"large numbers", Command{ID: cmdID, Action: CreateValue, ValueID: valueID, Value: num("1e300"), Timestamp: now}.AppendJSON(nil),
			`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":1e+300},"timestamp":"2026-11-23T12:00:00Z"}`},
		{"every digit", Event{ID: valueID, ParentID: cmdID, Action: ValueUpdated, ValueID: valueID, Operation: Add, Value: num("0.1"), Result: num("2.3"), Timestamp: now}.AppendJSON(nil),
			`{"id":"11111111-1111-1111-1111-111111111111","parent-id":"22222222-2222-2222-2222-222222222222","action":"ValueUpdated","data":{"value-id":"11111111-1111-1111-1111-111111111111","operation":"ADD","value":0.1,"result":2.3},"timestamp":"2026-11-23T12:00:00Z"}`},
		{"34 digits, small", Command{ID: cmdID, Action: CreateValue, ValueID: valueID, Value: num("-1.234567890123456789012345678901234e-6000"), Timestamp: now}.AppendJSON(nil),
			`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":-1.234567890123456789012345678901234e-6000},"timestamp":"2026-11-23T12:00:00Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Fatalf("got  %s\nwant %s", tt.got, tt.want)
			}
		})
	}
}

func TestCodecRoundTrip(t *testing.T) {
	commands := []Command{
		{ID: cmdID, Action: CreateValue, ValueID: valueID, Value: num("-2.25"), Timestamp: now},
		{ID: cmdID, Action: UpdateValue, ValueID: valueID, Operation: Divide, Value: num("1e-9"), Timestamp: now},
	}
	for _, c := range commands {
		got, err := DecodeCommand(c.AppendJSON(nil))
		if err != nil || got != c {
			t.Errorf("DecodeCommand(AppendJSON(%+v)) = %+v, %v", c, got, err)
		}
	}
	events := []Event{
		{ID: uuid.New(), ParentID: cmdID, Action: ValueCreated, ValueID: valueID, Value: num("7"), Timestamp: now},
		{ID: uuid.New(), ParentID: cmdID, Action: ValueUpdated, ValueID: valueID, Operation: Subtract, Value: num("1"), Result: num("6"), Timestamp: now},
		{ID: uuid.New(), ParentID: cmdID, Action: CommandRejected, ValueID: valueID, Reason: Overflow, Message: "too big", Timestamp: now},
	}
	for _, e := range events {
		got, err := DecodeEvent(e.AppendJSON(nil))
		if err != nil || got != e {
			t.Errorf("DecodeEvent(AppendJSON(%+v)) = %+v, %v", e, got, err)
		}
	}
}

func TestDecodeRejectsMalformedRecords(t *testing.T) {
	for _, in := range []string{
		``, `not json`, `{}`, `[]`,
		`{"id":"x","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":1}}`,
		`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value":1}}`,
		`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111"}}`,
		`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":"1"}}`,
		`{"id":"22222222-2222-2222-2222-222222222222","action":"UpdateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":1}}`,
		`{"id":"22222222-2222-2222-2222-222222222222","action":"UpdateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","operation":"POW","value":1}}`,
		`{"id":"22222222-2222-2222-2222-222222222222","action":"DeleteValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":1}}`,
		`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":1e9999}}`,
		`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":1e-9999}}`,
		`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":0.12345678901234567890123456789012345}}`,
		// In UTC, a year RFC 3339 cannot write (AppendJSON could not write the record back).
		`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":1},"timestamp":"9999-12-31T23:30:00-01:00"}`,
	} {
		if c, err := DecodeCommand([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeCommand(%s) = %+v, %v; want ErrMalformed", in, c, err)
		}
	}
	if _, err := DecodeEvent([]byte(`{"id":"22222222-2222-2222-2222-222222222222","action":"ValueCreated"}`)); !errors.Is(err, ErrMalformed) ||
		!strings.Contains(err.Error(), "required") {
		t.Errorf("DecodeEvent without parent-id = %v", err)
	}
	if _, err := DecodeEvent([]byte(`{"id":"22222222-2222-2222-2222-222222222222","parent-id":"33333333-2222-2222-2222-222222222222","action":"ValueCreated","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":1},"timestamp":"0000-01-01T00:00:00+01:00"}`)); !errors.Is(err, ErrMalformed) {
		t.Errorf("DecodeEvent with a timestamp in year -1 UTC = %v; want ErrMalformed", err)
	}
}
