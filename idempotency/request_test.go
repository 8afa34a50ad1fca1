package idempotency

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"calculator/domain"
)

func TestCheckKey(t *testing.T) {
	tests := []struct {
		name, key string
		valid     bool
	}{
		{"one character", "k", true},
		{"a UUID", uuid.NewString(), true},
		{"255 characters", strings.Repeat("x", 255), true},
		{"spaces and punctuation", `order 42: "retry" ~!@#$%^&*()`, true},
		{"empty", "", false},
		{"256 characters", strings.Repeat("x", 256), false},
		{"a tab", "a\tb", false},
		{"DEL", "a\x7fb", false},
		{"not ASCII", "clé", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckKey(tt.key); (err == nil) != tt.valid {
				t.Errorf("CheckKey(%q) = %v, want valid %v", tt.key, err, tt.valid)
			}
		})
	}
}

// The fingerprint covers every member of domain.Command that a request sets.
// A new member (an expected version, say) must change the fingerprint, or
// two different requests under one key would pass for the same: this test
// fails until FingerprintOf and this list are updated together.
func TestFingerprintCoversTheCommand(t *testing.T) {
	var fields []string
	for f := range reflect.TypeFor[domain.Command]().Fields() {
		fields = append(fields, f.Name)
	}
	// ID and Timestamp are the command's, not the request's; ValueID is
	// the request's path for PUT and derived from the key for POST.
	want := []string{"ID", "Action", "ValueID", "Operation", "Value", "ExpectedVersion", "Timestamp"}
	if !slices.Equal(fields, want) {
		t.Fatalf("domain.Command has the fields %v, FingerprintOf knows %v: make the fingerprint cover the new ones", fields, want)
	}
}

func TestFingerprintOf(t *testing.T) {
	valueID := uuid.New()
	put := func(op domain.Operation, v int64) domain.Command {
		return domain.Command{Action: domain.UpdateValue, ValueID: valueID, Operation: op, Value: domain.DecimalFromInt(v)}
	}
	post := func(v int64) domain.Command {
		return domain.Command{Action: domain.CreateValue, Value: domain.DecimalFromInt(v)}
	}
	expecting := func(version int64, c domain.Command) domain.Command { c.ExpectedVersion = version; return c }
	same := []struct {
		name string
		a, b domain.Command
	}{
		{"POST: only the value counts", post(3), domain.Command{ID: uuid.New(), Action: domain.CreateValue, ValueID: uuid.New(), Value: domain.DecimalFromInt(3)}},
		{"PUT: the same request", put(domain.Multiply, 3), put(domain.Multiply, 3)},
		{"PUT: the same If-Match", expecting(2, put(domain.Multiply, 3)), expecting(2, put(domain.Multiply, 3))},
	}
	for _, tt := range same {
		if FingerprintOf(tt.a) != FingerprintOf(tt.b) {
			t.Errorf("%s: the fingerprints differ", tt.name)
		}
	}
	different := []struct {
		name string
		a, b domain.Command
	}{
		{"another value", post(3), post(4)},
		{"another operation", put(domain.Add, 3), put(domain.Subtract, 3)},
		{"another path", put(domain.Add, 3), domain.Command{Action: domain.UpdateValue, ValueID: uuid.New(), Operation: domain.Add, Value: domain.DecimalFromInt(3)}},
		{"another method", post(3), domain.Command{Action: domain.UpdateValue, Operation: domain.Add, Value: domain.DecimalFromInt(3)}},
		{"an If-Match", put(domain.Add, 3), expecting(4, put(domain.Add, 3))},
		{"another If-Match", expecting(4, put(domain.Add, 3)), expecting(5, put(domain.Add, 3))},
	}
	for _, tt := range different {
		if FingerprintOf(tt.a) == FingerprintOf(tt.b) {
			t.Errorf("%s: the fingerprints are equal", tt.name)
		}
	}
}

// TestValueAsTheFloatEraWroteIt: a value that a float64 held keeps the text,
// and so the fingerprint and the ids, that it had when values were
// float64s (strconv.AppendFloat 'g' -1): a request retried across the
// upgrade to decimals is the same command.
func TestValueAsTheFloatEraWroteIt(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	floats := []float64{1, -1, 3, 0.1, 0.1 + 0.2, 2.5, 123456, 1234567, -1e6, 1e-4, 1.5e-5, 1e21, 1e100, 5e-324, math.MaxFloat64, 1<<53 + 1}
	for range 10000 {
		floats = append(floats, math.Float64frombits(rng.Uint64()&^(0x7ff<<52)|uint64(rng.IntN(0x7fe)+1)<<52), rng.NormFloat64()*math.Pow(10, float64(rng.IntN(20)-10)))
	}
	for _, x := range floats {
		want := strconv.FormatFloat(x, 'g', -1, 64)
		if got := string(appendValue(nil, domain.MustParseDecimal(strconv.FormatFloat(x, 'g', -1, 64)))); got != want {
			t.Fatalf("appendValue(%s) = %s; the float era wrote %s", want, got, want)
		}
	}
	// Beyond a float64: its own digits; and the same number, however written.
	for in, want := range map[string]string{"9007199254740993": "9.007199254740993e+15", "2.50": "2.5", "1e6144": "1e+6144", "-0": "0",
		"0.1234567890123456789012345678901234": "0.1234567890123456789012345678901234"} {
		if got := string(appendValue(nil, domain.MustParseDecimal(in))); got != want {
			t.Errorf("appendValue(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestIDsAreDerivedFromKeyAndRequest(t *testing.T) {
	fp := FingerprintOf(domain.Command{Action: domain.CreateValue, Value: domain.DecimalFromInt(3)})
	other := FingerprintOf(domain.Command{Action: domain.CreateValue, Value: domain.DecimalFromInt(4)})
	again := FingerprintOf(domain.Command{Action: domain.CreateValue, Value: domain.DecimalFromInt(3)})
	if fp.CommandID("k") != again.CommandID("k") || fp.ValueID("k") != again.ValueID("k") {
		t.Fatal("the same key and request gave different ids")
	}
	ids := map[uuid.UUID]string{}
	for name, id := range map[string]uuid.UUID{
		"command": fp.CommandID("k"), "value": fp.ValueID("k"),
		"command, other key": fp.CommandID("k2"), "value, other key": fp.ValueID("k2"),
		"command, other request": other.CommandID("k"), "value, other request": other.ValueID("k"),
	} {
		if prev, dup := ids[id]; dup {
			t.Errorf("%s and %s have the same id %s", name, prev, id)
		}
		ids[id] = name
		if id.Version() != 5 {
			t.Errorf("%s id %s is not a UUIDv5", name, id)
		}
	}
}

func TestHeadersRoundTrip(t *testing.T) {
	fp := FingerprintOf(domain.Command{Action: domain.CreateValue, Value: domain.DecimalFromInt(3)})
	h := Headers("my key", fp)
	if h[0].Key != HeaderKey || string(h[0].Value) != "my key" {
		t.Errorf("key header %s=%q", h[0].Key, h[0].Value)
	}
	if h[1].Key != HeaderRequestHash || string(h[1].Value) != fp.String() {
		t.Errorf("request hash header %s=%q, want %s", h[1].Key, h[1].Value, fp)
	}
	if got, ok := parseFingerprint(h[1].Value); !ok || got != fp {
		t.Errorf("parseFingerprint(%q) = %x, %v", h[1].Value, got, ok)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("z", 64), fp.String() + "00"} {
		if _, ok := parseFingerprint([]byte(bad)); ok {
			t.Errorf("parseFingerprint(%q) accepted", bad)
		}
	}
}
