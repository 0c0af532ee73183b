package catalog

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Host statistics written by the profiler on every node, and the health
// thresholds they are judged by.
//
// Layout: one row per node and point in time, the metrics in a JSON map
// (metric name -> value), so that a node's configured disk paths need no
// schema of their own and one sample is one row, not one row per metric.
//
//	host_latest        one row per node, upserted every sample: fast reads
//	host_samples       raw samples, kept for the raw retention
//	host_rollups       per-minute and per-hour aggregates (n, avg, max, m2)
//	host_baselines     per node and hour of week, mean and variance of every metric
//	host_rollup_state  per node, how far its rollups and baselines have gone
//	health_thresholds  warning and critical levels per scope and metric

func init() {
	registerMigration(&gormigrate.Migration{
		ID: "0002_profiler",
		Migrate: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&HostLatest{}, &HostSample{}, &HostRollup{}, &HostBaseline{},
				&HostRollupState{}, &HealthThreshold{})
		},
	})
}

// HostSample is one raw sample of a node's host statistics.
type HostSample struct {
	NodeID  string                   `gorm:"primaryKey;size:128" json:"node_id"`
	At      time.Time                `gorm:"primaryKey;index:idx_host_samples_at" json:"at"`
	Metrics JSON[map[string]float64] `gorm:"not null" json:"metrics"`
}

// TableName names the table of raw samples.
func (HostSample) TableName() string { return "host_samples" }

// HostLatest is the newest sample of a node, with the deviation of each
// metric from the node's baseline for that hour of the week (a z-score; only
// metrics whose baseline has enough samples have one).
type HostLatest struct {
	NodeID     string                   `gorm:"primaryKey;size:128" json:"node_id"`
	Region     string                   `gorm:"size:64;not null;index" json:"region"`
	At         time.Time                `gorm:"not null" json:"at"`
	Metrics    JSON[map[string]float64] `gorm:"not null" json:"metrics"`
	Deviations JSON[map[string]float64] `json:"deviations"`
}

// TableName names the table of latest samples.
func (HostLatest) TableName() string { return "host_latest" }

// Rollup resolutions.
const (
	RollupMinute = "minute"
	RollupHour   = "hour"
)

// MetricAgg summarises a series of values of one metric: their count, mean,
// maximum, and M2, the sum of squared deviations from the mean, which lets
// two summaries merge exactly (Welford's update, Chan's parallel form).
type MetricAgg struct {
	N   int64   `json:"n"`
	Avg float64 `json:"avg"`
	Max float64 `json:"max"`
	M2  float64 `json:"m2"`
}

// Add returns a with one more value x (Welford's online update).
func (a MetricAgg) Add(x float64) MetricAgg {
	if a.N == 0 {
		return MetricAgg{N: 1, Avg: x, Max: x}
	}
	a.N++
	d := x - a.Avg
	a.Avg += d / float64(a.N)
	a.M2 += d * (x - a.Avg)
	a.Max = max(a.Max, x)
	return a
}

// Merge returns the summary of the values of a and b together.
func (a MetricAgg) Merge(b MetricAgg) MetricAgg {
	switch {
	case b.N == 0:
		return a
	case a.N == 0:
		return b
	}
	n := a.N + b.N
	d := b.Avg - a.Avg
	return MetricAgg{
		N:   n,
		Avg: a.Avg + d*float64(b.N)/float64(n),
		Max: max(a.Max, b.Max),
		M2:  a.M2 + b.M2 + d*d*float64(a.N)*float64(b.N)/float64(n),
	}
}

// Variance is the sample variance (M2 / (N-1)); 0 below two values.
func (a MetricAgg) Variance() float64 {
	if a.N < 2 {
		return 0
	}
	return max(a.M2, 0) / float64(a.N-1)
}

// Stddev is the sample standard deviation.
func (a MetricAgg) Stddev() float64 { return math.Sqrt(a.Variance()) }

// HostRollup aggregates a node's raw samples over one minute or one hour.
type HostRollup struct {
	NodeID     string                     `gorm:"primaryKey;size:128" json:"node_id"`
	Resolution string                     `gorm:"primaryKey;size:8;index:idx_host_rollups_age,priority:1" json:"resolution"`
	Bucket     time.Time                  `gorm:"primaryKey;index:idx_host_rollups_age,priority:2" json:"bucket"`
	Samples    int64                      `gorm:"not null" json:"samples"`
	Metrics    JSON[map[string]MetricAgg] `gorm:"not null" json:"metrics"`
}

