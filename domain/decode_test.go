package domain

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The fast decoders must agree with the encoding/json reference whenever
// they accept a record, and must accept everything AppendJSON writes. Every
// record accepted must survive a round trip through AppendJSON.

func randomCommand(rng *rand.Rand) Command {
	c := Command{ID: uuid.New(), ValueID: uuid.New(), Value: randomNumber(rng), Timestamp: randomTime(rng)}
	if rng.IntN(2) == 0 {
		c.Action = CreateValue
	} else {
		c.Action, c.Operation = UpdateValue, []Operation{Add, Subtract, Multiply, Divide}[rng.IntN(4)]
	}
	return c
}

func randomEvent(rng *rand.Rand) Event {
	e := Event{ID: uuid.New(), ParentID: uuid.New(), ValueID: uuid.New(), Timestamp: randomTime(rng)}
	switch rng.IntN(3) {
	case 0:
		e.Action, e.Value = ValueCreated, randomNumber(rng)
	case 1:
		e.Action, e.Operation = ValueUpdated, []Operation{Add, Subtract, Multiply, Divide}[rng.IntN(4)]
		e.Value, e.Result = randomNumber(rng), randomNumber(rng)
	default:
		e.Action, e.Reason = CommandRejected, []Reason{ValueExists, ValueNotFound, DivisionByZero, Overflow}[rng.IntN(4)]
		e.Message = []string{"", "value does not exist", `cannot divide "x" by zero`, "ünïcode ✓", "tab\there"}[rng.IntN(5)]
	}
	return e
}

// randomNumber returns numbers of every kind: small integers, a few
// decimals, the shortest forms of float64s (what the logs of the float
// era hold), any coefficient at any exponent, and the limits.
func randomNumber(rng *rand.Rand) Decimal {
	switch rng.IntN(7) {
	case 0:
		return DecimalFromInt(int64(rng.IntN(2000) - 1000))
	case 1:
		return MustParseDecimal(strconv.Itoa(rng.IntN(1e6)) + "." + strconv.Itoa(rng.IntN(1000)))
	case 2:
		x := math.Float64frombits(rng.Uint64()&^(0x7ff<<52) | uint64(rng.IntN(0x7fe)+1)<<52) // any finite
		return MustParseDecimal(strconv.FormatFloat(x, 'g', -1, 64))
	case 3:
		return MustParseDecimal(strconv.FormatFloat(rng.NormFloat64(), 'g', -1, 64))
	case 4:
		return []Decimal{{}, MaxDecimal, MustParseDecimal("-1e-6176"), MustParseDecimal("1e6144")}[rng.IntN(4)]
	}
	d, _ := decimalOf(rng.Uint64(), rng.Uint64(), rng.IntN(MaxExponent-TinyExponent+1)+TinyExponent, rng.IntN(2) == 0)
	return d
}

// decimalOf makes a Decimal of any bits: the coefficient hi·2^64+lo
// reduced below 10^Precision, and false if the exponent puts it beyond
// the limits.
func decimalOf(hi, lo uint64, exp int, neg bool) (Decimal, bool) {
	c := u128{hi % (1 << coeffHiBits), lo}
	if limit := (u128{0, 1}).mulPow10(Precision); c.hi > limit.hi || c.hi == limit.hi && c.lo >= limit.lo {
		lo, borrow := bits.Sub64(c.lo, limit.lo, 0) // c < 2^113 < 2·10^34
		c = u128{c.hi - limit.hi - borrow, lo}
	}
	c, zeros := c.stripZeros()
	exp += zeros
	var buf [40]byte
	if n := len(c.appendDecimal(buf[:0])); exp < TinyExponent || exp+n-1 > MaxExponent {
		return Decimal{}, false
	}
	return makeDecimal(neg, c, exp), true
}

func randomTime(rng *rand.Rand) time.Time {
	t := time.Unix(rng.Int64N(400*365*86400)-100*365*86400, 0)
	if rng.IntN(2) == 0 {
		t = t.Add(time.Duration(rng.IntN(1e9)))
	}
	return t.UTC()
}

