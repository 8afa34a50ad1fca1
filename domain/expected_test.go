package domain

import (
	"errors"
	"testing"
)

// stateAt returns a state in which the value is at the given version.
func stateAt(version int64) *State {
	s := stateWith("1")
	for range version - 1 {
		if _, _, err := s.Apply(Event{Action: ValueUpdated, ValueID: valueID, Operation: Add, Value: num("1"), Result: num("1")}); err != nil {
			panic(err)
		}
	}
	return s
}

func expecting(version int64, c Command) Command {
	c.ExpectedVersion = version
	return c
}

func TestDecideWithExpectedVersion(t *testing.T) {
	tests := []struct {
		name       string
		state      *State
		cmd        Command
		wantAction Action
		wantReason Reason
	}{
		{"matches", stateAt(4), expecting(4, update(Add, "1")), ValueUpdated, ""},
		{"matches the first version", stateAt(1), expecting(1, update(Add, "1")), ValueUpdated, ""},
		{"behind", stateAt(5), expecting(4, update(Add, "1")), CommandRejected, VersionConflict},
		{"ahead", stateAt(3), expecting(4, update(Add, "1")), CommandRejected, VersionConflict},
		{"none expected", stateAt(7), update(Add, "1"), ValueUpdated, ""},
		// A missing value is not found whatever was expected.
		{"missing value", NewState(), expecting(1, update(Add, "1")), CommandRejected, ValueNotFound},
		// The version is checked first: the command was meant for another value.
		{"conflict before division by zero", stateAt(2), expecting(1, update(Divide, "0")), CommandRejected, VersionConflict},
		{"division by zero at the expected version", stateAt(2), expecting(2, update(Divide, "0")), CommandRejected, DivisionByZero},
		// A CreateValue has no expected version: Decide ignores one.
		{"create", NewState(), expecting(3, create("1")), ValueCreated, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Decide(tt.state, tt.cmd, now)
			if e.Action != tt.wantAction || e.Reason != tt.wantReason {
				t.Fatalf("Decide = %s (reason %q: %s), want %s (reason %q)", e.Action, e.Reason, e.Message, tt.wantAction, tt.wantReason)
			}
		})
	}
}

func TestExpectedVersionOnTheWire(t *testing.T) {
	c := expecting(4, Command{ID: cmdID, Action: UpdateValue, ValueID: valueID, Operation: Add, Value: num("1"), Timestamp: now})
	const want = `{"id":"22222222-2222-2222-2222-222222222222","action":"UpdateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","operation":"ADD","value":1,"expected-version":4},"timestamp":"2026-11-23T12:00:00Z"}`
	if got := string(c.AppendJSON(nil)); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	for _, v := range []int64{1, 4, 1 << 62} {
		c.ExpectedVersion = v
		checkRoundTrip(t, commandCodec, c, c)
		checkAgrees(t, commandCodec, c.AppendJSON(nil))
	}
	// A CreateValue does not carry one.
	created := expecting(4, create("1"))
	created.Timestamp = now
	if got, err := DecodeCommand(created.AppendJSON(nil)); err != nil || got.ExpectedVersion != 0 {
		t.Fatalf("DecodeCommand(CreateValue) = %+v, %v", got, err)
	}
}

func TestDecodeRejectsMalformedExpectedVersions(t *testing.T) {
	for _, in := range []string{
		`{"id":"22222222-2222-2222-2222-222222222222","action":"UpdateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","operation":"ADD","value":1,"expected-version":0}}`,
		`{"id":"22222222-2222-2222-2222-222222222222","action":"UpdateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","operation":"ADD","value":1,"expected-version":-1}}`,
		`{"id":"22222222-2222-2222-2222-222222222222","action":"UpdateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","operation":"ADD","value":1,"expected-version":1.5}}`,
		`{"id":"22222222-2222-2222-2222-222222222222","action":"UpdateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","operation":"ADD","value":1,"expected-version":"4"}}`,
		`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":1,"expected-version":4}}`,
	} {
		if c, err := DecodeCommand([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeCommand(%s) = %+v, %v; want ErrMalformed", in, c, err)
		}
		checkAgrees(t, commandCodec, []byte(in))
	}
	// Written by hand, in another order: encoding/json reads it.
	in := `{"data":{"expected-version":2,"value":1,"operation":"ADD","value-id":"11111111-1111-1111-1111-111111111111"},"action":"UpdateValue","id":"22222222-2222-2222-2222-222222222222"}`
	if c, err := DecodeCommand([]byte(in)); err != nil || c.ExpectedVersion != 2 {
		t.Errorf("DecodeCommand(%s) = %+v, %v", in, c, err)
	}
}
