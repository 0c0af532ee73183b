package catalog

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Governance: what admission control and the health API read and write
// beyond host statistics (profiler_store.go) and alerts (alert_store.go):
// which node hosts a system, since when a run is held by health, the runs
// that ended badly, and the run counts health reports.
//
//	run_holds   one row per pending run held by health (a red host, no healthy
//	            worker): when the hold began, so that the workload manager
//	            aborts the run after its maximum hold time, on any leader
func init() {
	registerMigration(&gormigrate.Migration{
		ID: "0008_governance",
		Migrate: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&RunHold{})
		},
	})
}

// SystemNodeAttribute is the system attribute that links a system to the
// node running on its host (a `weir agent` on a database server, say): its
// value is the node's ID.
const SystemNodeAttribute = "node"

// SystemHostSetting is the system setting that names a system's host (a
// database server's host name). A system without the SystemNodeAttribute is
// linked to the node whose ID, or whose address's host, it names.
const SystemHostSetting = "host"

// ListSystemAttributeValues returns, for every system that has the attribute
// key, its value (system name -> value), in one query.
func (s *Store) ListSystemAttributeValues(ctx context.Context, key string) (map[string]string, error) {
	if err := validateAttributeKey(key); err != nil {
		return nil, err
	}
	var rows []SystemAttribute
	if err := s.db.WithContext(ctx).Where("key = ?", key).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list system attribute %s: %w", key, err)
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.System] = r.Value
	}
	return out, nil
}

// SystemHostNode returns the ID of the node that runs on sys's host: nodeAttr
// (the system's SystemNodeAttribute) when set; else the node, among nodes,
// whose ID equals the system's SystemHostSetting, or the only node whose
// address has that host. It returns "" when the system names no host or no
// single node matches it (several nodes on one address are ambiguous).
func SystemHostNode(sys *System, nodeAttr string, nodes []Node) string {
	if v := strings.TrimSpace(nodeAttr); v != "" {
		return v
	}
	host := strings.TrimSpace(sys.Settings.V[SystemHostSetting])
	if host == "" {
		return ""
	}
	match := ""
	for i := range nodes {
		n := &nodes[i]
		if n.ID == host {
			return n.ID
		}
		if addressHost(n.Address) == host {
			if match != "" {
				match = "\x00" // ambiguous; an exact ID match may still come
				continue
			}
			match = n.ID
		}
	}
	if match == "\x00" {
		return ""
	}
	return match
}

// addressHost is the host part of a node's address ("db-1:7070" -> "db-1").
func addressHost(addr string) string {
	addr = strings.TrimSpace(addr)
	if i := strings.Index(addr, "://"); i >= 0 {
		addr = addr[i+3:]
	}
	addr, _, _ = strings.Cut(addr, "/")
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return strings.Trim(addr, "[]")
}

// RunHold records since when a pending run is held by health admission
// control: a red source or target host, or no healthy worker. The workload
// manager starts it when the run is first held so, clears it when the run is
// dispatched, no longer held by health, or no longer pending, and aborts the
// run once it is older than the maximum hold time.
type RunHold struct {
	RunID  string    `gorm:"primaryKey;size:24" json:"run_id"`
	Region string    `gorm:"size:64;not null;index" json:"region"`
	Since  time.Time `gorm:"not null" json:"since"`
	// State is the run's state now, filled by ListRunHolds ("" when the run
	// no longer exists); it is not stored.
	State RunState `gorm:"-" json:"state,omitempty"`
}

// TableName names the table of run holds.
func (RunHold) TableName() string { return "run_holds" }

// ListRunHolds returns the holds of a region's runs, by run_id, each with its
// run's current state.
func (s *Store) ListRunHolds(ctx context.Context, region string) ([]RunHold, error) {
	type row struct {
		RunID  string
		Region string
		Since  time.Time
		State  *string
	}
	var rows []row
	err := s.db.WithContext(ctx).Table("run_holds").
		Select("run_holds.run_id, run_holds.region, run_holds.since, runs.state").
		Joins("LEFT JOIN runs ON runs.id = run_holds.run_id").
		Where("run_holds.region = ?", region).Order("run_holds.run_id").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list run holds of %s: %w", region, err)
	}
	out := make([]RunHold, len(rows))
	for i, r := range rows {
		out[i] = RunHold{RunID: r.RunID, Region: r.Region, Since: r.Since.UTC()}
		if r.State != nil {
			out[i].State = RunState(*r.State)
		}
	}
	return out, nil
}