// TableName names the table of rollups.
func (HostRollup) TableName() string { return "host_rollups" }

// HoursPerWeek is the number of hour-of-week baseline cells of a node.
const HoursPerWeek = 7 * 24

// HourOfWeek returns the hour of the week of t in UTC, 0 (Sunday 00:00-00:59)
// to 167 (Saturday 23:00-23:59): the cell of a node's baseline t falls in.
func HourOfWeek(t time.Time) int {
	t = t.UTC()
	return int(t.Weekday())*24 + t.Hour()
}

// HostBaseline is what a node's metrics usually are in one hour of the week:
// for every metric, the count, mean, maximum and M2 of all raw samples ever
// rolled up in that hour, updated incrementally from the minute rollups.
type HostBaseline struct {
	NodeID     string                     `gorm:"primaryKey;size:128" json:"node_id"`
	HourOfWeek int                        `gorm:"primaryKey;autoIncrement:false" json:"hour_of_week"`
	Metrics    JSON[map[string]MetricAgg] `gorm:"not null" json:"metrics"`
	UpdatedAt  time.Time                  `json:"updated_at"`
}

// TableName names the table of baselines.
func (HostBaseline) TableName() string { return "host_baselines" }

// HostRollupState records how far a node's rollups have gone.
type HostRollupState struct {
	NodeID string `gorm:"primaryKey;size:128" json:"node_id"`
	// RolledThrough: every raw sample before it is in the minute rollups and the baselines.
	RolledThrough *time.Time `json:"rolled_through,omitempty"`
	// HourThrough: every hour before it has its hour rollup.
	HourThrough *time.Time `json:"hour_through,omitempty"`
}

// TableName names the table of rollup progress.
func (HostRollupState) TableName() string { return "host_rollup_state" }

// Limits of host samples.
const (
	// MetricNameMaxLength bounds a metric's name (it may carry a disk path).
	MetricNameMaxLength = 255
	// MetricsPerSampleMax bounds the metrics of one sample.
	MetricsPerSampleMax = 512
	nodeIDMaxLength     = 128
	sampleInsertBatch   = 500
)

// validateNodeID checks a node ID: 1-128 printable characters without spaces.
func validateNodeID(field, id string) error {
	if id == "" || len(id) > nodeIDMaxLength {
		return Invalid(field, "a node ID has 1-%d characters, got %d", nodeIDMaxLength, len(id))
	}
	for _, r := range id {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return Invalid(field, "node ID %q has a space or control character", id)
		}
	}
	return nil
}

// validateMetrics checks the names and values of a metric map.
func validateMetrics(field string, m map[string]float64) error {
	if len(m) > MetricsPerSampleMax {
		return Invalid(field, "at most %d metrics per sample, got %d", MetricsPerSampleMax, len(m))
	}
	for name, v := range m {
		if name == "" || len(name) > MetricNameMaxLength {
			return Invalid(field, "metric names have 1-%d characters, got %q", MetricNameMaxLength, name)
		}
		if strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			return Invalid(field, "metric name %q has a control character", name)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Invalid(field, "metric %s is %v: only finite values can be stored", name, v)
		}
	}
	return nil
}

// UpsertLatestSample records l as its node's newest sample. A sample older
// than the one already recorded (a late or duplicate writer) changes nothing.
func (s *Store) UpsertLatestSample(ctx context.Context, l *HostLatest) error {
	if err := validateNodeID("node_id", l.NodeID); err != nil {
		return err
	}
	if err := ValidateName("region", l.Region); err != nil {
		return err
	}
	if l.At.IsZero() {
		return Invalid("at", "a sample needs its time")
	}
	if err := validateMetrics("metrics", l.Metrics.V); err != nil {
		return err
	}
	if err := validateMetrics("deviations", l.Deviations.V); err != nil {
		return err
	}
	row := *l
	row.At = row.At.UTC()
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "node_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"region", "at", "metrics", "deviations"}),
		Where:     clause.Where{Exprs: []clause.Expression{clause.Expr{SQL: "host_latest.at < excluded.at"}}},
	}).Create(&row).Error
	if err != nil {
		return fmt.Errorf("upsert latest sample of %s: %w", l.NodeID, err)
	}
	return nil
}

