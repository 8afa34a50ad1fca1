package domain

import "testing"

// Bits and DecimalFromBits round-trip every Decimal, and refuse bits that
// no Decimal has.
func TestDecimalBits(t *testing.T) {
	for _, s := range []string{"0", "1", "-1", "2.5", "1e6144", "-9999999999999999999999999999999999e6111", "1e-6176", "123456789012345678901234567890.1234"} {
		d := MustParseDecimal(s)
		got, err := DecimalFromBits(d.Bits())
		if err != nil || got != d {
			t.Errorf("%s: DecimalFromBits(Bits) = %v, %v", s, got, err)
		}
	}
	ten := makeDecimal(false, u128{0, 10}, 0) // not canonical: 1e1 is
	for name, bad := range map[string]Decimal{
		"trailing zero":       ten,
		"35 digits":           makeDecimal(false, tenTo34, 0),
		"negative zero":       {hi: signBit},
		"exponent too small":  makeDecimal(false, u128{0, 1}, TinyExponent-1),
		"magnitude too large": makeDecimal(false, u128{0, 11}, MaxExponent),
	} {
		if _, err := DecimalFromBits(bad.Bits()); err == nil {
			t.Errorf("%s: DecimalFromBits accepted it", name)
		}
	}
}
