package domain

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

const (
	// 34 digits: the most a Decimal holds.
	digits34 = "1234567890123456789012345678901234"
	nines34  = "9999999999999999999999999999999999"
)

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		in, want string       // want: the number as Append writes it
		status   numberStatus // numberOK, or why it is refused
	}{
		// Kept exactly, whatever a float64 would make of it.
		{"2.3", "2.3", numberOK},
		{"9007199254740993", "9007199254740993", numberOK},
		{"0.30000000000000004", "0.30000000000000004", numberOK},
		{"5e-324", "5e-324", numberOK},
		{"2.5e-324", "2.5e-324", numberOK},
		// Zero has no sign and no exponent.
		{"0", "0", numberOK},
		{"-0", "0", numberOK},
		{"-0.000e-5", "0", numberOK},
		{"0e999999999999999999", "0", numberOK},
		// Trailing zeros are not digits of the number: one Decimal.
		{"2.50", "2.5", numberOK},
		{"1200", "1200", numberOK},
		{"1.2e3", "1200", numberOK},
		{"1.0000000000000000000000000000000000000000", "1", numberOK},
		{"12345678901234567890123456789012340000", "1.234567890123456789012345678901234e+37", numberOK},
		// Laid out as encoding/json lays out a float64.
		{"999999999999999999999", "999999999999999999999", numberOK},
		{"1e21", "1e+21", numberOK},
		{"-12e20", "-1.2e+21", numberOK},
		{"0.000001", "0.000001", numberOK},
		{"1E-7", "1e-7", numberOK},
		{"-1.5e-7", "-1.5e-7", numberOK},
		{"123.456e-2", "1.23456", numberOK},
		// The precision boundary: 34 significant digits.
		{digits34, "1.234567890123456789012345678901234e+33", numberOK},
		{"-0.00" + digits34, "-0.00" + digits34, numberOK},
		{digits34[:20] + "." + digits34[20:], digits34[:20] + "." + digits34[20:], numberOK},
		{digits34 + "5", "", numberTooPrecise},
		{"1." + strings.Repeat("0", 33) + "1", "", numberTooPrecise},
		{"1." + strings.Repeat("0", 32) + "1", "1." + strings.Repeat("0", 32) + "1", numberOK},
		// The largest magnitude.
		{maxDecimal, maxDecimal, numberOK},
		{"-" + maxDecimal, "-" + maxDecimal, numberOK},
		{"1e6144", "1e+6144", numberOK},
		{"1e6145", "", numberTooLarge},
		{"10e6144", "", numberTooLarge},
		{"0.1e6146", "", numberTooLarge},
		{"1e99999999999999999999999", "", numberTooLarge},
		// The smallest place: 1e-6176.
		{"1e-6176", "1e-6176", numberOK},
		{"-123e-6176", "-1.23e-6174", numberOK},
		{"10e-6177", "1e-6176", numberOK},
		{"1e-6177", "", numberTooSmall},
		{"1.5e-6176", "", numberTooSmall},
		{"1e-99999999999999999999999", "", numberTooSmall},
		// Not JSON numbers.
		{"", "", numberSyntax},
		{"-", "", numberSyntax},
		{"+1", "", numberSyntax},
		{".5", "", numberSyntax},
		{"1.", "", numberSyntax},
		{"01", "", numberSyntax},
		{"1e", "", numberSyntax},
		{"1e+", "", numberSyntax},
		{"0x10", "", numberSyntax},
		{"NaN", "", numberSyntax},
		{"Infinity", "", numberSyntax},
		{" 1", "", numberSyntax},
		{"1 ", "", numberSyntax},
		{`"1"`, "", numberSyntax},
	}
	for _, tt := range tests {
		d, err := ParseDecimal(tt.in)
		if tt.status != numberOK {
			var numErr *NumberError
			if !errors.As(err, &numErr) || *numErr != *newNumberError(tt.in, tt.status) {
				t.Errorf("ParseDecimal(%q) = %v, %v; want the error %v", tt.in, d, err, newNumberError(tt.in, tt.status))
			}
			continue
		}
		if err != nil || d.String() != tt.want {
			t.Errorf("ParseDecimal(%q) = %v, %v; want %s", tt.in, d, err, tt.want)
		}
		if d != MustParseDecimal(tt.want) {
			t.Errorf("ParseDecimal(%q) = %#v, but ParseDecimal(%q) = %#v: not canonical", tt.in, d, tt.want, MustParseDecimal(tt.want))
		}
	}
}