// StartRunHolds records holds that begin now, in one transaction. A run that
// already has a hold keeps it (and its start): starting a hold twice changes
// nothing. A zero Since is the Store's now.
func (s *Store) StartRunHolds(ctx context.Context, holds []RunHold) error {
	if len(holds) == 0 {
		return nil
	}
	rows := make([]RunHold, len(holds))
	now := s.now()
	for i, h := range holds {
		if h.RunID == "" || len(h.RunID) > 24 {
			return Invalid("run_id", "a run hold needs its run's run_id, got %q", h.RunID)
		}
		if err := ValidateName("region", h.Region); err != nil {
			return err
		}
		if h.Since.IsZero() {
			h.Since = now
		}
		rows[i] = RunHold{RunID: h.RunID, Region: h.Region, Since: h.Since.UTC()}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].RunID < rows[j].RunID })
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, 200).Error
	if err != nil {
		return fmt.Errorf("start %d run holds: %w", len(rows), err)
	}
	return nil
}

// ClearRunHolds removes the holds of runs ids (those without one are skipped).
func (s *Store) ClearRunHolds(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ids = append([]string(nil), ids...)
	sort.Strings(ids)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for len(ids) > 0 {
			chunk := ids[:min(len(ids), 500)]
			ids = ids[len(chunk):]
			if err := tx.Where("run_id IN ?", chunk).Delete(&RunHold{}).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("clear run holds: %w", err)
	}
	return nil
}

// RaiseAlertOnce raises p unless an alert with its key exists already, open
// or resolved, in which case it returns that (newest) alert and false: for
// conditions that happen once, such as a run that failed, so that noticing
// the condition twice neither counts it twice nor reopens it after an
// operator resolved it.
func (s *Store) RaiseAlertOnce(ctx context.Context, p RaiseAlertParams) (*Alert, bool, error) {
	if err := p.validate(); err != nil {
		return nil, false, err
	}
	prev, err := s.LatestAlert(ctx, p.Key)
	if err != nil {
		return nil, false, fmt.Errorf("raise alert %s once: %w", p.Key, err)
	}
	if prev != nil {
		return prev, false, nil
	}
	return s.RaiseAlert(ctx, p)
}

// LatestAlert returns the newest alert with key, open or resolved, or nil
// when there is none.
func (s *Store) LatestAlert(ctx context.Context, key string) (*Alert, error) {
	var prev []Alert
	if err := s.db.WithContext(ctx).Where("dedupe_key = ?", key).Order("id DESC").Limit(1).Find(&prev).Error; err != nil {
		return nil, fmt.Errorf("latest alert %s: %w", key, translate(err))
	}
	if len(prev) == 0 {
		return nil, nil
	}
	return &prev[0], nil
}

// ListRunsEnded returns up to limit runs of a region that ended failed or
// aborted after since, oldest end first (without plans and manifests).
func (s *Store) ListRunsEnded(ctx context.Context, region string, since time.Time, limit int) ([]Run, error) {
	if limit <= 0 {
		limit = ListLimitDefault
	}
	var runs []Run
	err := s.db.WithContext(ctx).Omit("plan", "manifest").
		Where("region = ? AND state IN ? AND finished_at > ?", region, []RunState{StateFailed, StateAborted}, since.UTC()).
		Order("finished_at, id").Limit(limit).Find(&runs).Error
	if err != nil {
		return nil, fmt.Errorf("list runs ended in %s: %w", region, err)
	}
	return runs, nil
}

