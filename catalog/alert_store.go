package catalog

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// The governance tables: alerts (this file) and services (service_store.go).
func init() {
	registerMigration(&gormigrate.Migration{
		ID: "0003_governance",
		Migrate: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&Alert{}, &Service{})
		},
	})
}

// Alert severities, from least to most severe.
const (
	AlertInfo     = "info"
	AlertWarning  = "warning"
	AlertCritical = "critical"
)

// AlertSeverities lists the severities in increasing order.
var AlertSeverities = []string{AlertInfo, AlertWarning, AlertCritical}

// AlertSeverityRank orders severities: 1 for info, 2 for warning, 3 for
// critical, 0 for anything else.
func AlertSeverityRank(severity string) int {
	for i, s := range AlertSeverities {
		if s == severity {
			return i + 1
		}
	}
	return 0
}

// ChannelAlertsRaised wakes notifiers: an alert was created or escalated and
// waits for delivery.
const ChannelAlertsRaised = "weir_alerts_raised"

// Sizes of the alert columns.
const (
	AlertKeyMax     = 200  // characters of a dedupe key
	AlertSubjectMax = 200  // longer subjects are cut
	AlertMessageMax = 4000 // longer messages are cut
)

// Alert is one condition worth a human's attention, deduplicated by Key:
// while an alert is open (not resolved), raising its key again counts one
// more occurrence on the same row instead of adding a row. A raise after the
// alert was resolved opens a new alert (a new incident).
//
// Delivery to webhooks: a new alert waits for delivery (NextDeliveryAt is
// set). Raising an open alert again with a higher severity escalates it: the
// severity rises, an acknowledgement is cleared and the alert waits for
// delivery again. Other repeats only count. Notifiers claim deliveries with
// ClaimAlertDeliveries and report with FinishAlertDelivery.
type Alert struct {
	ID int64 `gorm:"primaryKey" json:"id"`
	// Key deduplicates: "run-held:<run_id>", "node-red:<node>",
	// "service-flapping:<node>/<service>", "auth-failures:<ip>". At most one
	// open alert has a given key.
	Key        string     `gorm:"column:dedupe_key;size:200;not null;index;uniqueIndex:idx_alerts_open_key,where:resolved_at IS NULL" json:"key"`
	Severity   string     `gorm:"size:16;not null" json:"severity"`
	Subject    string     `gorm:"size:200;not null" json:"subject"`
	Message    string     `gorm:"size:4000;not null;default:''" json:"message"`
	Region     string     `gorm:"size:64;not null;default:'';index" json:"region,omitempty"`
	FirstSeen  time.Time  `gorm:"not null" json:"first_seen"`
	LastSeen   time.Time  `gorm:"not null" json:"last_seen"`
	Count      int64      `gorm:"not null;default:1" json:"count"`
	AckedBy    string     `gorm:"size:128;not null;default:''" json:"acked_by,omitempty"`
	AckedAt    *time.Time `json:"acked_at,omitempty"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	// DeliveredAt is when the latest event (creation or escalation) reached every webhook.
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	// DeliveryAttempts counts the claims of the latest event.
	DeliveryAttempts int `gorm:"not null;default:0" json:"delivery_attempts"`
	// NextDeliveryAt is when a notifier may (re)try; nil when nothing waits.
	NextDeliveryAt *time.Time `gorm:"index" json:"next_delivery_at,omitempty"`
	// DeliveredTo names the webhooks that accepted the latest event.
	DeliveredTo JSON[[]string] `json:"delivered_to,omitempty"`
	// DeliveryError is the last delivery failure, for operators.
	DeliveryError string `gorm:"size:4000;not null;default:''" json:"delivery_error,omitempty"`
	// DeliveryToken fences deliveries: every claim and every new event bumps it.
	DeliveryToken int64 `gorm:"not null;default:0" json:"-"`
}

// Open reports whether the alert is not resolved.
func (a *Alert) Open() bool { return a.ResolvedAt == nil }

// EventID names the alert's latest delivery event (its creation or its last
// escalation): the same for every retry of that event, different for the
// next one, so that webhook receivers can drop duplicates.
func (a *Alert) EventID() string {
	// Every claim bumps both the token and the attempts; a new event bumps
	// the token and zeroes the attempts: their difference is the event's.
	return fmt.Sprintf("%d.%d", a.ID, a.DeliveryToken-int64(a.DeliveryAttempts))
}

// RaiseAlertParams describes one occurrence of a condition.
type RaiseAlertParams struct {
	Key      string // required, at most AlertKeyMax characters, no control characters
	Severity string // AlertInfo, AlertWarning or AlertCritical
	Subject  string // required; cut to AlertSubjectMax
	Message  string // cut to AlertMessageMax
	Region   string // optional, at most 64 characters
}

func (p *RaiseAlertParams) validate() error {
	switch {
	case p.Key == "":
		return Invalid("key", "an alert needs a dedupe key")
	case utf8.RuneCountInString(p.Key) > AlertKeyMax:
		return Invalid("key", "must be at most %d characters, got %d", AlertKeyMax, utf8.RuneCountInString(p.Key))
	case !utf8.ValidString(p.Key) || strings.IndexFunc(p.Key, unicode.IsControl) >= 0:
		return Invalid("key", "%q must be valid UTF-8 without control characters", p.Key)
	case AlertSeverityRank(p.Severity) == 0:
		return Invalid("severity", "must be one of %s; got %q", strings.Join(AlertSeverities, ", "), p.Severity)
	case strings.TrimSpace(p.Subject) == "":
		return Invalid("subject", "an alert needs a subject")
	case utf8.RuneCountInString(p.Region) > 64 || strings.ContainsRune(p.Region, 0) || !utf8.ValidString(p.Region):
		return Invalid("region", "%q is not a region name", p.Region)
	}
	return nil
}

// alertText makes s storable on PostgreSQL (valid UTF-8, no NUL) and cuts it to n characters.
func alertText(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	return clip(strings.TrimSpace(s), n)
}

// severityRankSQL is AlertSeverityRank in SQL, for the column expression col.
func severityRankSQL(col string) string {
	return "(CASE " + col + " WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 ELSE 1 END)"
}

// raiseAlertSQL inserts an alert or, when an open one has the key, counts
// one more occurrence on it. The partial unique index makes this atomic
// with concurrent raisers on PostgreSQL. An escalation (a higher severity)
// clears the acknowledgement and re-arms the delivery.
var raiseAlertSQL = func() string {
	esc := severityRankSQL("excluded.severity") + " > " + severityRankSQL("alerts.severity")
	when := func(then, els string) string { return "CASE WHEN " + esc + " THEN " + then + " ELSE " + els + " END" }
	return `INSERT INTO alerts (dedupe_key, severity, subject, message, region, first_seen, last_seen, count,
		acked_by, delivery_attempts, next_delivery_at, delivered_to, delivery_error, delivery_token)
	VALUES (?, ?, ?, ?, ?, ?, ?, 1, '', 0, ?, '[]', '', 1)
	ON CONFLICT (dedupe_key) WHERE resolved_at IS NULL DO UPDATE SET
		count = alerts.count + 1,
		last_seen = excluded.last_seen,
		subject = excluded.subject,
		message = excluded.message,
		severity = ` + when("excluded.severity", "alerts.severity") + `,
		acked_by = ` + when("''", "alerts.acked_by") + `,
		acked_at = ` + when("NULL", "alerts.acked_at") + `,
		delivered_at = ` + when("NULL", "alerts.delivered_at") + `,
		delivery_attempts = ` + when("0", "alerts.delivery_attempts") + `,
		next_delivery_at = ` + when("excluded.next_delivery_at", "alerts.next_delivery_at") + `,
		delivered_to = ` + when("'[]'", "alerts.delivered_to") + `,
		delivery_error = ` + when("''", "alerts.delivery_error") + `,
		delivery_token = ` + when("alerts.delivery_token + 1", "alerts.delivery_token") + `
	RETURNING *`
}()

// RaiseAlert records one occurrence of the condition p.Key. When an open
// alert has the key, its count grows by one and its last_seen, subject and
// message are the new ones (severity only ever rises); otherwise a new alert
// is created, waiting for delivery. created tells which. Concurrent raisers
// of one key on PostgreSQL end with one row whose count is the number of raises.
func (s *Store) RaiseAlert(ctx context.Context, p RaiseAlertParams) (a *Alert, created bool, err error) {
	if err := p.validate(); err != nil {
		return nil, false, err
	}
	now := s.now().Truncate(time.Microsecond) // PostgreSQL's precision, so that the row compares equal
	var out Alert
	armed := false
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Raw(raiseAlertSQL, p.Key, p.Severity, alertText(p.Subject, AlertSubjectMax),
			alertText(p.Message, AlertMessageMax), p.Region, now, now, now).Scan(&out).Error; err != nil {
			return err
		}
		if out.ID == 0 {
			return fmt.Errorf("the upsert returned no row")
		}
		// Created or escalated just now: notifiers have something to deliver.
		armed = out.Count == 1 || (out.NextDeliveryAt != nil && out.DeliveryAttempts == 0 && out.NextDeliveryAt.Equal(now))
		if armed && s.dialect == DialectPostgres {
			return tx.Exec("SELECT pg_notify(?, '')", ChannelAlertsRaised).Error
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("raise alert %s: %w", p.Key, translate(err))
	}
	if armed {
		s.bus.publish(ChannelAlertsRaised)
	}
	return &out, out.Count == 1, nil
}

// ResolveAlert closes the open alert with key, if any, and reports whether
// there was one. Resolving a key that has no open alert changes nothing.
func (s *Store) ResolveAlert(ctx context.Context, key string) (bool, error) {
	res := s.db.WithContext(ctx).Model(&Alert{}).Where("dedupe_key = ? AND resolved_at IS NULL", key).
		Update("resolved_at", s.now())
	if res.Error != nil {
		return false, fmt.Errorf("resolve alert %s: %w", key, res.Error)
	}
	return res.RowsAffected > 0, nil
}

// ResolveAlertByID closes alert id (for an operator) and returns it; an
// alert resolved already is returned as it is. ErrNotFound when no such alert.
func (s *Store) ResolveAlertByID(ctx context.Context, id int64) (*Alert, error) {
	var out Alert
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&Alert{}).Where("id = ? AND resolved_at IS NULL", id).Update("resolved_at", s.now()).Error; err != nil {
			return err
		}
		return tx.Where("id = ?", id).First(&out).Error
	})
	if err != nil {
		return nil, fmt.Errorf("resolve alert %d: %w", id, translate(err))
	}
	return &out, nil
}

// AckAlert records that by has seen alert id and returns it. The first
// acknowledgement stands: acknowledging again changes nothing. ErrNotFound
// when no such alert.
func (s *Store) AckAlert(ctx context.Context, id int64, by string) (*Alert, error) {
	by = strings.TrimSpace(by)
	if by == "" || utf8.RuneCountInString(by) > 128 || !utf8.ValidString(by) || strings.ContainsRune(by, 0) {
		return nil, Invalid("by", "an acknowledgement needs who gave it (1-128 characters), got %q", by)
	}
	var out Alert
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&Alert{}).Where("id = ? AND acked_at IS NULL", id).
			Updates(map[string]any{"acked_by": by, "acked_at": s.now()}).Error; err != nil {
			return err
		}
		return tx.Where("id = ?", id).First(&out).Error
	})
	if err != nil {
		return nil, fmt.Errorf("acknowledge alert %d: %w", id, translate(err))
	}
	return &out, nil
}

// GetAlert returns alert id, or ErrNotFound.
func (s *Store) GetAlert(ctx context.Context, id int64) (*Alert, error) {
	var a Alert
	if err := s.db.WithContext(ctx).Where("id = ?", id).First(&a).Error; err != nil {
		return nil, fmt.Errorf("get alert %d: %w", id, translate(err))
	}
	return &a, nil
}

// AlertFilter selects alerts for ListAlerts. Zero fields do not filter.
type AlertFilter struct {
	// Open keeps only alerts not resolved.
	Open bool
	// Unacked keeps only alerts nobody acknowledged.
	Unacked bool
	// MinSeverity keeps alerts of this severity or a higher one.
	MinSeverity string
	Region      string
	// Key keeps the alerts of one dedupe key (its incidents, newest first).
	Key string
	// Cursor is the alert ID after which (older than) the page starts.
	Cursor int64
	Limit  int
}

// ListAlerts returns alerts newest first and the cursor of the next page (0 at the end).
func (s *Store) ListAlerts(ctx context.Context, f AlertFilter) ([]Alert, int64, error) {
	if f.MinSeverity != "" && AlertSeverityRank(f.MinSeverity) == 0 {
		return nil, 0, Invalid("severity", "must be one of %s; got %q", strings.Join(AlertSeverities, ", "), f.MinSeverity)
	}
	if f.Cursor < 0 {
		return nil, 0, Invalid("cursor", "must be an alert ID, got %d", f.Cursor)
	}
	if f.Limit <= 0 {
		f.Limit = ListLimitDefault
	}
	f.Limit = min(f.Limit, ListLimitMax)
	q := s.db.WithContext(ctx).Order("id DESC").Limit(f.Limit + 1)
	if f.Open {
		q = q.Where("resolved_at IS NULL")
	}
	if f.Unacked {
		q = q.Where("acked_at IS NULL")
	}
	if r := AlertSeverityRank(f.MinSeverity); r > 1 {
		q = q.Where("severity IN ?", AlertSeverities[r-1:])
	}
	if f.Region != "" {
		q = q.Where("region = ?", f.Region)
	}
	if f.Key != "" {
		q = q.Where("dedupe_key = ?", f.Key)
	}
	if f.Cursor > 0 {
		q = q.Where("id < ?", f.Cursor)
	}
	var out []Alert
	if err := q.Find(&out).Error; err != nil {
		return nil, 0, fmt.Errorf("list alerts: %w", err)
	}
	var next int64
	if len(out) > f.Limit {
		out = out[:f.Limit]
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

// ClaimAlertDeliveriesParams asks for up to Limit alerts waiting for delivery.
type ClaimAlertDeliveriesParams struct {
	Limit int
	// Lease is how long the claim holds: the alerts are not offered again
	// before it ends, unless the claimer reports sooner. It must cover the
	// claimer's whole delivery round.
	Lease time.Duration
}

// ClaimAlertDeliveries takes up to Limit alerts whose delivery is due (oldest
// due first): each claim bumps DeliveryAttempts and DeliveryToken and moves
// NextDeliveryAt to now+Lease, so that several notifiers never deliver one
// event twice while a claim holds. On PostgreSQL the rows are locked with FOR
// UPDATE SKIP LOCKED. Report each claimed alert with FinishAlertDelivery.
func (s *Store) ClaimAlertDeliveries(ctx context.Context, p ClaimAlertDeliveriesParams) ([]Alert, error) {
	switch {
	case p.Lease <= 0:
		return nil, Invalid("lease", "must be positive, got %s", p.Lease)
	case p.Limit <= 0:
		return nil, nil
	}
	var claimed []Alert
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := s.now()
		q := tx.Where("next_delivery_at IS NOT NULL AND next_delivery_at <= ?", now).
			Order("next_delivery_at, id").Limit(p.Limit)
		if s.dialect == DialectPostgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
		}
		var due []Alert
		if err := q.Find(&due).Error; err != nil {
			return err
		}
		until := now.Add(p.Lease)
		for i := range due {
			a := &due[i]
			res := tx.Model(&Alert{}).Where("id = ? AND delivery_token = ?", a.ID, a.DeliveryToken).Updates(map[string]any{
				"delivery_attempts": gorm.Expr("delivery_attempts + 1"),
				"delivery_token":    gorm.Expr("delivery_token + 1"),
				"next_delivery_at":  until,
			})
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				continue // changed since we read it
			}
			a.DeliveryAttempts++
			a.DeliveryToken++
			a.NextDeliveryAt = &until
			claimed = append(claimed, *a)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim alert deliveries: %w", err)
	}
	return claimed, nil
}

// AlertDeliveryOutcome is what a notifier reports for one claimed alert.
type AlertDeliveryOutcome struct {
	ID    int64
	Token int64 // the DeliveryToken of the claim
	// DeliveredTo names every webhook that has accepted this event so far
	// (including earlier attempts), so that a retry skips them.
	DeliveredTo []string
	// Done means every webhook accepted the event.
	Done bool
	// Error is the failure of this attempt, when not Done.
	Error string
	// RetryAfter is how long after now (the Store's clock) to try again,
	// when not Done; zero or less gives up.
	RetryAfter time.Duration
}

// FinishAlertDelivery records the outcome of a claimed delivery. When the
// claim is no longer current (it expired and another notifier claimed the
// alert, or the alert was escalated meanwhile) nothing changes and the error
// is ErrConflict.
func (s *Store) FinishAlertDelivery(ctx context.Context, o AlertDeliveryOutcome) error {
	if !o.Done && strings.TrimSpace(o.Error) == "" {
		return Invalid("error", "a failed delivery needs its error")
	}
	set := map[string]any{"delivered_to": NewJSON(o.DeliveredTo)}
	switch {
	case o.Done:
		set["delivered_at"] = s.now()
		set["next_delivery_at"] = nil
		set["delivery_error"] = ""
	case o.RetryAfter > 0:
		set["next_delivery_at"] = s.now().Add(o.RetryAfter)
		set["delivery_error"] = alertText(o.Error, AlertMessageMax)
	default:
		set["next_delivery_at"] = nil
		set["delivery_error"] = alertText("gave up: "+o.Error, AlertMessageMax)
	}
	if set["delivered_to"].(JSON[[]string]).V == nil {
		set["delivered_to"] = NewJSON([]string{})
	}
	res := s.db.WithContext(ctx).Model(&Alert{}).Where("id = ? AND delivery_token = ?", o.ID, o.Token).Updates(set)
	if res.Error != nil {
		return fmt.Errorf("finish delivery of alert %d: %w", o.ID, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("finish delivery of alert %d: %w: the claim is no longer current", o.ID, ErrConflict)
	}
	return nil
}