// GetLatestSample returns a node's newest sample, or ErrNotFound.
func (s *Store) GetLatestSample(ctx context.Context, nodeID string) (*HostLatest, error) {
	var l HostLatest
	if err := translate(s.db.WithContext(ctx).Where("node_id = ?", nodeID).First(&l).Error); err != nil {
		return nil, fmt.Errorf("get latest sample of %s: %w", nodeID, err)
	}
	return &l, nil
}

// ListLatestSamples returns the newest sample of every node of a region (""
// for every region), by node ID.
func (s *Store) ListLatestSamples(ctx context.Context, region string) ([]HostLatest, error) {
	q := s.db.WithContext(ctx).Order("node_id")
	if region != "" {
		q = q.Where("region = ?", region)
	}
	var out []HostLatest
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list latest samples: %w", err)
	}
	return out, nil
}

// InsertSamples writes a batch of raw samples, of one node or many, in one
// transaction: all or, on any invalid sample, none. A sample whose node and
// time are already recorded (a batch written twice) is skipped.
func (s *Store) InsertSamples(ctx context.Context, samples []HostSample) error {
	if len(samples) == 0 {
		return nil
	}
	rows := make([]HostSample, len(samples))
	for i, smp := range samples {
		if err := validateNodeID(fmt.Sprintf("samples[%d].node_id", i), smp.NodeID); err != nil {
			return err
		}
		if smp.At.IsZero() {
			return Invalid(fmt.Sprintf("samples[%d].at", i), "a sample needs its time")
		}
		if err := validateMetrics(fmt.Sprintf("samples[%d].metrics", i), smp.Metrics.V); err != nil {
			return err
		}
		rows[i] = smp
		rows[i].At = smp.At.UTC()
	}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		return tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, sampleInsertBatch).Error
	})
	if err != nil {
		return fmt.Errorf("insert %d host samples: %w", len(rows), err)
	}
	return nil
}

// ListSamples returns a node's raw samples taken in [from, to), oldest first.
func (s *Store) ListSamples(ctx context.Context, nodeID string, from, to time.Time) ([]HostSample, error) {
	var out []HostSample
	err := s.db.WithContext(ctx).Where("node_id = ? AND at >= ? AND at < ?", nodeID, from.UTC(), to.UTC()).
		Order("at").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list samples of %s: %w", nodeID, err)
	}
	return out, nil
}

// ListRollups returns a node's rollups of a resolution whose bucket starts in
// [from, to), oldest first.
func (s *Store) ListRollups(ctx context.Context, nodeID, resolution string, from, to time.Time) ([]HostRollup, error) {
	if resolution != RollupMinute && resolution != RollupHour {
		return nil, Invalid("resolution", "must be %s or %s, got %q", RollupMinute, RollupHour, resolution)
	}
	var out []HostRollup
	err := s.db.WithContext(ctx).Where("node_id = ? AND resolution = ? AND bucket >= ? AND bucket < ?",
		nodeID, resolution, from.UTC(), to.UTC()).Order("bucket").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list %s rollups of %s: %w", resolution, nodeID, err)
	}
	return out, nil
}

// RollupParams asks for a node's rollups to be brought up to date.
type RollupParams struct {
	NodeID string
	// Through promises that every raw sample the node took before it is in
	// the catalog: every minute that ended by then is rolled up, and every
	// hour that ended by then too.
	Through time.Time
}

// RollupResult tells what Rollup wrote.
type RollupResult struct {
	Minutes int // minute rollups written
	Hours   int // hour rollups written
	// BaselineHours are the hours of the week whose baseline cells changed, ascending.
	BaselineHours []int
	// RolledThrough: the node's minute rollups and baselines now cover every
	// raw sample before it (zero when the node has no samples yet).
	RolledThrough time.Time
}

