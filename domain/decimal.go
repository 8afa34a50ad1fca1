package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"reflect"
	"strconv"
)

// Decimal is a number held exactly in decimal: up to Precision significant
// digits, a magnitude at most 9.999…9e6144 (Precision nines) and no digit
// below 1e-6176: the numbers of IEEE 754's decimal128. Every number a
// client writes within these limits is kept exactly as written (2.3 is 2.3,
// 9007199254740993 is 9007199254740993); one outside them is refused, never
// rounded.
//
// The zero value is 0. A Decimal is 16 bytes with no pointer, and its
// representation is canonical (the coefficient has no trailing zero, and 0
// has no sign and exponent 0), so == tells whether two are the same number:
// 2.50 and 2.5 are one Decimal, and so are -0 and 0.
type Decimal struct {
	// hi holds the sign (bit 63), the exponent (bits 49 to 62, two's
	// complement) and the coefficient's bits 64 to 112; lo holds the
	// coefficient's bits 0 to 63. The number is ±coefficient × 10^exponent.
	hi, lo uint64
}

// The limits of a Decimal.
const (
	// Precision is the most significant digits a Decimal holds.
	Precision = 34
	// MaxExponent is the exponent of the largest magnitude's first digit:
	// no Decimal is 1e6145 or more in magnitude.
	MaxExponent = 6144
	// TinyExponent is the place of the smallest digit a Decimal holds: no
	// nonzero Decimal is below 1e-6176 in magnitude.
	TinyExponent = -6176
)

const (
	coeffHiBits = 49
	coeffHiMask = 1<<coeffHiBits - 1
	signBit     = 1 << 63
)

// makeDecimal packs a canonical coefficient (below 10^34, no trailing zero
// unless 0) and exponent.
func makeDecimal(neg bool, c u128, exp int) Decimal {
	if c.isZero() {
		return Decimal{}
	}
	hi := c.hi | uint64(exp)&0x3fff<<coeffHiBits
	if neg {
		hi |= signBit
	}
	return Decimal{hi: hi, lo: c.lo}
}

func (d Decimal) coeff() u128   { return u128{d.hi & coeffHiMask, d.lo} }
func (d Decimal) exponent() int { return int(int64(d.hi<<1) >> (coeffHiBits + 1)) }
func (d Decimal) negative() bool {
	return d.hi&signBit != 0
}

// IsZero reports whether d is 0.
func (d Decimal) IsZero() bool { return d == Decimal{} }

// Sign returns -1, 0 or +1 as d is negative, zero or positive.
func (d Decimal) Sign() int {
	switch {
	case d.IsZero():
		return 0
	case d.negative():
		return -1
	}
	return 1
}

// DecimalFromInt returns i as a Decimal.
func DecimalFromInt(i int64) Decimal {
	neg, c := i < 0, uint64(i)
	if neg {
		c = -c
	}
	exp := 0
	for c != 0 && c%10 == 0 {
		c /= 10
		exp++
	}
	return makeDecimal(neg, u128{0, c}, exp)
}

// ParseDecimal reads a JSON number (RFC 8259: -12.5e3, but not +1, .5, 1.
// or 0x10). It fails with a *NumberError for anything else, and for a number
// a Decimal cannot hold: more than Precision significant digits, or a
// magnitude outside the limits.
func ParseDecimal(s string) (Decimal, error) {
	d, n, status := parseNumber([]byte(s))
	if n != len(s) {
		status = numberSyntax // whatever the number before it
	}
	if status != numberOK {
		return Decimal{}, newNumberError(s, status)
	}
	return d, nil
}

// MustParseDecimal is ParseDecimal for numbers known to be valid (constants,
// tests); it panics on an error.
func MustParseDecimal(s string) Decimal {
	d, err := ParseDecimal(s)
	if err != nil {
		panic(err)
	}
	return d
}

// numberStatus is what parseNumber found.
type numberStatus uint8