func TestNumberErrorsArePrecise(t *testing.T) {
	for in, want := range map[string]string{
		digits34 + "5":                        "number " + digits34 + "5 has more than 34 significant digits, the most that are kept exactly",
		"1e6145":                              "number 1e6145 is too large: the largest magnitude kept is 9.999999999999999999999999999999999e+6144",
		"1.5e-6176":                           "number 1.5e-6176 has a digit below 1e-6176, the smallest place kept",
		"1." + strings.Repeat("0", 100) + "1": "number 1.0000000000000000000000…000000000000000000000001 has more than 34 significant digits, the most that are kept exactly",
		"1.":                                  `number "1." is not a JSON number`,
	} {
		if _, err := ParseDecimal(in); err == nil || err.Error() != want {
			t.Errorf("ParseDecimal(%q) = %v; want %s", in, err, want)
		}
	}
}

func TestDecimalJSON(t *testing.T) {
	var v struct{ A, B *Decimal }
	if err := json.Unmarshal([]byte(`{"A": 9007199254740993, "B": null}`), &v); err != nil || v.A == nil || v.A.String() != "9007199254740993" || v.B != nil {
		t.Fatalf("Unmarshal = %v, %+v", err, v)
	}
	out, err := json.Marshal(struct{ V Decimal }{num("2.3")})
	if err != nil || string(out) != `{"V":2.3}` {
		t.Fatalf("Marshal = %s, %v", out, err)
	}
	for in, want := range map[string]string{
		`{"A": "3"}`:    "json: cannot unmarshal string into Go struct field .A of type domain.Decimal",
		`{"A": true}`:   "json: cannot unmarshal bool into Go struct field .A of type domain.Decimal",
		`{"A": [1]}`:    "json: cannot unmarshal array into Go struct field .A of type domain.Decimal",
		`{"A": {}}`:     "json: cannot unmarshal object into Go struct field .A of type domain.Decimal",
		`{"A": 1e9999}`: "number 1e9999 is too large: the largest magnitude kept is 9.999999999999999999999999999999999e+6144",
	} {
		err := json.Unmarshal([]byte(in), &v)
		if err == nil || err.Error() != want {
			t.Errorf("Unmarshal(%s) = %v; want %s", in, err, want)
		}
	}
}

func TestApply(t *testing.T) {
	tests := []struct {
		x      string
		op     Operation
		y      string
		want   string // the result, if there is one
		reject Reason
	}{
		// The cases.
		{"2", Add, "0.1", "2.1", ""},
		{"2.1", Add, "0.2", "2.3", ""},
		{"0.1", Add, "0.2", "0.3", ""},
		{"9007199254740993", Add, "0", "9007199254740993", ""},
		{"9007199254740992", Add, "1", "9007199254740993", ""},
		{"5e-324", Divide, "2", "2.5e-324", ""},
		{"-0", Multiply, "1", "0", ""},
		// Exact within 34 digits.
		{"1.5", Multiply, "2", "3", ""},
		{"11111111111111111", Multiply, "11111111111111111", "123456790123456787654320987654321", ""},
		{nines34, Add, "1", "1e+34", ""},
		{"0." + nines34, Add, "0." + strings.Repeat("0", 33) + "1", "1", ""},
		{"1e30", Subtract, "1e-3", "999999999999999999999999999999.999", ""},
		{"6", Divide, "2", "3", ""},
		{"1", Divide, "8", "0.125", ""},
		{"1e6144", Divide, "1e6144", "1", ""},
		// Rounded to 34 digits, half to even.
		{"1", Divide, "3", "0." + strings.Repeat("3", 34), ""},
		{"2", Divide, "3", "0." + strings.Repeat("6", 33) + "7", ""},
		{"1e30", Add, "1e-30", "1e+30", ""},
		{nines34, Add, "0.1", nines34, ""},
		{digits34, Add, "0.5", digits34, ""},                             // tie: 4 is even
		{"1234567890123456789012345678901233", Add, "0.5", digits34, ""}, // tie: 3 is odd
		{"1234567890123456789012345678901235", Add, "0.5", "1234567890123456789012345678901236", ""},
		{digits34, Add, "0.5000000001", "1234567890123456789012345678901235", ""}, // above the tie
		{"2000000000000000000000000000000001", Divide, "2", "1e+33", ""},          // …000.5: to even
		{"2000000000000000000000000000000003", Divide, "2", "1000000000000000000000000000000002", ""},
		{"-2000000000000000000000000000000003", Multiply, "0.5", "-1000000000000000000000000000000002", ""},
		// The largest magnitudes.
		{"1e6144", Multiply, "9.99", "9.99e+6144", ""},
		{maxDecimal, Add, "1", maxDecimal, ""}, // 1 is far below the last digit
		{maxDecimal, Add, "4e6110", maxDecimal, ""},
		{maxDecimal, Add, "5e6110", "", Overflow}, // a tie, and 9 is odd: up, to 1e6145
		{maxDecimal, Subtract, "-" + maxDecimal, "", Overflow},
		{"-" + maxDecimal, Subtract, maxDecimal, "", Overflow},
		{"1e6144", Multiply, "10", "", Overflow},
		{"1e3000", Multiply, "1e3145", "", Overflow},
		{"1", Divide, "1e-6176", "", Overflow},
		// The smallest places.
		{"1e-6143", Divide, "10", "1e-6144", ""},
		{"1e-6100", Multiply, "1e-76", "1e-6176", ""},
		{"3e-6176", Divide, "2", "2e-6176", ""}, // 1.5e-6176: to even
		{"1e-6176", Multiply, "0.6", "1e-6176", ""},
		{"1e-6176", Subtract, "1e-6176", "0", ""}, // exactly 0: no underflow
		{"1e-6176", Divide, "2", "", Underflow},   // 0.5e-6176: to even, 0
		{"1e-7", Divide, "-7.999999999999999999901999999999997e+6144", "-1.250000000000000000015313e-6152", ""}, // rounded once, not twice (…312|5000000047…)
		{"-1e-6176", Divide, "3", "", Underflow},
		{"1e-3000", Multiply, "1e-3177", "", Underflow},
		// No negative zero.
		{"-5", Add, "5", "0", ""},
		{"0", Multiply, "-1", "0", ""},
		{"-0", Divide, "-7", "0", ""},
		// Division by zero.
		{"1", Divide, "0", "", DivisionByZero},
		{"0", Divide, "-0", "", DivisionByZero},
	}
	for _, tt := range tests {
		got, reject := tt.op.Apply(num(tt.x), num(tt.y))
		if reject != tt.reject || (reject == "" && got != num(tt.want)) {
			t.Errorf("%s %s %s = %v, %q; want %s, %q", tt.x, tt.op, tt.y, got, reject, tt.want, tt.reject)
		}
	}
}