// Rollup aggregates a node's raw samples of the minutes that ended before
// p.Through into minute rollups, merges them into the node's hour-of-week
// baselines, and aggregates the hours that ended into hour rollups, in one
// transaction. Each minute is rolled up once: the node's rollup state row
// records how far it went and is locked while it moves, so two processes
// rolling up one node (or a retry) neither miss nor count a sample twice.
func (s *Store) Rollup(ctx context.Context, p RollupParams) (RollupResult, error) {
	var res RollupResult
	if err := validateNodeID("node_id", p.NodeID); err != nil {
		return res, err
	}
	if p.Through.IsZero() {
		return res, Invalid("through", "is required")
	}
	to := p.Through.UTC().Truncate(time.Minute)
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		res = RollupResult{}
		lockState := func(st *HostRollupState) error {
			q := tx.Where("node_id = ?", p.NodeID)
			if s.dialect == DialectPostgres {
				q = q.Clauses(clause.Locking{Strength: "UPDATE"})
			}
			return q.Take(st).Error
		}
		var st HostRollupState
		err := lockState(&st)
		if errors.Is(err, gorm.ErrRecordNotFound) {
			// The node's first rollup: create its state row (a concurrent
			// creator wins harmlessly), then lock it.
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&HostRollupState{NodeID: p.NodeID}).Error; err != nil {
				return err
			}
			err = lockState(&st)
		}
		if err != nil {
			return err
		}
		var from time.Time
		if st.RolledThrough != nil {
			from = st.RolledThrough.UTC()
			res.RolledThrough = from
		} else {
			var first HostSample
			err := tx.Select("at").Where("node_id = ?", p.NodeID).Order("at").Limit(1).Take(&first).Error
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			from = first.At.UTC().Truncate(time.Minute)
		}
		if !to.After(from) {
			res.RolledThrough = from // nothing before from is left to roll up
			return nil
		}
		minutes, err := s.rollupMinutes(tx, p.NodeID, from, to)
		if err != nil {
			return err
		}
		res.Minutes = len(minutes)
		if res.BaselineHours, err = s.mergeBaselines(tx, p.NodeID, minutes); err != nil {
			return err
		}
		hFrom := from.Truncate(time.Hour)
		if st.HourThrough != nil {
			hFrom = st.HourThrough.UTC()
		}
		hTo := to.Truncate(time.Hour)
		if hTo.After(hFrom) {
			if res.Hours, err = s.rollupHours(tx, p.NodeID, hFrom, hTo); err != nil {
				return err
			}
		} else {
			hTo = hFrom
		}
		res.RolledThrough = to
		return tx.Model(&HostRollupState{}).Where("node_id = ?", p.NodeID).
			Updates(map[string]any{"rolled_through": to, "hour_through": hTo}).Error
	})
	if err != nil {
		return RollupResult{}, fmt.Errorf("roll up samples of %s: %w", p.NodeID, err)
	}
	return res, nil
}

// rollupMinutes aggregates the raw samples of [from, to) by minute and
// upserts one rollup per minute that has samples.
func (s *Store) rollupMinutes(tx *gorm.DB, nodeID string, from, to time.Time) ([]HostRollup, error) {
	var raw []HostSample
	if err := tx.Where("node_id = ? AND at >= ? AND at < ?", nodeID, from, to).Order("at").Find(&raw).Error; err != nil {
		return nil, err
	}
	var out []HostRollup
	for _, smp := range raw {
		b := smp.At.UTC().Truncate(time.Minute)
		if len(out) == 0 || !out[len(out)-1].Bucket.Equal(b) {
			out = append(out, HostRollup{NodeID: nodeID, Resolution: RollupMinute, Bucket: b,
				Metrics: NewJSON(map[string]MetricAgg{})})
		}
		r := &out[len(out)-1]
		r.Samples++
		for name, v := range smp.Metrics.V {
			r.Metrics.V[name] = r.Metrics.V[name].Add(v)
		}
	}
	return out, upsertRollups(tx, out)
}

