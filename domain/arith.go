package domain

import (
	"math/bits"

	"github.com/cockroachdb/apd/v3"
)

// The arithmetic of Decimals is github.com/cockroachdb/apd's (the General
// Decimal Arithmetic specification, as in CockroachDB), in a context with
// decimal128's limits: every rounding, overflow and underflow is apd's.
//
// In front of it, exact returns the results that need none of these: a sum
// or a difference that has at most 34 digits, a product of operands of at
// most 19 digits that has at most 34, a quotient that comes out even. That
// is most of what a calculator is asked, and it costs a few integer
// operations, where apd converts, rescales and allocates (apd keeps
// coefficients below 2^128 inline, but its rescaling and long division
// allocate). TestExactAgreesWithAPD holds the two to the same results.
var arithmetic = apd.Context{
	Precision:   Precision,
	MaxExponent: MaxExponent,
	MinExponent: TinyExponent + Precision - 1, // apd's limit is on the first digit; the last may go Precision-1 places lower
	Rounding:    apd.RoundHalfEven,
}

// Apply computes x <op> operand. ADD, SUBTRACT and MULTIPLY are exact when
// the result has at most Precision significant digits; every result with
// more (any DIVIDE that does not come out even, say 1 / 3) is rounded to
// Precision digits, half to even, and so is a result with a digit below
// 1e-6176, to that place.
//
// reject is empty when the result is a Decimal. Otherwise it says why there
// is none: DivisionByZero, Overflow (the magnitude would be 1e6145 or more)
// or Underflow (the result is not 0, but nearer to 0 than half of 1e-6176:
// it would lose every digit).
func (op Operation) Apply(x, operand Decimal) (result Decimal, reject Reason) {
	if op == Divide && operand.IsZero() {
		return Decimal{}, DivisionByZero
	}
	if z, ok := exact(op, x, operand); ok {
		return z, ""
	}
	return applyAPD(op, x, operand)
}

// applyAPD is Apply through apd.
func applyAPD(op Operation, x, operand Decimal) (result Decimal, reject Reason) {
	var a, b, z apd.Decimal
	x.toAPD(&a)
	operand.toAPD(&b)
	var cond apd.Condition
	var err error
	switch op {
	case Add:
		cond, err = arithmetic.Add(&z, &a, &b)
	case Subtract:
		cond, err = arithmetic.Sub(&z, &a, &b)
	case Multiply:
		cond, err = arithmetic.Mul(&z, &a, &b)
	case Divide:
		if operand.IsZero() {
			return Decimal{}, DivisionByZero
		}
		cond, err = arithmetic.Quo(&z, &a, &b)
		if err == nil && cond.Subnormal() && cond.Inexact() {
			cond, err = quoSubnormal(&z, &a, &b)
		}
	default:
		return Decimal{}, Overflow
	}
	switch {
	case err != nil || cond.Overflow() || z.Form != apd.Finite:
		return Decimal{}, Overflow
	case z.Coeff.Sign() == 0 && cond.Inexact():
		return Decimal{}, Underflow
	}
	return fromAPD(&z), ""
}

// wide divides with two more digits than a Decimal holds and no exponent
// limit, rounding 05up (toward 0, but away from 0 where the last digit
// would be 0 or 5): rounding that quotient again to a Decimal's last place
// gives the exact quotient rounded once.
var wide = apd.Context{
	Precision:   Precision + 2,
	MaxExponent: apd.MaxExponent,
	MinExponent: apd.MinExponent,
	Rounding:    apd.Round05Up,
}

// quoSubnormal sets z to a / b for a quotient below 1e-6143, whose last
// digit is at 1e-6176 and which therefore has fewer than 34 digits. apd's
// Quo rounds such a quotient twice, to 34 digits and then to that place,
// which can land a hair more than half a unit off (FuzzApply found
// 1e-7 / -7.999999999999999999901999999999997e+6144); this rounds it once.
func quoSubnormal(z, a, b *apd.Decimal) (apd.Condition, error) {
	var q apd.Decimal
	wideCond, err := wide.Quo(&q, a, b)
	if err != nil {
		return wideCond, err
	}
	cond, err := arithmetic.Round(z, &q)
	return cond | wideCond&apd.Inexact, err
}

// toAPD sets z to d.
func (d Decimal) toAPD(z *apd.Decimal) {
	c := d.coeff()
	z.Form, z.Negative, z.Exponent = apd.Finite, d.negative(), int32(d.exponent())
	if c.hi == 0 {
		z.Coeff.SetUint64(c.lo)
		return
	}
	var lo apd.BigInt
	z.Coeff.SetUint64(c.hi)
	z.Coeff.Lsh(&z.Coeff, 64)
	z.Coeff.Or(&z.Coeff, lo.SetUint64(c.lo))
}