// TestApplyDoesNotAllocate: operands of up to 19 digits and an exact
// result of up to 34 cost no allocation.
func TestApplyDoesNotAllocate(t *testing.T) {
	x, y := num("-1234567890.123456789"), num("0.0000000000000000008")
	for _, op := range []Operation{Add, Subtract, Multiply, Divide} {
		if n := testing.AllocsPerRun(100, func() { op.Apply(x, y) }); n != 0 {
			t.Errorf("%s allocates %v times", op, n)
		}
	}
}

// FuzzDecimal checks the codec on any text: what ParseDecimal accepts is
// exactly a JSON number (as encoding/json says) that a Decimal can hold;
// what it writes is a JSON number that reads back as the same Decimal and
// has the same value as the text read:
//
//	go test -run XXX -fuzz FuzzDecimal ./domain
func FuzzDecimal(f *testing.F) {
	for _, s := range []string{"0", "-0", "2.3", "9007199254740993", "1e21", "1E-7", "5e-324", digits34, digits34 + "5",
		maxDecimal, "1e6145", "1e-6176", "1e-6177", "0.00000", "1.", "+1", "01", `"1"`, "1e99999999999999"} {
		f.Add(s)
	}
	for _, s := range nastyNumbers {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDecimal(s)
		isNumber := isJSONNumber(s)
		var numErr *NumberError
		switch {
		case err == nil && !isNumber:
			t.Fatalf("ParseDecimal(%q) = %v; encoding/json does not read it as a number", s, d)
		case err != nil && !errors.As(err, &numErr):
			t.Fatalf("ParseDecimal(%q) = %v: not a *NumberError", s, err)
		case err != nil && isNumber != (numErr.Reason != "is not a JSON number"):
			t.Fatalf("ParseDecimal(%q) = %v; but encoding/json says it is a number: %v", s, err, isNumber)
		}
		var viaJSON Decimal
		if jsonErr := viaJSON.UnmarshalJSON([]byte(s)); isNumber && ((jsonErr == nil) != (err == nil) || viaJSON != d) {
			t.Fatalf("UnmarshalJSON(%q) = %v, %v; ParseDecimal says %v, %v", s, viaJSON, jsonErr, d, err)
		}
		if err != nil {
			return
		}
		out := d.Append(nil)
		if !isJSONNumber(string(out)) {
			t.Fatalf("Append(ParseDecimal(%q)) = %s: not a JSON number", s, out)
		}
		if back, err := ParseDecimal(string(out)); err != nil || back != d {
			t.Fatalf("ParseDecimal(Append(ParseDecimal(%q)) = %s) = %v, %v", s, out, back, err)
		}
		if ratOK(s) {
			if want, got := rat(t, s), rat(t, string(out)); want.Cmp(got) != 0 {
				t.Fatalf("ParseDecimal(%q) is %s: %v, not %v", s, out, got, want)
			}
		}
	})
}

