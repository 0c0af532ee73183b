package monitor

import "time"

// backoff is the pause before try number attempt (1 for the first retry):
// lo, doubled at each further attempt, never more than hi.
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}