const (
	numberOK numberStatus = iota
	numberSyntax
	numberTooPrecise // more significant digits than Precision
	numberTooLarge   // a magnitude of 1e6145 or more
	numberTooSmall   // a digit below 1e-6176
)

// parseNumber reads the JSON number at the start of b, straight into a
// Decimal (never through a float64), and returns it with the number of bytes
// it took. It does not allocate.
func parseNumber(b []byte) (d Decimal, n int, status numberStatus) {
	var (
		i   int
		neg bool
		acc coefficient
	)
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = acc.digits(b, i)
	default:
		return Decimal{}, i, numberSyntax
	}
	frac := 0 // digits after the decimal point
	if i < len(b) && b[i] == '.' {
		start := i + 1
		if i = acc.digits(b, start); i == start {
			return Decimal{}, i, numberSyntax
		}
		frac = i - start
	}
	var exp int64 // the exponent written after e or E
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		expNeg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			expNeg = b[i] == '-'
			i++
		}
		start := i
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
			if exp < 1e12 { // far beyond any limit: saturate
				exp = exp*10 + int64(b[i]-'0')
			}
		}
		if i == start {
			return Decimal{}, i, numberSyntax
		}
		if expNeg {
			exp = -exp
		}
	}
	switch {
	case acc.n == 0:
		return Decimal{}, i, numberOK // 0, -0, 0.000e99: all 0
	case acc.n > Precision:
		return Decimal{}, i, numberTooPrecise
	}
	q := exp - int64(frac) + int64(acc.zeros) // the place of the last nonzero digit
	switch {
	case q+int64(acc.n)-1 > MaxExponent:
		return Decimal{}, i, numberTooLarge
	case q < TinyExponent:
		return Decimal{}, i, numberTooSmall
	}
	return makeDecimal(neg, acc.value(), int(q)), i, numberOK
}

// coefficient accumulates the significant digits of a number as it is
// read. Trailing zeros never enter it: a run of zeros is counted, and only
// multiplied in when a nonzero digit follows, so the result is canonical as
// it is read. The first 19 digits go in a uint64, the rest (up to 34) in a
// u128.
type coefficient struct {
	lo    uint64 // the digits, while n <= 19
	c     u128   // the digits, once n > 19
	n     int    // significant digits up to the last nonzero one (more than Precision: too many)
	zeros int    // zeros since the last nonzero digit
}

// digits reads the run of digits in b from i and returns where it ends.
func (a *coefficient) digits(b []byte, i int) int {
	for ; i < len(b); i++ {
		x := b[i] - '0'
		switch {
		case x > 9:
			return i
		case x == 0:
			if a.n > 0 {
				a.zeros++
			}
			continue
		}
		n := a.n + a.zeros + 1
		switch {
		case n <= 19:
			a.lo = a.lo*pow10[a.zeros+1] + uint64(x)
		case n <= Precision:
			if a.n <= 19 {
				a.c = u128{0, a.lo}
			}
			a.c = a.c.mulPow10(a.zeros + 1).add64(uint64(x))
		}
		a.n, a.zeros = n, 0
	}
	return i
}

// value is the coefficient read, if it has at most Precision digits.
func (a *coefficient) value() u128 {
	if a.n <= 19 {
		return u128{0, a.lo}
	}
	return a.c
}

// NumberError says why a number is not a Decimal.
type NumberError struct {
	Number string // the number as written, shortened when long
	Reason string
}

func (e *NumberError) Error() string { return "number " + e.Number + " " + e.Reason }

// maxQuoted is the most of a number a NumberError repeats.
const maxQuoted = 48

