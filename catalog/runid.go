package catalog

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"time"
)

// A run_id is 24 decimal digits:
//
//	TTTTTTTTTTTTT RRR SSSSSSSS
//	13 digits: milliseconds since the Unix epoch (ordered by creation time until the year 2286)
//	 3 digits: the region code (RegionCode of the region name), so any broker can route a lookup
//	 8 digits: a random start per millisecond, incremented within it
//
// IDs from one generator are strictly increasing; generators on other servers
// need no coordination: a collision needs the same millisecond, region and
// 8-digit random value, and the catalog's primary key turns the rare one into
// ErrConflict, on which the broker draws again.
const RunIDLength = 24

// RegionCode maps a region name to the 3-digit code carried inside run_ids.
func RegionCode(region string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(region))
	return int(h.Sum32() % 1000)
}

// RunIDGenerator makes run_ids for one region. The zero value is not usable; use NewRunIDGenerator.
type RunIDGenerator struct {
	mu     sync.Mutex
	region int
	lastMS int64
	seq    uint64
	now    func() time.Time
}

// RunIDFloor returns the smallest run_id of instant t: every run created at
// or after t (by its run_id) is at or above it, every one before is below.
func RunIDFloor(t time.Time) string {
	return fmt.Sprintf("%013d%011d", max(t.UnixMilli(), 0), 0)
}

// NewRunIDGenerator returns a generator for region.
func NewRunIDGenerator(region string) *RunIDGenerator {
	return &RunIDGenerator{region: RegionCode(region), now: time.Now}
}

// Next returns a new run_id, greater than every one this generator returned before.
func (g *RunIDGenerator) Next() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	ms := g.now().UnixMilli()
	if ms <= g.lastMS {
		ms = g.lastMS
		g.seq++
		if g.seq >= 100_000_000 { // exhausted this millisecond: borrow the next one
			ms++
			g.seq = randomSeq()
		}
	} else {
		g.seq = randomSeq()
	}
	g.lastMS = ms
	return fmt.Sprintf("%013d%03d%08d", ms, g.region, g.seq)
}

// randomSeq starts a millisecond's sequence in the lower half so that increments rarely overflow.
func randomSeq() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) % 50_000_000
}

// ParseRunID checks id's form and returns its creation time and region code.
func ParseRunID(id string) (time.Time, int, error) {
	if len(id) != RunIDLength {
		return time.Time{}, 0, Invalid("run_id", "must be %d digits, got %d characters", RunIDLength, len(id))
	}
	for _, c := range id {
		if c < '0' || c > '9' {
			return time.Time{}, 0, Invalid("run_id", "must contain only digits")
		}
	}
	ms, _ := strconv.ParseInt(id[:13], 10, 64)
	region, _ := strconv.Atoi(id[13:16])
	return time.UnixMilli(ms).UTC(), region, nil
}
