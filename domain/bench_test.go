package domain

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The domain's hot paths: the processor runs Decide and Apply once per
// command, the view Apply once per event; both decode every record they read
// and encode every record they write.

func benchState(n int) (*State, []uuid.UUID) {
	s := NewState()
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
		if _, _, err := s.Apply(Event{Action: ValueCreated, ValueID: ids[i], Value: DecimalFromInt(int64(i))}); err != nil {
			panic(err)
		}
	}
	return s, ids
}

func BenchmarkDecide(b *testing.B) {
	s, ids := benchState(1024)
	c := Command{ID: cmdID, Action: UpdateValue, Operation: Add, Value: num("2")}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.ValueID = ids[i%len(ids)]
		i++
		if e := Decide(s, c, now); e.Action != ValueUpdated {
			b.Fatalf("Decide = %s", e.Action)
		}
	}
}

func BenchmarkApply(b *testing.B) {
	s, ids := benchState(1024)
	e := Event{Action: ValueUpdated, Operation: Add, Value: num("2"), Result: num("4")}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.ValueID = ids[i%len(ids)]
		i++
		if _, _, err := s.Apply(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyCreate grows the state: the cost of a new value, map growth
// included.
func BenchmarkApplyCreate(b *testing.B) {
	s := NewState()
	e := Event{Action: ValueCreated, Value: num("1")}
	b.ReportAllocs()
	for b.Loop() {
		e.ValueID = uuid.New()
		if _, _, err := s.Apply(e); err != nil {
			b.Fatal(err)
		}
	}
}

var (
	benchCommands = map[string]Command{
		"CreateValue": {ID: cmdID, Action: CreateValue, ValueID: valueID, Value: num("3"), Timestamp: time.Now()},
		"UpdateValue": {ID: cmdID, Action: UpdateValue, ValueID: valueID, Operation: Multiply, Value: num("1.5"), Timestamp: time.Now()},
	}
	benchEvents = map[string]Event{
		"ValueCreated":    {ID: valueID, ParentID: cmdID, Action: ValueCreated, ValueID: valueID, Value: num("3"), Timestamp: time.Now()},
		"ValueUpdated":    {ID: valueID, ParentID: cmdID, Action: ValueUpdated, ValueID: valueID, Operation: Multiply, Value: num("1.5"), Result: num("4.5"), Timestamp: time.Now()},
		"CommandRejected": {ID: valueID, ParentID: cmdID, Action: CommandRejected, ValueID: valueID, Reason: ValueNotFound, Message: "value 11111111-1111-1111-1111-111111111111 does not exist", Timestamp: time.Now()},
	}
)

func BenchmarkEncodeCommand(b *testing.B) {
	for name, c := range benchCommands {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				buf = c.AppendJSON(buf[:0])
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

func BenchmarkEncodeEvent(b *testing.B) {
	for name, e := range benchEvents {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				buf = e.AppendJSON(buf[:0])
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

func BenchmarkDecodeCommand(b *testing.B) {
	for name, c := range benchCommands {
		wire := c.AppendJSON(nil)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			for b.Loop() {
				if _, err := DecodeCommand(wire); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	for name, e := range benchEvents {
		wire := e.AppendJSON(nil)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			for b.Loop() {
				if _, err := DecodeEvent(wire); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Records not in the form AppendJSON writes: what another writer (kcat, a
// script) might put on the log. They mean the same as their canonical forms.
var foreignRecords = map[string]string{
	"UpdateValue/reordered": `{"action":"UpdateValue","id":"22222222-2222-2222-2222-222222222222","timestamp":"2026-11-23T12:00:00Z","data":{"operation":"MULTIPLY","value":1.5,"value-id":"11111111-1111-1111-1111-111111111111"}}`,
	"ValueUpdated/spaced": `{ "id": "11111111-1111-1111-1111-111111111111", "parent-id": "22222222-2222-2222-2222-222222222222", "action": "ValueUpdated",
  "data": { "value-id": "11111111-1111-1111-1111-111111111111", "operation": "MULTIPLY", "value": 1.5, "result": 4.5 },
  "timestamp": "2026-11-23T12:00:00.123456789Z" }`,
}

func BenchmarkDecodeForeign(b *testing.B) {
	for name, record := range foreignRecords {
		wire := []byte(record)
		decode := func(b []byte) error { _, err := DecodeEvent(b); return err }
		if strings.HasPrefix(name, "UpdateValue") {
			decode = func(b []byte) error { _, err := DecodeCommand(b); return err }
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			for b.Loop() {
				if err := decode(wire); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchNumbers are numbers as the logs hold them: small integers (the load
// generator's), a few decimals, a float64's shortest form, 34 digits.
var benchNumbers = []string{"3", "1024", "2.5", "0.30000000000000004", "1.234567890123456789012345678901234e-7"}

// BenchmarkParseDecimal reads a number from a record: what decoding costs
// per number (strconv.ParseFloat did this before decimals).
func BenchmarkParseDecimal(b *testing.B) {
	for _, s := range benchNumbers {
		in := []byte(s)
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, status := parseNumber(in); status != numberOK {
					b.Fatal(status)
				}
			}
		})
	}
}

// BenchmarkAppendDecimal writes a number into a record.
func BenchmarkAppendDecimal(b *testing.B) {
	for _, s := range benchNumbers {
		d := MustParseDecimal(s)
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				buf = d.Append(buf[:0])
			}
		})
	}
}

// BenchmarkApplyOperation is the arithmetic of Decide: the integer fast
// path (2 + 3, 2.5 × 1.5, an exact DIVIDE) and apd (1 / 3, 34 digits).
func BenchmarkApplyOperation(b *testing.B) {
	for _, c := range []struct {
		x  string
		op Operation
		y  string
	}{
		{"1024", Add, "2"}, {"2.5", Multiply, "1.5"}, {"1024", Divide, "1"},
		{"1", Divide, "3"}, {"1.234567890123456789012345678901234", Add, "1e-9"},
	} {
		x, y := MustParseDecimal(c.x), MustParseDecimal(c.y)
		b.Run(c.x+" "+string(c.op)+" "+c.y, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, reject := c.op.Apply(x, y); reject != "" {
					b.Fatal(reject)
				}
			}
		})
	}
}

// BenchmarkApplyMillion updates values picked at random among 1,000,000: the
// state no longer fits a cache, as in a long-lived calculator.
func BenchmarkApplyMillion(b *testing.B) {
	s, ids := benchState(1_000_000)
	e := Event{Action: ValueUpdated, Operation: Add, Value: num("2"), Result: num("4")}
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		e.ValueID = ids[rng.IntN(len(ids))]
		if _, _, err := s.Apply(e); err != nil {
			b.Fatal(err)
		}
	}
}