// FuzzApply checks the arithmetic against exact rationals: a result is the
// exact one when that has at most 34 digits, and otherwise within half a
// unit of its last digit.
//
//	go test -run XXX -fuzz FuzzApply ./domain
func FuzzApply(f *testing.F) {
	for i, x := range nastyNumbers {
		f.Add(x, uint8(i), nastyNumbers[(i+5)%len(nastyNumbers)])
	}
	f.Add("2", uint8(0), "0.1")
	f.Add("5e-324", uint8(3), "2")
	f.Add(digits34, uint8(2), digits34)
	f.Fuzz(func(t *testing.T, xs string, op uint8, ys string) {
		x, err1 := ParseDecimal(xs)
		y, err2 := ParseDecimal(ys)
		if err1 != nil || err2 != nil || !ratOK(xs) || !ratOK(ys) {
			return
		}
		operation := []Operation{Add, Subtract, Multiply, Divide}[op%4]
		got, reject := operation.Apply(x, y)
		if reject == DivisionByZero {
			if !y.IsZero() {
				t.Fatalf("%v %s %v: division by zero", x, operation, y)
			}
			return
		}
		a, b := rat(t, x.String()), rat(t, y.String())
		exact := new(big.Rat)
		switch operation {
		case Add:
			exact.Add(a, b)
		case Subtract:
			exact.Sub(a, b)
		case Multiply:
			exact.Mul(a, b)
		case Divide:
			exact.Quo(a, b)
		}
		if reject != "" {
			abs := new(big.Rat).Abs(exact)
			if reject == Overflow && abs.Cmp(rat(t, maxDecimal)) <= 0 || reject == Underflow && abs.Cmp(rat(t, "0.5e-6176")) > 0 {
				t.Fatalf("%v %s %v = %v exactly: rejected as %s", x, operation, y, exact.FloatString(10), reject)
			}
			return
		}
		if exact.Sign() != 0 && got.Sign() != 0 && exact.Sign() != got.Sign() {
			t.Fatalf("%v %s %v = %v: wrong sign", x, operation, y, got)
		}
		// A unit of the result's 34th digit, or of the smallest place.
		last := TinyExponent
		if !got.IsZero() {
			adjusted := got.exponent() + len(got.coeff().appendDecimal(nil)) - 1
			last = max(adjusted-(Precision-1), TinyExponent)
		}
		ulp := rat(t, "1e"+strconv.Itoa(last))
		diff := new(big.Rat).Sub(rat(t, got.String()), exact)
		diff.Abs(diff)
		if diff.Mul(diff, big.NewRat(2, 1)).Cmp(ulp) > 0 {
			t.Fatalf("%v %s %v = %v; exactly %v", x, operation, y, got, exact.FloatString(40))
		}
	})
}

// isJSONNumber reports whether encoding/json reads s as one number and
// nothing else.
func isJSONNumber(s string) bool {
	if !json.Valid([]byte(s)) {
		return false
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	tok, err := dec.Token()
	_, isNumber := tok.(json.Number)
	return err == nil && isNumber && strings.TrimSpace(s) == s
}

// ratOK reports whether s has an exponent small enough for an exact
// big.Rat in a fuzz test.
func ratOK(s string) bool {
	i := strings.IndexAny(s, "eE")
	return len(s) < 300 && (i < 0 || len(strings.TrimLeft(s[i+1:], "+-0")) <= 4)
}

func rat(t *testing.T, s string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("big.Rat cannot read %q", s)
	}
	return r
}

// TestExactAgreesWithAPD holds Apply's integer fast path to apd's results.
func TestExactAgreesWithAPD(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	small := func() Decimal {
		exp := []int{0, -1, -2, -5, 3, 20, -40, TinyExponent, TinyExponent + 10, MaxExponent - 5, MaxExponent - 40}[rng.IntN(11)]
		c := []uint64{0, 1, 2, 5, 10, uint64(rng.IntN(1000)), rng.Uint64() >> rng.IntN(64), math.MaxUint64}[rng.IntN(8)]
		hi := uint64(0)
		if rng.IntN(4) == 0 { // a coefficient beyond 64 bits
			hi = rng.Uint64() >> rng.IntN(64)
		}
		d, _ := decimalOf(hi, c, exp, rng.IntN(2) == 0)
		return d
	}
	fast := 0
	for range 200000 {
		x, y := small(), small()
		op := []Operation{Add, Subtract, Multiply, Divide}[rng.IntN(4)]
		if op == Divide && y.IsZero() {
			continue
		}
		got, ok := exact(op, x, y)
		if !ok {
			continue
		}
		fast++
		if want, reject := applyAPD(op, x, y); reject != "" || got != want {
			t.Fatalf("%v %s %v: the fast path says %v; apd says %v, %q", x, op, y, got, want, reject)
		}
	}
	if fast < 50000 {
		t.Fatalf("the fast path took only %d of the cases", fast)
	}
}
