package domain

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// AppendJSON must write what encoding/json would: strings and numbers byte
// for byte, and records that are valid JSON which both decoders read back as
// the record written.

// nastyStrings are strings an encoder gets wrong: quotes, backslashes,
// control characters, JavaScript's line separators, invalid UTF-8.
var nastyStrings = []string{
	"",
	"value 11111111-1111-1111-1111-111111111111 does not exist",
	`say "hi"`,
	`C:\path\`,
	"\x00\x01\x1f\x7f",
	"\b\f\n\r\t",
	"<a href='x'>&amp;</a>",
	"ünïcode ✓ 😀",
	"\u2028\u2029",
	"\ufffd",
	"\xff",
	"a\xc3",
	"\xc3\xc3\xbc",
	"\xed\xa0\x80",     // a UTF-16 surrogate written as UTF-8
	"\xf4\x90\x80\x80", // beyond U+10FFFF
	"/*</script>*/",
}

// jsonString is s as encoding/json writes it, without HTML escaping (the
// wire format is not HTML).
func jsonString(t testing.TB, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestAppendStringAsEncodingJSON(t *testing.T) {
	for _, s := range nastyStrings {
		if got, want := appendString(nil, s), jsonString(t, s); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s; encoding/json writes %s", s, got, want)
		}
	}
	for c := range 256 { // every single byte
		s := string([]byte{byte(c)})
		if got, want := appendString(nil, s), jsonString(t, s); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s; encoding/json writes %s", s, got, want)
		}
	}
}

// TestPlainPrefix puts every byte at every place of a string long enough
// for plainPrefix's eight-byte steps.
func TestPlainPrefix(t *testing.T) {
	const plain = "value 11111111-1111-1111 does not exist"
	for c := range 256 {
		for at := range len(plain) {
			s := []byte(plain)
			s[at] = byte(c)
			want := len(plain)
			if !plainByte[c] {
				want = at
			}
			if got := plainPrefix(string(s)); got != want {
				t.Fatalf("plainPrefix(%q) = %d; want %d", s, got, want)
			}
		}
	}
}

// FuzzAppendString:
//
//	go test -run XXX -fuzz FuzzAppendString ./domain
func FuzzAppendString(f *testing.F) {
	for _, s := range nastyStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := appendString(nil, s), jsonString(t, s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s; encoding/json writes %s", s, got, want)
		}
	})
}

var nastyFloats = []float64{
	0, math.Copysign(0, -1), 1, -1, 0.1, 0.1 + 0.2, 1.5, 1e-6, 1e-7, -1e-7, 1.234e-7, 1e20, 1e21, -1e21,
	123456789012345678901234567890, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64,
	0x1p-1022, math.MaxInt64, 1 << 53, 1<<53 + 1, 2 + 0.1 + 0.2,
}

// TestAppendAsEncodingJSONForFloats: a number that a float64 holds as
// written (every number the logs of the float era hold) is written byte for
// byte as encoding/json wrote that float64, so those records keep their form.
func TestAppendAsEncodingJSONForFloats(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	floats := append([]float64(nil), nastyFloats...)
	for range 10000 {
		floats = append(floats, math.Float64frombits(rng.Uint64()&^(0x7ff<<52)|uint64(rng.IntN(0x7fe)+1)<<52), rng.NormFloat64()*1e6)
	}
	for _, x := range floats {
		want, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		d, err := ParseDecimal(string(want))
		if err != nil {
			t.Fatalf("ParseDecimal(%s) = %v", want, err)
		}
		if x == 0 {
			want = []byte("0") // -0 is 0
		}
		if got := d.Append(nil); !bytes.Equal(got, want) {
			t.Fatalf("Append(%v) = %s; encoding/json writes the float64 %s", d, got, want)
		}
	}
}

// nastyNumbers are the Decimals at the edges.
var nastyNumbers = []string{
	"0", "1", "-1", "0.1", "2.3", "1e-6", "1e-7", "1e20", "1e21", "9007199254740993",
	maxDecimal, "-" + maxDecimal, "1e-6176", "-1.000000000000000000000000000000001e-6143",
	"1234567890123456789012345678901234", "0.000001234567890123456789012345678901234",
}

// FuzzAppendJSON builds commands and events from arbitrary field values and
// checks their round trip:
//
//	go test -run XXX -fuzz FuzzAppendJSON ./domain
func FuzzAppendJSON(f *testing.F) {
	for i, s := range nastyStrings {
		x, y := nastyNumbers[i%len(nastyNumbers)], nastyNumbers[(i+3)%len(nastyNumbers)]
		f.Add(uint8(i), string(ValueNotFound), s, x, y, int64(i)*1e8, uint32(i)*1e7)
		f.Add(uint8(i), s, "message", y, x, -int64(i)*1e9, uint32(0))
	}
	f.Fuzz(func(t *testing.T, op uint8, reason, message string, valueText, resultText string, sec int64, nsec uint32) {
		value, valueErr := ParseDecimal(valueText)
		result, resultErr := ParseDecimal(resultText)
		ts := time.Unix(sec, int64(nsec%1e9)).UTC()
		if ts.Year() < 0 || ts.Year() > 9999 { // beyond RFC 3339
			return
		}
		c := Command{ID: cmdID, Action: CreateValue, ValueID: valueID, Value: value, Timestamp: ts}
		e := Event{ID: EventID(cmdID), ParentID: cmdID, Action: ValueCreated, ValueID: valueID, Value: value, Timestamp: ts}
		if valueErr == nil {
			checkRoundTrip(t, commandCodec, c, c)
			checkRoundTrip(t, eventCodec, e, e)
			c.Action, c.Operation = UpdateValue, []Operation{Add, Subtract, Multiply, Divide}[op%4]
			checkRoundTrip(t, commandCodec, c, c)
			if resultErr == nil {
				e.Action, e.Operation, e.Result = ValueUpdated, c.Operation, result
				checkRoundTrip(t, eventCodec, e, e)
			}
		}
		// Text goes through JSON as encoding/json takes it: invalid UTF-8
		// comes back as U+FFFD.
		e = Event{ID: e.ID, ParentID: cmdID, Action: CommandRejected, ValueID: valueID, Reason: Reason(reason), Message: message, Timestamp: ts}
		want := e
		for _, s := range []*string{(*string)(&want.Reason), &want.Message} {
			if err := json.Unmarshal(jsonString(t, *s), s); err != nil {
				t.Fatal(err)
			}
		}
		if want.Reason != "" {
			checkRoundTrip(t, eventCodec, e, want)
		}
	})
}

// wireRecord is a Command or an Event.
type wireRecord interface {
	comparable
	AppendJSON([]byte) []byte
}

// codec is what the wire tests use of a record type: its decoders, and how
// to bring its timestamp to UTC (the wire form keeps the instant, not the
// zone).
type codec[R wireRecord] struct {
	name      string                  // the decoder's name, for messages
	reference func([]byte) (R, error) // through encoding/json
	fast      func([]byte) (R, bool)  // the fast path alone
	decode    func([]byte) (R, error) // the product's decoder
	utc       func(R) R
}

var (
	commandCodec = codec[Command]{"DecodeCommand", decodeCommandJSON, fastDecodeCommand, DecodeCommand,
		func(c Command) Command { c.Timestamp = c.Timestamp.UTC(); return c }}
	eventCodec = codec[Event]{"DecodeEvent", decodeEventJSON, fastDecodeEvent, DecodeEvent,
		func(e Event) Event { e.Timestamp = e.Timestamp.UTC(); return e }}
)

// checkRoundTrip checks that r's wire form is valid JSON and that
// encoding/json and the product's decoder both read it as want.
func checkRoundTrip[R wireRecord](t *testing.T, c codec[R], r, want R) {
	t.Helper()
	same := func(a, b R) bool { return c.utc(a) == c.utc(b) }
	wire := r.AppendJSON(nil)
	if !json.Valid(wire) {
		t.Fatalf("AppendJSON(%+v) = %q: not valid JSON", r, wire)
	}
	if got, err := c.reference(wire); err != nil || !same(got, want) {
		t.Fatalf("encoding/json reads AppendJSON(%+v) = %q as %+v, %v; want %+v", r, wire, got, err, want)
	}
	if got, err := c.decode(wire); err != nil || !same(got, want) {
		t.Fatalf("%s(AppendJSON(%+v) = %q) = %+v, %v; want %+v", c.name, r, wire, got, err, want)
	}
}
