package catalog

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// The audit log records calls that act on systems on a caller's behalf (the
// dispatcher agent's commands first), whether they were allowed or refused,
// and the attributes discovered on systems by probing them.

func init() {
	registerMigration(&gormigrate.Migration{
		ID: "0007_audit",
		Migrate: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&AuditEntry{}, &SystemAttribute{})
		},
	})
}

// Outcomes of an audited call.
const (
	// AuditOK: the call was carried out.
	AuditOK = "ok"
	// AuditUnauthenticated: no valid credential was given.
	AuditUnauthenticated = "unauthenticated"
	// AuditForbidden: the caller lacks the entitlement.
	AuditForbidden = "forbidden"
	// AuditRejected: the request was refused for its content (bad or
	// unknown arguments, unknown command or object, oversized body).
	AuditRejected = "rejected"
	// AuditFailed: the call was allowed but failed on the server's or the
	// system's side.
	AuditFailed = "failed"
)

// AuditOutcomes lists the outcomes an AuditEntry may have.
var AuditOutcomes = []string{AuditOK, AuditUnauthenticated, AuditForbidden, AuditRejected, AuditFailed}

// Column sizes of audit_log; longer values are clipped on insert.
const (
	auditActorMax  = 128
	auditNodeMax   = 128
	auditActionMax = 64
	auditTargetMax = 256
	auditArgsMax   = 2000
	auditDetailMax = 1000
	auditIPMax     = 64
)

// AuditEntry is one audited call. It never holds a credential: Args is a
// summary its writer made without secrets, and a token is identified by its
// ID only.
type AuditEntry struct {
	ID int64 `gorm:"primaryKey" json:"id"`
	// At is when the call arrived (UTC); the Store's clock when zero.
	At time.Time `gorm:"not null;index" json:"at"`
	// Actor is the authenticated user's name, "" when authentication failed.
	Actor string `gorm:"size:128;not null;index" json:"actor"`
	// TokenID is the API token used, when one was recognised.
	TokenID *int64 `json:"token_id,omitempty"`
	// Node is the node that served the call.
	Node string `gorm:"size:128;not null" json:"node"`
	// Action is what was asked, "dispatcher.count" for example.
	Action string `gorm:"size:64;not null;index" json:"action"`
	// Target is what it was asked on: "system:NAME", "run:RUN_ID".
	Target string `gorm:"size:256;not null;default:''" json:"target"`
	// Args summarises the arguments (JSON, without secrets).
	Args string `gorm:"size:2000;not null;default:''" json:"args"`
	// Outcome is one of AuditOutcomes; Status is the HTTP status answered.
	Outcome string `gorm:"size:16;not null" json:"outcome"`
	Status  int    `gorm:"not null;default:0" json:"status"`
	// Detail says why a call was refused or failed.
	Detail     string `gorm:"size:1000;not null;default:''" json:"detail,omitempty"`
	DurationMS int64  `gorm:"not null;default:0" json:"duration_ms"`
	ClientIP   string `gorm:"size:64;not null;default:''" json:"client_ip"`
}

// TableName is audit_log.
func (AuditEntry) TableName() string { return "audit_log" }

// InsertAudit appends e to the audit log and sets its ID. Action and a known
// Outcome are required; long text fields are clipped to their columns.
func (s *Store) InsertAudit(ctx context.Context, e *AuditEntry) error {
	if strings.TrimSpace(e.Action) == "" {
		return Invalid("action", "an audit entry needs an action")
	}
	if !oneOf(e.Outcome, AuditOutcomes) {
		return Invalid("outcome", "must be one of %s; got %q", strings.Join(AuditOutcomes, ", "), e.Outcome)
	}
	if e.DurationMS < 0 {
		return Invalid("duration_ms", "must not be negative, got %d", e.DurationMS)
	}
	if e.At.IsZero() {
		e.At = s.now()
	}
	e.At = e.At.UTC()
	e.ID = 0
	e.Actor = clip(e.Actor, auditActorMax)
	e.Node = clip(e.Node, auditNodeMax)
	e.Action = clip(e.Action, auditActionMax)
	e.Target = clip(e.Target, auditTargetMax)
	e.Args = clip(e.Args, auditArgsMax)
	e.Detail = clip(e.Detail, auditDetailMax)
	e.ClientIP = clip(e.ClientIP, auditIPMax)
	if err := s.db.WithContext(ctx).Create(e).Error; err != nil {
		return fmt.Errorf("insert audit entry %s: %w", e.Action, translate(err))
	}
	return nil
}

// AuditFilter selects entries for ListAudit. Empty fields do not filter.
type AuditFilter struct {
	Actor string
	// Action matches exactly, or, ending in "*", as a prefix ("dispatcher.*").
	Action  string
	Target  string
	Outcome string
	Node    string
	// Since and Until bound At: Since <= At < Until.
	Since, Until time.Time
	// BeforeID is the cursor: only entries older (lower ID) than it.
	BeforeID int64
	// Limit is the page size: AuditLimitDefault when 0, at most AuditLimitMax.
	Limit int
}

// Paging limits of ListAudit.
const (
	AuditLimitDefault = 100
	AuditLimitMax     = 1000
)