// rollupHours aggregates the minute rollups of [from, to) by hour and upserts
// one rollup per hour that has any.
func (s *Store) rollupHours(tx *gorm.DB, nodeID string, from, to time.Time) (int, error) {
	var mins []HostRollup
	if err := tx.Where("node_id = ? AND resolution = ? AND bucket >= ? AND bucket < ?", nodeID, RollupMinute, from, to).
		Order("bucket").Find(&mins).Error; err != nil {
		return 0, err
	}
	var out []HostRollup
	for _, m := range mins {
		b := m.Bucket.UTC().Truncate(time.Hour)
		if len(out) == 0 || !out[len(out)-1].Bucket.Equal(b) {
			out = append(out, HostRollup{NodeID: nodeID, Resolution: RollupHour, Bucket: b,
				Metrics: NewJSON(map[string]MetricAgg{})})
		}
		r := &out[len(out)-1]
		r.Samples += m.Samples
		for name, a := range m.Metrics.V {
			r.Metrics.V[name] = r.Metrics.V[name].Merge(a)
		}
	}
	return len(out), upsertRollups(tx, out)
}

// upsertRollups writes rollups, replacing those of the same buckets.
func upsertRollups(tx *gorm.DB, rs []HostRollup) error {
	if len(rs) == 0 {
		return nil
	}
	return tx.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "node_id"}, {Name: "resolution"}, {Name: "bucket"}},
		DoUpdates: clause.AssignmentColumns([]string{"samples", "metrics"}),
	}).CreateInBatches(rs, sampleInsertBatch).Error
}

// mergeBaselines merges minute rollups into the node's hour-of-week cells
// and returns the hours of the cells that changed.
func (s *Store) mergeBaselines(tx *gorm.DB, nodeID string, minutes []HostRollup) ([]int, error) {
	if len(minutes) == 0 {
		return nil, nil
	}
	add := map[int]map[string]MetricAgg{}
	for _, m := range minutes {
		h := HourOfWeek(m.Bucket)
		if add[h] == nil {
			add[h] = map[string]MetricAgg{}
		}
		for name, a := range m.Metrics.V {
			add[h][name] = add[h][name].Merge(a)
		}
	}
	hours := make([]int, 0, len(add))
	for h := range add {
		hours = append(hours, h)
	}
	sort.Ints(hours)
	var existing []HostBaseline
	if err := tx.Where("node_id = ? AND hour_of_week IN ?", nodeID, hours).Find(&existing).Error; err != nil {
		return nil, err
	}
	cells := map[int]map[string]MetricAgg{}
	for _, b := range existing {
		cells[b.HourOfWeek] = b.Metrics.V
	}
	now := s.now()
	rows := make([]HostBaseline, 0, len(hours))
	for _, h := range hours {
		cell := cells[h]
		if cell == nil {
			cell = map[string]MetricAgg{}
		}
		for name, a := range add[h] {
			cell[name] = cell[name].Merge(a)
		}
		rows = append(rows, HostBaseline{NodeID: nodeID, HourOfWeek: h, Metrics: NewJSON(cell), UpdatedAt: now})
	}
	err := tx.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "node_id"}, {Name: "hour_of_week"}},
		DoUpdates: clause.AssignmentColumns([]string{"metrics", "updated_at"}),
	}).Create(&rows).Error
	return hours, err
}

// GetBaseline returns a node's baseline for one hour of the week (0-167), or ErrNotFound.
func (s *Store) GetBaseline(ctx context.Context, nodeID string, hourOfWeek int) (*HostBaseline, error) {
	if hourOfWeek < 0 || hourOfWeek >= HoursPerWeek {
		return nil, Invalid("hour_of_week", "must be 0-%d, got %d", HoursPerWeek-1, hourOfWeek)
	}
	var b HostBaseline
	err := translate(s.db.WithContext(ctx).Where("node_id = ? AND hour_of_week = ?", nodeID, hourOfWeek).First(&b).Error)
	if err != nil {
		return nil, fmt.Errorf("get baseline of %s for hour %d of the week: %w", nodeID, hourOfWeek, err)
	}
	return &b, nil
}

// ListBaselines returns a node's baseline cells for the given hours of the
// week (every cell when none is given), by hour.
func (s *Store) ListBaselines(ctx context.Context, nodeID string, hoursOfWeek ...int) ([]HostBaseline, error) {
	q := s.db.WithContext(ctx).Where("node_id = ?", nodeID).Order("hour_of_week")
	if len(hoursOfWeek) > 0 {
		for _, h := range hoursOfWeek {
			if h < 0 || h >= HoursPerWeek {
				return nil, Invalid("hour_of_week", "must be 0-%d, got %d", HoursPerWeek-1, h)
			}
		}
		q = q.Where("hour_of_week IN ?", hoursOfWeek)
	}
	var out []HostBaseline
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list baselines of %s: %w", nodeID, err)
	}
	return out, nil
}

