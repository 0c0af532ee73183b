package transform

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// decimal is an exact decimal number: coef * 10^-scale. Values are
// immutable: coef is never changed after construction (so decimals may be
// shared between rows and threads).
type decimal struct {
	coef  *big.Int
	scale int32
}

const (
	// maxDecimalScale bounds the digits after the point a decimal may have,
	// so that a hostile "1e-1000000000" cannot exhaust memory.
	maxDecimalScale = 1000
	// maxDecimalDigits bounds the digits of a decimal's coefficient.
	maxDecimalDigits = 2000
	// divisionScale is the number of digits after the point a decimal
	// division is exact to.
	divisionScale = 20
)

var (
	bigOne = big.NewInt(1)
	bigTen = big.NewInt(10)
	pow10s = func() []*big.Int {
		p := make([]*big.Int, 64)
		p[0] = big.NewInt(1)
		for i := 1; i < len(p); i++ {
			p[i] = new(big.Int).Mul(p[i-1], bigTen)
		}
		return p
	}()
	errDecimalRange = errors.New("decimal out of range (more than 2000 digits)")
)

func pow10(n int32) *big.Int {
	if int(n) < len(pow10s) {
		return pow10s[n]
	}
	return new(big.Int).Exp(bigTen, big.NewInt(int64(n)), nil)
}

func decFromInt(i int64) decimal { return decimal{coef: big.NewInt(i)} }

// parseDecimal reads [+-]digits[.digits][(e|E)[+-]digits], surrounding
// spaces allowed. Canonical input ("-12.340") keeps its scale.
func parseDecimal(s string) (decimal, error) {
	t := strings.TrimSpace(s)
	bad := func() (decimal, error) { return decimal{}, fmt.Errorf("bad decimal %q", s) }
	if t == "" {
		return bad()
	}
	neg := false
	switch t[0] {
	case '+', '-':
		neg = t[0] == '-'
		t = t[1:]
	}
	exp := int64(0)
	if i := strings.IndexAny(t, "eE"); i >= 0 {
		e, err := strconv.ParseInt(t[i+1:], 10, 32)
		if err != nil || e > maxDecimalScale || e < -maxDecimalScale {
			return bad()
		}
		exp = e
		t = t[:i]
	}
	intPart, frac := t, ""
	if i := strings.IndexByte(t, '.'); i >= 0 {
		intPart, frac = t[:i], t[i+1:]
	}
	if intPart == "" && frac == "" {
		return bad()
	}
	for _, part := range [2]string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return bad()
			}
		}
	}
	digits := intPart + frac
	if len(digits) > maxDecimalDigits {
		return decimal{}, fmt.Errorf("bad decimal %q: more than %d digits", s, maxDecimalDigits)
	}
	coef, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return bad()
	}
	scale := int64(len(frac)) - exp
	if scale < 0 {
		coef.Mul(coef, pow10(int32(-scale)))
		scale = 0
	}
	if scale > maxDecimalScale {
		return decimal{}, fmt.Errorf("bad decimal %q: more than %d digits after the point", s, maxDecimalScale)
	}
	if neg {
		coef.Neg(coef)
	}
	return decimal{coef: coef, scale: int32(scale)}, nil
}

// decFromFloat is the decimal of a float's shortest representation (0.1 is
// 0.1, not 0.1000000000000000055511151231257827).
func decFromFloat(f float64) (decimal, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return decimal{}, fmt.Errorf("%v has no decimal value", f)
	}
	return parseDecimal(strconv.FormatFloat(f, 'g', -1, 64))
}

func (d decimal) c() *big.Int {
	if d.coef == nil {
		return new(big.Int)
	}
	return d.coef
}

// String is the canonical text: "-12.340", "0.5", "7".
func (d decimal) String() string {
	c := d.c()
	s := new(big.Int).Abs(c).String()
	if d.scale > 0 {
		if len(s) <= int(d.scale) {
			s = strings.Repeat("0", int(d.scale)-len(s)+1) + s
		}
		s = s[:len(s)-int(d.scale)] + "." + s[len(s)-int(d.scale):]
	}
	if c.Sign() < 0 {
		s = "-" + s
	}
	return s
}

// rescale returns d with the given larger scale.
func (d decimal) rescale(scale int32) *big.Int {
	if scale == d.scale {
		return d.c()
	}
	return new(big.Int).Mul(d.c(), pow10(scale-d.scale))
}

func align(a, b decimal) (*big.Int, *big.Int, int32) {
	s := max(a.scale, b.scale)
	return a.rescale(s), b.rescale(s), s
}

