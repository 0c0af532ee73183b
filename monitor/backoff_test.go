package monitor

import (
	"testing"
	"time"
)

func TestBackoffDoublesAndCaps(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		lo, hi  time.Duration
		attempt int
		want    time.Duration
	}{
		{10 * ms, 80 * ms, 0, 10 * ms},
		{10 * ms, 80 * ms, 1, 10 * ms},
		{10 * ms, 80 * ms, 2, 20 * ms},
		{10 * ms, 80 * ms, 3, 40 * ms},
		{10 * ms, 80 * ms, 4, 80 * ms},
		{10 * ms, 80 * ms, 5, 80 * ms},
		{10 * ms, 80 * ms, 1000, 80 * ms},
		{30 * ms, 50 * ms, 2, 50 * ms},
		{time.Second, time.Second, 7, time.Second},
	} {
		if got := backoff(c.lo, c.hi, c.attempt); got != c.want {
			t.Errorf("backoff(%s, %s, %d) = %s, want %s", c.lo, c.hi, c.attempt, got, c.want)
		}
	}
}