// PruneParams says what Prune deletes.
type PruneParams struct {
	// NodeID limits the pruning to one node's rows; "" prunes every node's,
	// so that the rows of nodes that are gone are pruned too.
	NodeID string
	// Now is the time retentions count back from; zero means the Store's clock.
	Now time.Time
	// Retentions: raw samples, minute rollups and hour rollups older than
	// these are deleted. Each must be positive.
	Raw, Minute, Hour time.Duration
	// ForgetAfter, when positive, also deletes every row (latest sample,
	// baselines, rollup state, samples, rollups) of the nodes whose latest
	// sample is older than this: nodes that are gone, or were renamed.
	ForgetAfter time.Duration
}

// PruneResult counts what Prune deleted.
type PruneResult struct {
	Raw, Minutes, Hours int64
	// Forgotten lists the nodes whose rows were all deleted.
	Forgotten []string
}

// Prune deletes raw samples and rollups that passed their retention, and
// forgets silent nodes, in one transaction. It is idempotent: any node may
// prune any time, and every node pruning every node's rows is cheap (each
// delete is an index range over the expired rows only).
func (s *Store) Prune(ctx context.Context, p PruneParams) (PruneResult, error) {
	var res PruneResult
	if p.NodeID != "" {
		if err := validateNodeID("node_id", p.NodeID); err != nil {
			return res, err
		}
	}
	for _, r := range []struct {
		field string
		d     time.Duration
	}{{"raw_retention", p.Raw}, {"minute_retention", p.Minute}, {"hour_retention", p.Hour}} {
		if r.d <= 0 {
			return res, Invalid(r.field, "must be positive, got %s", r.d)
		}
	}
	if p.ForgetAfter < 0 {
		return res, Invalid("forget_after", "must be 0 (never) or positive, got %s", p.ForgetAfter)
	}
	now := p.Now.UTC()
	if p.Now.IsZero() {
		now = s.now()
	}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		res = PruneResult{}
		scope := func() *gorm.DB {
			if p.NodeID != "" {
				return tx.Where("node_id = ?", p.NodeID)
			}
			return tx
		}
		d := scope().Where("at < ?", now.Add(-p.Raw)).Delete(&HostSample{})
		if d.Error != nil {
			return d.Error
		}
		res.Raw = d.RowsAffected
		d = scope().Where("resolution = ? AND bucket < ?", RollupMinute, now.Add(-p.Minute)).Delete(&HostRollup{})
		if d.Error != nil {
			return d.Error
		}
		res.Minutes = d.RowsAffected
		d = scope().Where("resolution = ? AND bucket < ?", RollupHour, now.Add(-p.Hour)).Delete(&HostRollup{})
		if d.Error != nil {
			return d.Error
		}
		res.Hours = d.RowsAffected
		if p.ForgetAfter == 0 {
			return nil
		}
		var gone []string
		if err := scope().Model(&HostLatest{}).Where("at < ?", now.Add(-p.ForgetAfter)).
			Order("node_id").Pluck("node_id", &gone).Error; err != nil {
			return err
		}
		for len(gone) > 0 {
			chunk := gone[:min(len(gone), 500)]
			gone = gone[len(chunk):]
			for _, m := range []any{&HostSample{}, &HostRollup{}, &HostBaseline{}, &HostRollupState{}, &HostLatest{}} {
				if err := tx.Where("node_id IN ?", chunk).Delete(m).Error; err != nil {
					return err
				}
			}
			res.Forgotten = append(res.Forgotten, chunk...)
		}
		return nil
	})
	if err != nil {
		return PruneResult{}, fmt.Errorf("prune host statistics: %w", err)
	}
	return res, nil
}

// HostTableCounts counts the rows of the profiler's tables.
type HostTableCounts struct {
	Latest, Samples, MinuteRollups, HourRollups, Baselines, RollupStates int64
}