func newNumberError(number string, status numberStatus) *NumberError {
	if len(number) > maxQuoted {
		number = number[:maxQuoted/2] + "…" + number[len(number)-maxQuoted/2:]
	}
	e := &NumberError{Number: number}
	switch status {
	case numberTooPrecise:
		e.Reason = fmt.Sprintf("has more than %d significant digits, the most that are kept exactly", Precision)
	case numberTooLarge:
		e.Reason = "is too large: the largest magnitude kept is " + maxDecimal
	case numberTooSmall:
		e.Reason = fmt.Sprintf("has a digit below 1e%d, the smallest place kept", TinyExponent)
	default:
		e.Number = strconv.Quote(number)
		e.Reason = "is not a JSON number"
	}
	return e
}

// MaxDecimal is the largest Decimal: Precision nines times 10^6111.
var MaxDecimal = MustParseDecimal(maxDecimal)

const maxDecimal = "9.999999999999999999999999999999999e+6144"

// Append appends d as a JSON number with exactly its digits, laid out as
// encoding/json lays out a float64: positional from 1e-6 up to 1e21 (2.3,
// 9007199254740993, 0.000001), with an exponent otherwise (1e+21, 1.5e-7).
func (d Decimal) Append(b []byte) []byte {
	if d.IsZero() {
		return append(b, '0')
	}
	if d.negative() {
		b = append(b, '-')
	}
	if d.hi&^signBit == 0 { // an integer below 2^64 (exponent 0): the common case
		return strconv.AppendUint(b, d.lo, 10)
	}
	var buf [40]byte
	digits := d.coeff().appendDecimal(buf[:0])
	n, exp := len(digits), d.exponent()
	switch adj := exp + n - 1; {
	case adj < -6 || adj >= 21:
		b = append(b, digits[0])
		if n > 1 {
			b = append(b, '.')
			b = append(b, digits[1:]...)
		}
		b = append(b, 'e')
		if adj >= 0 {
			b = append(b, '+')
		}
		return strconv.AppendInt(b, int64(adj), 10)
	case exp >= 0:
		b = append(b, digits...)
		for range exp {
			b = append(b, '0')
		}
		return b
	case n > -exp:
		b = append(b, digits[:n+exp]...)
		b = append(b, '.')
		return append(b, digits[n+exp:]...)
	default:
		b = append(b, '0', '.')
		for range -exp - n {
			b = append(b, '0')
		}
		return append(b, digits...)
	}
}

// Digits appends d's significant digits to b (no sign, no leading or
// trailing zero; "0" for 0) and returns them with the place of the last:
// |d| is digits × 10^exp. It is for writing d in another layout.
func (d Decimal) Digits(b []byte) (digits []byte, exp int) {
	start := len(b)
	b = d.coeff().appendDecimal(b)
	return b[start:], d.exponent()
}

// String returns d as Append writes it.
func (d Decimal) String() string {
	var buf [64]byte
	return string(d.Append(buf[:0]))
}

// MarshalJSON implements json.Marshaler: d as a JSON number.
func (d Decimal) MarshalJSON() ([]byte, error) { return d.Append(nil), nil }

var decimalType = reflect.TypeFor[Decimal]()

// UnmarshalJSON implements json.Unmarshaler. It takes a JSON number and
// refuses one that a Decimal cannot hold with a *NumberError; any other JSON
// value is a *json.UnmarshalTypeError. null changes nothing (use *Decimal to
// tell it apart).
func (d *Decimal) UnmarshalJSON(b []byte) error {
	if len(b) == 0 {
		return &json.UnmarshalTypeError{Value: "nothing", Type: decimalType}
	}
	switch b[0] {
	case 'n':
		return nil
	case '"':
		return &json.UnmarshalTypeError{Value: "string", Type: decimalType}
	case '{':
		return &json.UnmarshalTypeError{Value: "object", Type: decimalType}
	case '[':
		return &json.UnmarshalTypeError{Value: "array", Type: decimalType}
	case 't', 'f':
		return &json.UnmarshalTypeError{Value: "bool", Type: decimalType}
	}
	x, n, status := parseNumber(b)
	if n != len(b) {
		status = numberSyntax
	}
	if status != numberOK {
		return newNumberError(string(b), status)
	}
	*d = x
	return nil
}