func checkDecimal(d decimal) (decimal, error) {
	if d.scale > maxDecimalScale || d.c().BitLen() > maxDecimalDigits*10/3 {
		return decimal{}, errDecimalRange
	}
	return d, nil
}

func (a decimal) add(b decimal) (decimal, error) {
	x, y, s := align(a, b)
	return checkDecimal(decimal{coef: new(big.Int).Add(x, y), scale: s})
}

func (a decimal) sub(b decimal) (decimal, error) {
	x, y, s := align(a, b)
	return checkDecimal(decimal{coef: new(big.Int).Sub(x, y), scale: s})
}

func (a decimal) mul(b decimal) (decimal, error) {
	return checkDecimal(decimal{coef: new(big.Int).Mul(a.c(), b.c()), scale: a.scale + b.scale})
}

// quo divides exactly to divisionScale digits after the point (more when
// the dividend has more), rounding half away from zero, then drops
// trailing zeros beyond the dividend's scale: 10.00/4 = 2.50, 1/0.5 = 2,
// 1/3 = 0.33333333333333333333.
func (a decimal) quo(b decimal) (decimal, error) {
	if b.c().Sign() == 0 {
		return decimal{}, errDivisionByZero
	}
	keep := a.scale
	s := max(keep, divisionScale)
	// a/b at scale s: a.coef * 10^(s - a.scale + b.scale) / b.coef
	num := new(big.Int).Mul(a.c(), pow10(s-a.scale+b.scale))
	q, r := new(big.Int).QuoRem(num, b.c(), new(big.Int))
	roundHalfAway(q, r, b.c())
	d := decimal{coef: q, scale: s}
	for d.scale > keep {
		qq, rr := new(big.Int).QuoRem(d.coef, bigTen, new(big.Int))
		if rr.Sign() != 0 {
			break
		}
		d = decimal{coef: qq, scale: d.scale - 1}
	}
	return checkDecimal(d)
}

// roundHalfAway adjusts the truncated quotient q of n/d (remainder r) to
// round half away from zero.
func roundHalfAway(q, r, d *big.Int) {
	if r.Sign() == 0 {
		return
	}
	r2 := new(big.Int).Abs(r)
	r2.Lsh(r2, 1)
	if r2.CmpAbs(d) >= 0 {
		if (r.Sign() < 0) != (d.Sign() < 0) {
			q.Sub(q, bigOne)
		} else {
			q.Add(q, bigOne)
		}
	}
}

// rem is a - b*trunc(a/b), with the sign of a.
func (a decimal) rem(b decimal) (decimal, error) {
	x, y, s := align(a, b)
	if y.Sign() == 0 {
		return decimal{}, errDivisionByZero
	}
	return decimal{coef: new(big.Int).Rem(x, y), scale: s}, nil
}

func (a decimal) cmp(b decimal) int {
	x, y, _ := align(a, b)
	return x.Cmp(y)
}

func (a decimal) neg() decimal { return decimal{coef: new(big.Int).Neg(a.c()), scale: a.scale} }

func (a decimal) abs() decimal {
	if a.c().Sign() >= 0 {
		return a
	}
	return a.neg()
}

// round rounds half away from zero to n digits after the point (n < 0
// rounds to tens, hundreds...); the result has scale max(n, 0).
func (a decimal) round(n int) decimal {
	if n > maxDecimalScale {
		n = maxDecimalScale
	}
	if n < -maxDecimalDigits {
		n = -maxDecimalDigits
	}
	if int32(n) >= a.scale {
		return decimal{coef: a.rescale(int32(n)), scale: int32(n)}
	}
	drop := a.scale - int32(n)
	div := pow10(drop)
	q, r := new(big.Int).QuoRem(a.c(), div, new(big.Int))
	roundHalfAway(q, r, div)
	if n < 0 {
		q.Mul(q, pow10(int32(-n)))
		return decimal{coef: q}
	}
	return decimal{coef: q, scale: int32(n)}
}

// floor and ceil return whole decimals (scale 0).
func (a decimal) floor() decimal {
	q, m := new(big.Int).DivMod(a.c(), pow10(a.scale), new(big.Int))
	_ = m // DivMod is Euclidean: q is the floor for a positive divisor
	return decimal{coef: q}
}

func (a decimal) ceil() decimal {
	return a.neg().floor().neg()
}

// trunc is the integer part, as an int64.
func (a decimal) toInt() (int64, error) {
	q := new(big.Int).Quo(a.c(), pow10(a.scale))
	if !q.IsInt64() {
		return 0, fmt.Errorf("decimal %s does not fit an int", a)
	}
	return q.Int64(), nil
}

func (a decimal) toFloat() float64 {
	f, _ := strconv.ParseFloat(a.String(), 64)
	return f
}