// CountHostRows counts the rows of the profiler's tables, for the dashboard
// and for tests that check the catalog stays bounded.
func (s *Store) CountHostRows(ctx context.Context) (HostTableCounts, error) {
	var c HostTableCounts
	db := s.db.WithContext(ctx)
	for _, q := range []struct {
		n   *int64
		run *gorm.DB
	}{
		{&c.Latest, db.Model(&HostLatest{})},
		{&c.Samples, db.Model(&HostSample{})},
		{&c.MinuteRollups, db.Model(&HostRollup{}).Where("resolution = ?", RollupMinute)},
		{&c.HourRollups, db.Model(&HostRollup{}).Where("resolution = ?", RollupHour)},
		{&c.Baselines, db.Model(&HostBaseline{})},
		{&c.RollupStates, db.Model(&HostRollupState{})},
	} {
		if err := q.run.Count(q.n).Error; err != nil {
			return HostTableCounts{}, fmt.Errorf("count host statistics: %w", err)
		}
	}
	return c, nil
}

// Health threshold metrics. Warning and critical levels are "worse than":
// above for all but disk_free, which is bad below its levels.
const (
	ThresholdCPU       = "cpu"       // CPU busy, percent
	ThresholdMemory    = "memory"    // memory used, percent
	ThresholdDiskFree  = "disk_free" // free space of each disk path, percent (lower is worse)
	ThresholdDeviation = "deviation" // distance of a metric from its baseline, in standard deviations
	ThresholdHeartbeat = "heartbeat" // time since a node was last heard from, seconds
)

// ThresholdMetrics lists the metrics a HealthThreshold may name.
var ThresholdMetrics = []string{ThresholdCPU, ThresholdMemory, ThresholdDiskFree, ThresholdDeviation, ThresholdHeartbeat}

// ThresholdScopeDefault is the scope of thresholds that apply to every node
// and system without its own.
const ThresholdScopeDefault = "default"

// NodeScope is the threshold scope of one node.
func NodeScope(nodeID string) string { return "node:" + nodeID }

// SystemScope is the threshold scope of one system (the hosts it runs on).
func SystemScope(system string) string { return "system:" + system }