// ListAudit returns audit entries newest first and the cursor of the next
// page (the BeforeID to pass; 0 at the end).
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, int64, error) {
	if f.Limit < 0 {
		return nil, 0, Invalid("limit", "must not be negative, got %d", f.Limit)
	}
	if f.Outcome != "" && !oneOf(f.Outcome, AuditOutcomes) {
		return nil, 0, Invalid("outcome", "must be one of %s; got %q", strings.Join(AuditOutcomes, ", "), f.Outcome)
	}
	if f.Limit == 0 {
		f.Limit = AuditLimitDefault
	}
	f.Limit = min(f.Limit, AuditLimitMax)
	q := s.db.WithContext(ctx).Order("id DESC").Limit(f.Limit + 1)
	if f.Actor != "" {
		q = q.Where("actor = ?", f.Actor)
	}
	if prefix, ok := strings.CutSuffix(f.Action, "*"); ok {
		if prefix != "" {
			q = q.Where("action LIKE ? ESCAPE '\\'", likeEscape(prefix)+"%")
		}
	} else if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if f.Target != "" {
		q = q.Where("target = ?", f.Target)
	}
	if f.Outcome != "" {
		q = q.Where("outcome = ?", f.Outcome)
	}
	if f.Node != "" {
		q = q.Where("node = ?", f.Node)
	}
	if !f.Since.IsZero() {
		q = q.Where("at >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		q = q.Where("at < ?", f.Until.UTC())
	}
	if f.BeforeID > 0 {
		q = q.Where("id < ?", f.BeforeID)
	}
	var out []AuditEntry
	if err := q.Find(&out).Error; err != nil {
		return nil, 0, fmt.Errorf("list audit log: %w", err)
	}
	var next int64
	if len(out) > f.Limit {
		out = out[:f.Limit]
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

// likeEscape escapes the LIKE wildcards of s with a backslash.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// DeleteAuditBefore removes the entries older than before and returns how
// many it removed: the audit log's retention.
func (s *Store) DeleteAuditBefore(ctx context.Context, before time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Where("at < ?", before.UTC()).Delete(&AuditEntry{})
	if res.Error != nil {
		return 0, fmt.Errorf("prune audit log: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// Limits of system attributes.
const (
	SystemAttributeKeyMax   = 128
	SystemAttributeValueMax = 2000
	// SystemAttributesMax is the most attributes one system may have.
	SystemAttributesMax = 200
)

// SystemAttribute is one attribute discovered on a system by probing it
// ("version", "host.cores", "root.free_bytes" ...).
type SystemAttribute struct {
	System    string    `gorm:"primaryKey;size:128" json:"system"`
	Key       string    `gorm:"primaryKey;size:128" json:"key"`
	Value     string    `gorm:"size:2000;not null" json:"value"`
	UpdatedAt time.Time `gorm:"not null" json:"updated_at"`
}

// TableName is system_attributes.
func (SystemAttribute) TableName() string { return "system_attributes" }

// SetSystemAttributes replaces the discovered attributes of the system name
// with attrs, in one transaction: keys not in attrs are removed. The system
// must exist (ErrNotFound). Keys are 1-128 characters of letters, digits and
// ". _ -"; values at most 2000 characters.
func (s *Store) SetSystemAttributes(ctx context.Context, name string, attrs map[string]string) error {
	if len(attrs) > SystemAttributesMax {
		return Invalid("attributes", "at most %d attributes per system, got %d", SystemAttributesMax, len(attrs))
	}
	keys := make([]string, 0, len(attrs))
	for k, v := range attrs {
		if err := validateAttributeKey(k); err != nil {
			return err
		}
		if len([]rune(v)) > SystemAttributeValueMax {
			return Invalid("attributes."+k, "value longer than %d characters", SystemAttributeValueMax)
		}
		if strings.ContainsRune(v, 0) {
			return Invalid("attributes."+k, "value contains a NUL byte")
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	now := s.now()
	rows := make([]SystemAttribute, len(keys))
	for i, k := range keys {
		rows[i] = SystemAttribute{System: name, Key: k, Value: attrs[k], UpdatedAt: now}
	}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		// Lock the system row so that concurrent sets of one system
		// serialise (SQLite has a single writer anyway).
		q := tx.Model(&System{}).Where("name = ?", name)
		if s.dialect == DialectPostgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		var ids []int64
		if err := q.Pluck("id", &ids).Error; err != nil {
			return err
		}
		if len(ids) == 0 {
			return ErrNotFound
		}
		if err := tx.Where("system = ?", name).Delete(&SystemAttribute{}).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		return tx.CreateInBatches(rows, 100).Error
	})
	if err != nil {
		return fmt.Errorf("set attributes of system %s: %w", name, err)
	}
	return nil
}

func validateAttributeKey(k string) error {
	if k == "" || len(k) > SystemAttributeKeyMax {
		return Invalid("attributes", "key %q must be 1-%d characters", k, SystemAttributeKeyMax)
	}
	for _, r := range k {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return Invalid("attributes", "key %q may hold only letters, digits and . _ -", k)
		}
	}
	return nil
}

// GetSystemAttributes returns the discovered attributes of the system name
// (an empty map when it was never probed); ErrNotFound when no such system.
func (s *Store) GetSystemAttributes(ctx context.Context, name string) (map[string]string, error) {
	rows, err := s.ListSystemAttributes(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.Key] = r.Value
	}
	return out, nil
}

// ListSystemAttributes returns the discovered attributes of the system name
// by key, with the time each was recorded; ErrNotFound when no such system.
func (s *Store) ListSystemAttributes(ctx context.Context, name string) ([]SystemAttribute, error) {
	if _, err := s.GetSystem(ctx, name); err != nil {
		return nil, fmt.Errorf("list attributes: %w", err)
	}
	var rows []SystemAttribute
	if err := s.db.WithContext(ctx).Where("system = ?", name).Order("key").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list attributes of system %s: %w", name, err)
	}
	return rows, nil
}