// fromAPD returns z, a finite apd.Decimal within the arithmetic context's
// limits, as a Decimal: its trailing zeros stripped (apd keeps them: 1.5 × 2
// is 3.0 there, 6 / 2 is 3.000…0) and -0 made 0.
func fromAPD(z *apd.Decimal) Decimal {
	var c u128
	if z.Coeff.IsUint64() {
		c.lo = z.Coeff.Uint64()
	} else {
		var hi apd.BigInt
		c.hi = hi.Rsh(&z.Coeff, 64).Uint64()
		c.lo = z.Coeff.Uint64() // the low 64 bits
	}
	c, zeros := c.stripZeros()
	return makeDecimal(z.Negative, c, int(z.Exponent)+zeros)
}

// exact returns x <op> y when the exact result is a Decimal well inside
// the limits and cheap to find: a sum or a difference of at most 34 digits,
// a product of two coefficients below 2^64 that has at most 34 digits, a
// quotient by a coefficient below 2^64 that comes out even. ok is false for
// anything else, which applyAPD then decides. y is not 0 for a Divide.
func exact(op Operation, x, y Decimal) (z Decimal, ok bool) {
	xc, yc := x.coeff(), y.coeff()
	xn, yn := x.negative(), y.negative()
	xe, ye := x.exponent(), y.exponent()
	var c u128
	var e int
	switch op {
	case Subtract:
		yn = !yn
		fallthrough
	case Add:
		switch {
		case x.IsZero():
			return makeDecimal(yn, yc, ye), true
		case y.IsZero():
			return x, true
		}
		e = min(xe, ye)
		a, aok := xc.scaled(xe - e)
		b, bok := yc.scaled(ye - e)
		if !aok || !bok {
			return Decimal{}, false
		}
		if xn == yn {
			lo, carry := bits.Add64(a.lo, b.lo, 0) // both below 10^34: no carry out of hi
			c = u128{a.hi + b.hi + carry, lo}
		} else {
			if a.less(b) {
				a, b, xn = b, a, yn
			}
			lo, borrow := bits.Sub64(a.lo, b.lo, 0)
			c = u128{a.hi - b.hi - borrow, lo}
		}
	case Multiply:
		if xc.hi|yc.hi != 0 {
			return Decimal{}, false
		}
		c.hi, c.lo = bits.Mul64(xc.lo, yc.lo)
		e, xn = xe+ye, xn != yn
	case Divide:
		if yc.hi != 0 {
			return Decimal{}, false
		}
		if q, r := xc.divmod64(yc.lo); r == 0 { // the quotient has no more digits than x
			c, e, xn = q, xe-ye, xn != yn
			break
		}
		if xc.hi != 0 {
			return Decimal{}, false
		}
		// Scale x's coefficient up to 34 digits; if y's divides it, the
		// quotient is exact and has at most 34 digits.
		k := Precision - digits64(xc.lo)
		q, r := xc.mulPow10(k).divmod64(yc.lo)
		if r != 0 {
			return Decimal{}, false
		}
		c, e, xn = q, xe-ye-k, xn != yn
	default:
		return Decimal{}, false
	}
	if !c.less(tenTo34) {
		return Decimal{}, false // more than 34 digits: rounded by apd
	}
	c, zeros := c.stripZeros()
	e += zeros
	if c.isZero() {
		return Decimal{}, true
	}
	if e < TinyExponent || e > MaxExponent-Precision && e+digits128(c)-1 > MaxExponent {
		return Decimal{}, false
	}
	return makeDecimal(xn, c, e), true
}

// scaled returns x × 10^k if that is below 10^34.
func (x u128) scaled(k int) (u128, bool) {
	if k == 0 {
		return x, true
	}
	if k > Precision || !x.less(tenTo[Precision-k]) {
		return u128{}, false
	}
	return x.mulPow10(k), true
}

// tenTo holds 10^0 to 10^34.
var tenTo = func() (t [Precision + 1]u128) {
	for k := range t {
		t[k] = u128{0, 1}.mulPow10(k)
	}
	return t
}()

// tenTo34 is 10^34: every coefficient is below it.
var tenTo34 = tenTo[Precision]

func (x u128) less(y u128) bool { return x.hi < y.hi || x.hi == y.hi && x.lo < y.lo }

// digits64 is the number of decimal digits of x (1 for 0).
func digits64(x uint64) int {
	n := 1
	for n < len(pow10) && x >= pow10[n] {
		n++
	}
	return n
}

// digits128 is the number of decimal digits of x, which is below 10^34.
func digits128(x u128) int {
	if x.hi == 0 {
		return digits64(x.lo)
	}
	q, _ := x.divmod64(pow10[19])
	return 19 + digits64(q.lo)
}