// HealthThreshold sets the warning and critical levels of one metric for a
// scope: "default", "node:<id>" or "system:<name>". A level of 0 is not checked.
type HealthThreshold struct {
	Scope     string    `gorm:"primaryKey;size:200" json:"scope"`
	Metric    string    `gorm:"primaryKey;size:32" json:"metric"`
	Warn      float64   `gorm:"not null" json:"warn"`
	Crit      float64   `gorm:"not null" json:"crit"`
	UpdatedBy string    `gorm:"size:128" json:"updated_by,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// TableName names the table of thresholds.
func (HealthThreshold) TableName() string { return "health_thresholds" }

// ValidateThresholdScope checks a scope: "default", "node:<id>" or "system:<name>".
func ValidateThresholdScope(scope string) error {
	switch {
	case scope == ThresholdScopeDefault:
		return nil
	case strings.HasPrefix(scope, "node:"):
		return validateNodeID("scope", strings.TrimPrefix(scope, "node:"))
	case strings.HasPrefix(scope, "system:"):
		return ValidateName("scope", strings.TrimPrefix(scope, "system:"))
	}
	return Invalid("scope", "must be %q, \"node:<id>\" or \"system:<name>\", got %q", ThresholdScopeDefault, scope)
}

// Validate checks a threshold: a known scope and metric, levels in range
// (percentages 0-100, deviation and heartbeat positive or 0) and, when both
// are set, critical at least as bad as warning.
func (th *HealthThreshold) Validate() error {
	if err := ValidateThresholdScope(th.Scope); err != nil {
		return err
	}
	if !oneOf(th.Metric, ThresholdMetrics) {
		return Invalid("metric", "must be one of %s; got %q", strings.Join(ThresholdMetrics, ", "), th.Metric)
	}
	for _, l := range []struct {
		field string
		v     float64
	}{{"warn", th.Warn}, {"crit", th.Crit}} {
		switch {
		case math.IsNaN(l.v) || math.IsInf(l.v, 0) || l.v < 0:
			return Invalid(l.field, "must be a finite number, 0 or more, got %v", l.v)
		case (th.Metric == ThresholdCPU || th.Metric == ThresholdMemory || th.Metric == ThresholdDiskFree) && l.v > 100:
			return Invalid(l.field, "%s is a percentage: 0-100, got %v", th.Metric, l.v)
		case th.Metric == ThresholdHeartbeat && l.v > 7*24*3600:
			return Invalid(l.field, "heartbeat is in seconds: at most a week, got %v", l.v)
		}
	}
	if th.Warn == 0 && th.Crit == 0 {
		return Invalid("warn", "set warn, crit or both (0 leaves a level unchecked); to check neither, delete the threshold")
	}
	if th.Warn > 0 && th.Crit > 0 {
		if th.Metric == ThresholdDiskFree && th.Crit > th.Warn {
			return Invalid("crit", "free disk is critical below %v%%, which must not be above the warning level %v%%", th.Crit, th.Warn)
		}
		if th.Metric != ThresholdDiskFree && th.Crit < th.Warn {
			return Invalid("crit", "%s is critical above %v, which must not be below the warning level %v", th.Metric, th.Crit, th.Warn)
		}
	}
	return nil
}

// SetThreshold creates or replaces the threshold of (th.Scope, th.Metric).
func (s *Store) SetThreshold(ctx context.Context, th *HealthThreshold) error {
	if err := th.Validate(); err != nil {
		return err
	}
	th.UpdatedAt = s.now()
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "scope"}, {Name: "metric"}},
		DoUpdates: clause.AssignmentColumns([]string{"warn", "crit", "updated_by", "updated_at"}),
	}).Create(th).Error
	if err != nil {
		return fmt.Errorf("set threshold %s %s: %w", th.Scope, th.Metric, err)
	}
	return nil
}

// ListThresholds returns the thresholds of a scope ("" for every scope), by scope and metric.
func (s *Store) ListThresholds(ctx context.Context, scope string) ([]HealthThreshold, error) {
	q := s.db.WithContext(ctx).Order("scope").Order("metric")
	if scope != "" {
		if err := ValidateThresholdScope(scope); err != nil {
			return nil, err
		}
		q = q.Where("scope = ?", scope)
	}
	var out []HealthThreshold
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list thresholds: %w", err)
	}
	return out, nil
}

// DeleteThreshold removes the threshold of (scope, metric); ErrNotFound when there is none.
func (s *Store) DeleteThreshold(ctx context.Context, scope, metric string) error {
	if err := ValidateThresholdScope(scope); err != nil {
		return err
	}
	d := s.db.WithContext(ctx).Where("scope = ? AND metric = ?", scope, metric).Delete(&HealthThreshold{})
	if d.Error != nil {
		return fmt.Errorf("delete threshold %s %s: %w", scope, metric, d.Error)
	}
	if d.RowsAffected == 0 {
		return fmt.Errorf("delete threshold %s %s: %w", scope, metric, ErrNotFound)
	}
	return nil
}

// ResolveThresholds returns, for every metric set anywhere in scopes or the
// default scope, the threshold that applies: that of the first of scopes
// that sets it, else the default scope's. Metrics set nowhere are absent:
// callers fall back to their built-in levels.
func (s *Store) ResolveThresholds(ctx context.Context, scopes ...string) (map[string]HealthThreshold, error) {
	all := append([]string{ThresholdScopeDefault}, scopes...)
	for _, sc := range scopes {
		if err := ValidateThresholdScope(sc); err != nil {
			return nil, err
		}
	}
	var rows []HealthThreshold
	if err := s.db.WithContext(ctx).Where("scope IN ?", all).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("resolve thresholds: %w", err)
	}
	return ResolveThresholdRows(rows, scopes...), nil
}

// ResolveThresholdRows picks from rows, for every metric, the threshold of the
// first of scopes that sets it, else that of the default scope; rows of other
// scopes are ignored. It lets a caller that listed every threshold once
// resolve them for many nodes.
func ResolveThresholdRows(rows []HealthThreshold, scopes ...string) map[string]HealthThreshold {
	rank := map[string]int{ThresholdScopeDefault: len(scopes)}
	for i := len(scopes) - 1; i >= 0; i-- {
		rank[scopes[i]] = i
	}
	out := map[string]HealthThreshold{}
	for _, r := range rows {
		rk, ok := rank[r.Scope]
		if !ok {
			continue
		}
		if cur, seen := out[r.Metric]; !seen || rk < rank[cur.Scope] {
			out[r.Metric] = r
		}
	}
	return out
}
