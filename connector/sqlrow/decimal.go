package sqlrow

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// Decimal returns s as canonical decimal text (spi.TypeDecimal): an optional
// "-", the integer digits without leading zeros ("0" when none), then, when
// s has a fraction, "." and its digits with the scale kept ("12.340" stays
// "12.340"). An exponent is applied ("1.5e3" is "1500", "15e-1" is "1.5"), a
// leading "+" dropped, and a zero is never negative. Anything else is an error.
func Decimal(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty decimal")
	}
	orig := s
	neg := false
	switch s[0] {
	case '-':
		neg, s = true, s[1:]
	case '+':
		s = s[1:]
	}
	exp := 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > 1000 || e < -1000 {
			return "", errors.New("bad decimal " + strconv.Quote(orig))
		}
		exp, s = e, s[:i]
	}
	intPart, frac, hasPoint := strings.Cut(s, ".")
	if (intPart == "" && frac == "") || !digits(intPart) || !digits(frac) {
		return "", errors.New("bad decimal " + strconv.Quote(orig))
	}
	// Move the point by exp: all digits, with the point after len(intPart)+exp of them.
	if exp != 0 {
		all := intPart + frac
		at := len(intPart) + exp
		switch {
		case at <= 0:
			all = strings.Repeat("0", -at) + all
			at = 0
		case at > len(all):
			all += strings.Repeat("0", at-len(all))
		}
		intPart, frac = all[:at], all[at:]
		hasPoint = frac != ""
	}
	intPart = strings.TrimLeft(intPart, "0")
	if intPart == "" {
		intPart = "0"
	}
	out := intPart
	if hasPoint && frac != "" {
		out += "." + frac
	}
	if neg && strings.Trim(out, "0.") != "" {
		out = "-" + out
	}
	return out, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// DecimalFromFloat returns the shortest decimal text that reads back as f
// exactly; NaN and infinities have none.
func DecimalFromFloat(f float64) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", errors.New("no decimal for " + strconv.FormatFloat(f, 'g', -1, 64))
	}
	return Decimal(strconv.FormatFloat(f, 'f', -1, 64))
}