// u128 is an unsigned 128-bit integer: a coefficient.
type u128 struct{ hi, lo uint64 }

func (x u128) isZero() bool { return x.hi|x.lo == 0 }

// pow10 holds the powers of ten that fit in a uint64.
var pow10 = func() (t [20]uint64) {
	t[0] = 1
	for i := 1; i < len(t); i++ {
		t[i] = t[i-1] * 10
	}
	return t
}()

// mulPow10 returns x × 10^k; the product must fit in 128 bits.
func (x u128) mulPow10(k int) u128 {
	for k > 0 {
		step := min(k, 19)
		hi, lo := bits.Mul64(x.lo, pow10[step])
		x = u128{x.hi*pow10[step] + hi, lo}
		k -= step
	}
	return x
}

// add64 returns x + y; the sum must fit in 128 bits.
func (x u128) add64(y uint64) u128 {
	lo, carry := bits.Add64(x.lo, y, 0)
	return u128{x.hi + carry, lo}
}

// divmod64 returns x / y and x % y.
func (x u128) divmod64(y uint64) (u128, uint64) {
	qhi, r := x.hi/y, x.hi%y
	qlo, r := bits.Div64(r, x.lo, y)
	return u128{qhi, qlo}, r
}

// stripZeros divides x by ten as long as it is a multiple of ten, and
// returns by how many places.
func (x u128) stripZeros() (u128, int) {
	if x.isZero() {
		return x, 0
	}
	if x.hi == 0 { // divisions by constants: multiplications
		c, n := x.lo, 0
		for c%10000 == 0 {
			c, n = c/10000, n+4
		}
		for c%10 == 0 {
			c, n = c/10, n+1
		}
		return u128{0, c}, n
	}
	n := 0
	for _, k := range [...]int{16, 8, 4, 2, 1} {
		for {
			q, r := x.divmod64(pow10[k])
			if r != 0 {
				break
			}
			x, n = q, n+k
		}
	}
	return x, n
}

// appendDecimal appends x's decimal digits. x must be below 10^38.
func (x u128) appendDecimal(b []byte) []byte {
	if x.hi == 0 {
		return strconv.AppendUint(b, x.lo, 10)
	}
	q, r := x.divmod64(pow10[19]) // q < 10^19: it fits in lo
	b = strconv.AppendUint(b, q.lo, 10)
	var buf [19]byte
	for i := len(buf) - 1; i >= 0; i-- {
		buf[i] = byte('0' + r%10)
		r /= 10
	}
	return append(b, buf[:]...)
}

// Bits returns d's 128 bits, for a binary encoding (a snapshot's);
// DecimalFromBits reads them back.
func (d Decimal) Bits() (hi, lo uint64) { return d.hi, d.lo }

// DecimalFromBits returns the Decimal whose Bits are hi and lo, or an error
// when no Decimal has them (its coefficient is 10^34 or more, ends in a
// zero, or its exponent is out of range).
func DecimalFromBits(hi, lo uint64) (Decimal, error) {
	d := Decimal{hi: hi, lo: lo}
	c := d.coeff()
	switch {
	case c.isZero():
		if d != (Decimal{}) {
			return Decimal{}, errors.New("decimal bits: a zero with a sign or an exponent")
		}
		return d, nil
	case !c.less(tenTo34):
		return Decimal{}, errors.New("decimal bits: a coefficient of more than 34 digits")
	}
	if _, r := c.divmod64(10); r == 0 {
		return Decimal{}, errors.New("decimal bits: a coefficient that ends in a zero")
	}
	if exp := d.exponent(); exp < TinyExponent || exp+digits128(c)-1 > MaxExponent {
		return Decimal{}, fmt.Errorf("decimal bits: exponent %d out of range", exp)
	}
	return d, nil
}
