package sqlrow

import (
	"fmt"
	"math/bits"
	"strconv"

	"github.com/weirdata/weir/connector/spi"
)

// Partition kinds kept in spi.Partition.Spec["kind"].
const (
	// PartitionAll reads the whole dataset.
	PartitionAll = "all"
	// PartitionKey reads a range of an integer key (KeyRange).
	PartitionKey = "key"
)

// KeyRange is a partition by an integer key: Lo <= key < Hi, or key <= Hi
// for the last range; Nulls adds the rows whose key is NULL.
type KeyRange struct {
	Column string
	Lo, Hi int64
	Last   bool
	Nulls  bool
}

// SplitKeyRange splits [lo, hi] into at most n ranges of near-equal width,
// never more ranges than keys. The first range also takes NULL keys when
// nulls is true, so that every row falls into exactly one range.
func SplitKeyRange(column string, lo, hi int64, n int, nulls bool) []KeyRange {
	if hi < lo {
		lo, hi = hi, lo
	}
	span := uint64(hi) - uint64(lo) // keys - 1, exact in two's complement
	if n < 1 {
		n = 1
	}
	if span < uint64(n) {
		n = int(span) + 1
	}
	out := make([]KeyRange, 0, n)
	prev := lo
	for i := 1; i <= n; i++ {
		var b int64
		if i == n {
			b = hi
		} else {
			// lo + floor((span+1) * i / n) without overflowing 64 bits.
			h, l := bits.Mul64(span, uint64(i))
			l, c := bits.Add64(l, uint64(i), 0)
			h += c
			q, _ := bits.Div64(h, l, uint64(n))
			b = int64(uint64(lo) + q)
		}
		out = append(out, KeyRange{Column: column, Lo: prev, Hi: b, Last: i == n, Nulls: nulls && i == 1})
		prev = b
	}
	return out
}

// Spec returns the range as a partition spec.
func (k KeyRange) Spec() map[string]string {
	s := map[string]string{"kind": PartitionKey, "column": k.Column, "lo": strconv.FormatInt(k.Lo, 10), "hi": strconv.FormatInt(k.Hi, 10)}
	if k.Last {
		s["last"] = "true"
	}
	if k.Nulls {
		s["nulls"] = "true"
	}
	return s
}

// Desc describes the range for people.
func (k KeyRange) Desc() string {
	end := ")"
	if k.Last {
		end = "]"
	}
	d := fmt.Sprintf("%s in [%d, %d%s", k.Column, k.Lo, k.Hi, end)
	if k.Nulls {
		d += " or NULL"
	}
	return d
}

// Where returns the condition selecting the range, col being the quoted
// key column, and its arguments.
func (k KeyRange) Where(col string) (string, []any) {
	op := "<"
	if k.Last {
		op = "<="
	}
	w := "(" + col + " >= ? AND " + col + " " + op + " ?"
	if k.Nulls {
		w += " OR " + col + " IS NULL"
	}
	return w + ")", []any{k.Lo, k.Hi}
}

// ParsePartition reads back a spec written by KeyRange.Spec or
// AllPartition: ok is false for PartitionAll (and an empty spec).
func ParsePartition(p spi.Partition) (k KeyRange, ok bool, err error) {
	switch p.Spec["kind"] {
	case "", PartitionAll:
		return KeyRange{}, false, nil
	case PartitionKey:
	default:
		return KeyRange{}, false, fmt.Errorf("%w: partition %d has kind %q", spi.ErrInvalid, p.Seq, p.Spec["kind"])
	}
	k = KeyRange{Column: p.Spec["column"], Last: p.Spec["last"] == "true", Nulls: p.Spec["nulls"] == "true"}
	var e1, e2 error
	k.Lo, e1 = strconv.ParseInt(p.Spec["lo"], 10, 64)
	k.Hi, e2 = strconv.ParseInt(p.Spec["hi"], 10, 64)
	if e1 != nil || e2 != nil || k.Column == "" || k.Hi < k.Lo {
		return KeyRange{}, false, fmt.Errorf("%w: partition %d has a bad key range %v", spi.ErrInvalid, p.Seq, p.Spec)
	}
	return k, true, nil
}

// AllPartition is the single partition of a dataset that is not split.
func AllPartition(estRows int64) spi.Partition {
	return spi.Partition{Seq: 0, Desc: "all rows", EstRows: estRows, Spec: map[string]string{"kind": PartitionAll}}
}

// KeyPartitions turns ranges into partitions, spreading estRows evenly.
func KeyPartitions(ranges []KeyRange, estRows int64) []spi.Partition {
	out := make([]spi.Partition, len(ranges))
	for i, r := range ranges {
		out[i] = spi.Partition{Seq: i, Desc: r.Desc(), EstRows: estRows / int64(len(ranges)), Spec: r.Spec()}
	}
	return out
}