// RunHealthCounts are the run counts the health report shows.
type RunHealthCounts struct {
	Pending int64 `json:"pending"`
	// Held are the pending runs that wait with a hold reason.
	Held   int64 `json:"held"`
	Queued int64 `json:"queued"`
	Active int64 `json:"active"`
	// Failed are the runs that ended failed or aborted after FailedSince.
	Failed      int64     `json:"failed"`
	FailedSince time.Time `json:"failed_since"`
}

// CountRunHealth counts a region's (every region's for "") pending, held,
// queued and active runs, and those that ended failed or aborted after
// failedSince.
func (s *Store) CountRunHealth(ctx context.Context, region string, failedSince time.Time) (RunHealthCounts, error) {
	type row struct {
		State RunState
		Held  bool
		N     int64
	}
	var rows []row
	q := s.db.WithContext(ctx).Model(&Run{}).
		Select("state, (hold_reason IS NOT NULL AND hold_reason <> '') AS held, COUNT(*) AS n").
		Where("state IN ?", []RunState{StatePending, StateQueued, StateActive}).
		Group("state, (hold_reason IS NOT NULL AND hold_reason <> '')")
	if region != "" {
		q = q.Where("region = ?", region)
	}
	out := RunHealthCounts{FailedSince: failedSince.UTC()}
	if err := q.Scan(&rows).Error; err != nil {
		return out, fmt.Errorf("count runs for health: %w", err)
	}
	for _, r := range rows {
		switch r.State {
		case StatePending:
			out.Pending += r.N
			if r.Held {
				out.Held += r.N
			}
		case StateQueued:
			out.Queued += r.N
		case StateActive:
			out.Active += r.N
		}
	}
	f := s.db.WithContext(ctx).Model(&Run{}).
		Where("state IN ? AND finished_at > ?", []RunState{StateFailed, StateAborted}, failedSince.UTC())
	if region != "" {
		f = f.Where("region = ?", region)
	}
	if err := f.Count(&out.Failed).Error; err != nil {
		return out, fmt.Errorf("count failed runs for health: %w", err)
	}
	return out, nil
}

// ListWorkerRuns returns the queued and active runs assigned to a worker,
// oldest first (without plans and manifests).
func (s *Store) ListWorkerRuns(ctx context.Context, worker string) ([]Run, error) {
	var runs []Run
	err := s.db.WithContext(ctx).Omit("plan", "manifest").
		Where("worker_id = ? AND state IN ?", worker, []RunState{StateQueued, StateActive}).
		Order("id").Find(&runs).Error
	if err != nil {
		return nil, fmt.Errorf("list runs of worker %s: %w", worker, err)
	}
	return runs, nil
}

// SetThresholds creates or replaces several thresholds in one transaction:
// all of them or, when one is invalid, none (the error names it).
func (s *Store) SetThresholds(ctx context.Context, ths []HealthThreshold) error {
	seen := map[[2]string]bool{}
	for i := range ths {
		if err := ths[i].Validate(); err != nil {
			return err
		}
		k := [2]string{ths[i].Scope, ths[i].Metric}
		if seen[k] {
			return Invalid("metric", "threshold %s %s given twice", ths[i].Scope, ths[i].Metric)
		}
		seen[k] = true
	}
	if len(ths) == 0 {
		return nil
	}
	now := s.now()
	for i := range ths {
		ths[i].UpdatedAt = now
	}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "scope"}, {Name: "metric"}},
		DoUpdates: clause.AssignmentColumns([]string{"warn", "crit", "updated_by", "updated_at"}),
	}).Create(&ths).Error
	if err != nil {
		return fmt.Errorf("set %d thresholds: %w", len(ths), err)
	}
	return nil
}

// DeleteScopeThresholds removes every threshold of scope and returns how
// many there were.
func (s *Store) DeleteScopeThresholds(ctx context.Context, scope string) (int64, error) {
	if err := ValidateThresholdScope(scope); err != nil {
		return 0, err
	}
	res := s.db.WithContext(ctx).Where("scope = ?", scope).Delete(&HealthThreshold{})
	if res.Error != nil {
		return 0, fmt.Errorf("delete thresholds of %s: %w", scope, res.Error)
	}
	return res.RowsAffected, nil
}