func TestFastDecodeTakesWhatAppendJSONWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		c := randomCommand(rng)
		wire := c.AppendJSON(nil)
		got, ok := fastDecodeCommand(wire)
		if !ok || got != c {
			t.Fatalf("fastDecodeCommand(%s) = %+v, %v; want %+v", wire, got, ok, c)
		}
		checkAgrees(t, commandCodec, wire)

		e := randomEvent(rng)
		wire = e.AppendJSON(nil)
		gotE, ok := fastDecodeEvent(wire)
		escaped := strings.ContainsAny(e.Message, "\"\t") // written escaped: the slow path's job
		if (!ok && !escaped) || (ok && gotE != e) {
			t.Fatalf("fastDecodeEvent(%s) = %+v, %v; want %+v", wire, gotE, ok, e)
		}
		checkAgrees(t, eventCodec, wire)
	}
}

// Records that mean the same as the canonical form, or nearly: each must
// decode exactly as encoding/json decodes it, whichever path takes it.
var decodeCases = []string{
	`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":3},"timestamp":"2026-11-23T12:00:00Z"}`,
	` { "timestamp" : "2026-11-23T12:00:00.5Z" , "data" : { "value" : -0.25e+2 , "value-id" : "AAAAAAAA-1111-1111-1111-111111111111" } , "action" : "CreateValue" , "id" : "22222222-2222-2222-2222-222222222222" } ` + "\n",
	`{"id":"22222222-2222-2222-2222-222222222222","action":"UpdateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","operation":"multiply","value":3}}`,
	`{"id":"22222222-2222-2222-2222-222222222222","action":"UpdateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","operation":"MULTIPLY","value":1E400}}`,
	`{"id":"22222222-2222-2222-2222-222222222222","action":"UpdateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","operation":null,"value":3}}`,
	`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":3},"timestamp":"2026-02-30T12:00:00Z"}`,
	`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":3},"timestamp":"2026-11-23T12:00:00+01:00"}`,
	`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":3},"timestamp":"2026-11-23T12:00:00.1234567891Z"}`,
	`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":3},"timestamp":"2026-11-23T24:00:00Z"}`,
	`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":3,"value":4}}`,
	`{"ID":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":3}}`,
	`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","extra":[1,2],"data":{"value-id":"11111111-1111-1111-1111-111111111111","value":3}}`,
	`{"id":"22222222-2222-2222-2222-222222222222","action":"Create\u0056alue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":3}}`,
	`{"id":"urn:uuid:22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111111111111111111111111111","value":3}}`,
	`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":03}}`,
	`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":3.}}`,
	`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":3}} x`,
	`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":3},}`,
	`{"id":"22222222-2222-2222-2222-222222222222","parent-id":"33333333-2222-2222-2222-222222222222","action":"ValueUpdated","data":{"value-id":"11111111-1111-1111-1111-111111111111","operation":"ADD","value":1,"result":2},"timestamp":"2026-11-23T12:00:00.000000001Z"}`,
	`{"id":"22222222-2222-2222-2222-222222222222","parent-id":"33333333-2222-2222-2222-222222222222","action":"ValueUpdated","data":{"value-id":"11111111-1111-1111-1111-111111111111","operation":"ADD","value":1}}`,
	`{"id":"22222222-2222-2222-2222-222222222222","parent-id":"33333333-2222-2222-2222-222222222222","action":"CommandRejected","data":{"value-id":"11111111-1111-1111-1111-111111111111","reason":"value_not_found","message":"caf\u00e9 \"x\""}}`,
	`{"id":"22222222-2222-2222-2222-222222222222","parent-id":"33333333-2222-2222-2222-222222222222","action":"CommandRejected","data":{"value-id":"11111111-1111-1111-1111-111111111111","reason":"custom","message":"` + "\xff" + `"}}`,
	`{"id":"22222222-2222-2222-2222-222222222222","parent-id":"33333333-2222-2222-2222-222222222222","action":"CommandRejected","data":{"value-id":"11111111-1111-1111-1111-111111111111","reason":""}}`,
	`{"id":"22222222-2222-2222-2222-222222222222","parent-id":"33333333-2222-2222-2222-222222222222","action":"ValueCreated","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":-0}}`,
	// Text an encoder gets wrong, escaped and raw.
	`{"id":"22222222-2222-2222-2222-222222222222","parent-id":"33333333-2222-2222-2222-222222222222","action":"CommandRejected","data":{"value-id":"11111111-1111-1111-1111-111111111111","reason":"a\"b\\c\u0001","message":"\u0000\u001f\b\f\n\r\t\/ \ud83d\ude00 \ud800 \u2028\u2029 \uFFFD"},"timestamp":"2026-11-23T12:00:00Z"}`,
	`{"id":"22222222-2222-2222-2222-222222222222","parent-id":"33333333-2222-2222-2222-222222222222","action":"CommandRejected","data":{"value-id":"11111111-1111-1111-1111-111111111111","reason":"value_not_found","message":"` + "\u2028\u2029\x7f<>&😀 \xed\xa0\x80 \xc3" + `"},"timestamp":"2026-11-23T12:00:00Z"}`,
	`{"id":"22222222-2222-2222-2222-222222222222","parent-id":"33333333-2222-2222-2222-222222222222","action":"CommandRejected","data":{"value-id":"11111111-1111-1111-1111-111111111111","reason":"` + "\x01\xff" + `","message":"` + "tab\there" + `"},"timestamp":"2026-11-23T12:00:00Z"}`,
	// Numbers at the edges of float64.
	`{"id":"22222222-2222-2222-2222-222222222222","parent-id":"33333333-2222-2222-2222-222222222222","action":"ValueUpdated","data":{"value-id":"11111111-1111-1111-1111-111111111111","operation":"DIVIDE","value":1.7976931348623157e308,"result":5e-324},"timestamp":"2026-11-23T12:00:00Z"}`,
	`{"id":"22222222-2222-2222-2222-222222222222","parent-id":"33333333-2222-2222-2222-222222222222","action":"ValueUpdated","data":{"value-id":"11111111-1111-1111-1111-111111111111","operation":"ADD","value":123456789012345678901234567890,"result":-1.0E-7},"timestamp":"2026-11-23T12:00:00Z"}`,
	`{"id":"22222222-2222-2222-2222-222222222222","parent-id":"33333333-2222-2222-2222-222222222222","action":"ValueCreated","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":1.8e308},"timestamp":"2026-11-23T12:00:00Z"}`,
	// Timestamps whose UTC form RFC 3339 cannot write.
	`{"id":"22222222-2222-2222-2222-222222222222","parent-id":"33333333-2222-2222-2222-222222222222","action":"ValueCreated","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":1},"timestamp":"0000-01-01T00:00:00+01:00"}`,
	`{"id":"22222222-2222-2222-2222-222222222222","action":"CreateValue","data":{"value-id":"11111111-1111-1111-1111-111111111111","value":3},"timestamp":"9999-12-31T23:30:00-01:00"}`,
}

func TestDecodeAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range decodeCases {
		checkAgrees(t, commandCodec, []byte(in))
		checkAgrees(t, eventCodec, []byte(in))
	}
}

// checkAgrees checks that the fast path and the product's decoder read b
// as encoding/json does (the fast path may decline), and that what they
// read goes round.
func checkAgrees[R wireRecord](t *testing.T, c codec[R], b []byte) {
	t.Helper()
	want, wantErr := c.reference(b)
	if fast, ok := c.fast(b); ok && (wantErr != nil || fast != want) {
		t.Fatalf("fast path took %q as %+v; encoding/json says %+v, %v", b, fast, want, wantErr)
	}
	if got, err := c.decode(b); (err != nil) != (wantErr != nil) || got != want {
		t.Fatalf("%s(%q) = %+v, %v; encoding/json says %+v, %v", c.name, b, got, err, want, wantErr)
	}
	if wantErr == nil {
		checkRoundTrip(t, c, want, want)
	}
}

// FuzzDecode checks the fast path against encoding/json on any input:
//
//	go test -run XXX -fuzz FuzzDecode ./domain
func FuzzDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		f.Add(randomCommand(rng).AppendJSON(nil))
		f.Add(randomEvent(rng).AppendJSON(nil))
	}
	for _, in := range decodeCases {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkAgrees(t, commandCodec, b)
		checkAgrees(t, eventCodec, b)
	})
}
