package catalog

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // every IANA zone, also on hosts without a zoneinfo database
	"unicode/utf8"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/robfig/cron/v3"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Schedules: cron expressions in a time zone that create runs of a mapping
// as their owner. This file holds the model, the pure parts (cron parsing
// and tick computation, parameter templates, validation) shared by the
// broker (validation) and the scheduler (firing), and the Store methods.
//
// A schedule's NextTick is the earliest tick not yet processed: it only
// moves forward, by compare-and-set in RecordScheduleTick, so two servers
// never process one tick twice. Each processed tick leaves one row in
// schedule_ticks, whose primary key (schedule_id, tick) is the second guard;
// the runs themselves carry the idempotency key ScheduleIdempotencyKey, so
// that a fire repeated after a crash returns the run of the first.
func init() {
	registerMigration(&gormigrate.Migration{
		ID: "0004_schedules",
		Migrate: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&Schedule{}, &ScheduleTick{})
		},
	})
}

// Overlap policies: what a tick does while the schedule's previous run is
// still pending, queued or active.
const (
	// OverlapSkip records the tick as skipped: no second run.
	OverlapSkip = "skip"
	// OverlapQueue fires anyway: the new run waits behind the previous one
	// like any pending run.
	OverlapQueue = "queue"
)

// Catch-up policies: what happens to ticks missed while no scheduler ran
// them (no leader, every server down) for longer than the scheduler's grace.
const (
	// CatchUpSkip records the missed ticks as skipped; the schedule resumes
	// with its next tick.
	CatchUpSkip = "skip"
	// CatchUpLatest fires the latest missed tick once and skips the others.
	CatchUpLatest = "latest"
)

// Outcomes of a processed tick.
const (
	TickFired   = "fired"   // a run was created (or found, for a repeated fire)
	TickSkipped = "skipped" // the overlap or catch-up policy skipped it
	TickFailed  = "failed"  // the run was refused (validation, entitlement); Reason says why
)

// Defaults of a schedule's fields.
const (
	ScheduleTimeZoneDefault = "UTC"
	ScheduleOverlapDefault  = OverlapSkip
	ScheduleCatchUpDefault  = CatchUpLatest
)

// Limits of a schedule's fields.
const (
	ScheduleCronMaxLength     = 200
	ScheduleParamsMax         = 64
	ScheduleParamValueMax     = 1000
	SchedulePriorityMin       = -1000 // as a run's priority
	SchedulePriorityMax       = 1000
	ScheduleDescriptionMaxLen = 1000
)

// Schedule fires runs of a mapping at the ticks of a cron expression in a
// time zone, as its owner.
type Schedule struct {
	ID          int64  `gorm:"primaryKey" json:"id"`
	Name        string `gorm:"size:128;not null;uniqueIndex" json:"name"`
	Region      string `gorm:"size:64;not null;index:idx_schedules_due,priority:1" json:"region"`
	Mapping     string `gorm:"size:128;not null;index" json:"mapping"`
	Description string `gorm:"size:1000" json:"description,omitempty"`
	// Cron is a cron expression: 5 fields (minute hour day-of-month month
	// day-of-week), 6 with seconds first, or a descriptor (@hourly, @daily,
	// @weekly, @monthly, @yearly, @every 90m).
	Cron string `gorm:"size:200;not null" json:"cron"`
	// TimeZone is the IANA zone the expression is read in (Europe/Paris).
	TimeZone string `gorm:"size:64;not null" json:"time_zone"`
	// Params are the run's parameters; values may derive from the tick with
	// templates such as ${tick-1d:date} (see ExpandTickTemplate).
	Params   JSON[map[string]string] `json:"params"`
	Priority int                     `gorm:"not null;default:0" json:"priority"`
	Overlap  string                  `gorm:"size:16;not null" json:"overlap"`
	CatchUp  string                  `gorm:"size:16;not null" json:"catch_up"`
	Enabled  bool                    `gorm:"not null" json:"enabled"`
	// OwnerID is the user runs are created as; Owner is that user's name.
	OwnerID int64  `gorm:"not null;index" json:"owner_id"`
	Owner   string `gorm:"size:128;not null" json:"owner"`
	// OwnerIP is the address the owner defined the schedule from: its runs
	// are submitted as from there (entitlements may be bound to networks).
	OwnerIP string `gorm:"size:64" json:"owner_ip,omitempty"`
	// NextTick is the earliest tick not yet processed; nil while disabled.
	NextTick *time.Time `gorm:"index:idx_schedules_due,priority:2" json:"next_tick,omitempty"`
	// LastTick, LastOutcome, LastRunID and LastError tell what the latest processed tick did.
	LastTick    *time.Time `json:"last_tick,omitempty"`
	LastOutcome string     `gorm:"size:16" json:"last_outcome,omitempty"`
	LastRunID   string     `gorm:"size:24" json:"last_run_id,omitempty"`
	LastError   string     `gorm:"size:4000" json:"last_error,omitempty"`
	CreatedBy   string     `gorm:"size:128" json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// ScheduleTick is one processed tick of a schedule. Its primary key makes a
// tick processed at most once, whatever the number of servers.
type ScheduleTick struct {
	ScheduleID int64     `gorm:"primaryKey;autoIncrement:false" json:"schedule_id"`
	Tick       time.Time `gorm:"primaryKey" json:"tick"`
	Outcome    string    `gorm:"size:16;not null" json:"outcome"`
	RunID      string    `gorm:"size:24;index" json:"run_id,omitempty"`
	Reason     string    `gorm:"size:4000" json:"reason,omitempty"`
	Node       string    `gorm:"size:128" json:"node,omitempty"`
	RecordedAt time.Time `gorm:"not null;index" json:"recorded_at"`
}

// ErrRefused means a request was refused by validation or entitlement
// checks (not by an outage): sending it again unchanged cannot succeed.
var ErrRefused = errors.New("refused")

// ScheduledRun is what a schedule asks the broker for at one tick: a run of
// Mapping with Params (already derived from the tick) as user OwnerID, from
// ClientIP, carrying IdempotencyKey.
type ScheduledRun struct {
	ScheduleID     int64
	Schedule       string
	Tick           time.Time
	OwnerID        int64
	Mapping        string
	Params         map[string]string
	Priority       int
	IdempotencyKey string
	ClientIP       string
}

// ScheduleIdempotencyKey is the idempotency key of the run of a schedule's
// tick: a fire repeated by another server, or after a crash, returns the
// first run instead of creating another.
func ScheduleIdempotencyKey(scheduleID int64, tick time.Time) string {
	return fmt.Sprintf("schedule:%d:%d", scheduleID, tick.Unix())
}

// ---------------------------------------------------------------------------
// Cron expressions and ticks.

var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// CronSchedule is a parsed cron expression in a time zone. Its ticks are
// whole seconds. Around daylight-saving changes it behaves like Vixie cron:
// a job at a fixed time of day (no '*' in its second, minute and hour
// fields) whose time falls in the hour skipped in spring fires once at the
// end of the gap, and fires once, not twice, in the hour repeated in
// autumn; a job with a wildcard in those fields (every 15 minutes, hourly)
// follows real time: it has no ticks in the gap and ticks in both passes of
// the repeated hour. @every DURATION counts real time.
type CronSchedule struct {
	expr  string
	sched cron.Schedule
	loc   *time.Location
	fixed bool
}

// cronHelp is the hint of every cron expression error.
const cronHelp = "use 5 fields (minute hour day-of-month month day-of-week, such as \"30 2 * * 1-5\"), 6 with seconds first (\"*/10 * * * * *\"), or a descriptor (@hourly, @daily, @weekly, @monthly, @yearly, @every 90m)"

// ParseCronSchedule parses expr in the IANA time zone zone ("" is UTC). Its
// errors are *ValidationError of the field "cron" or "time_zone".
func ParseCronSchedule(expr, zone string) (*CronSchedule, error) {
	loc, err := LoadTimeZone(zone)
	if err != nil {
		return nil, err
	}
	expr = strings.TrimSpace(expr)
	switch {
	case expr == "":
		return nil, Invalid("cron", "is required: %s", cronHelp)
	case len(expr) > ScheduleCronMaxLength:
		return nil, Invalid("cron", "must be at most %d characters, got %d", ScheduleCronMaxLength, len(expr))
	case strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ="):
		return nil, Invalid("cron", "%q names a time zone: give it in time_zone instead, and the expression alone in cron", expr)
	case !utf8.ValidString(expr) || strings.ContainsRune(expr, 0):
		return nil, Invalid("cron", "%q is not a cron expression: %s", expr, cronHelp)
	}
	sched, err := cronParser.Parse(expr)
	if err != nil {
		return nil, Invalid("cron", "%q is not a cron expression (%v): %s", expr, err, cronHelp)
	}
	c := &CronSchedule{expr: expr, sched: sched, loc: loc, fixed: fixedTime(expr)}
	if _, ok := sched.(cron.ConstantDelaySchedule); ok {
		c.fixed = false
	}
	// The parser accepts what can never match (30 February); refuse it here.
	if c.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() && c.Next(time.Now()).IsZero() {
		return nil, Invalid("cron", "%q never fires: no time matches it", expr)
	}
	return c, nil
}

// LoadTimeZone loads an IANA time zone; "" is UTC. "Local" is refused:
// servers in different zones would read the schedule differently.
func LoadTimeZone(zone string) (*time.Location, error) {
	if zone == "" {
		return time.UTC, nil
	}
	if zone == "Local" || len(zone) > 64 || !utf8.ValidString(zone) || strings.ContainsRune(zone, 0) {
		return nil, Invalid("time_zone", "%q is not an IANA time zone such as Europe/Paris, America/New_York or UTC", zone)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, Invalid("time_zone", "%q is not an IANA time zone such as Europe/Paris, America/New_York or UTC", zone)
	}
	return loc, nil
}

// fixedTime reports whether expr fires at fixed times of day: a descriptor
// of a day or longer, or fields whose second (when given), minute and hour
// do not start with '*'.
func fixedTime(expr string) bool {
	if strings.HasPrefix(expr, "@") {
		switch expr {
		case "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight":
			return true
		}
		return false
	}
	f := strings.Fields(expr)
	if len(f) < 5 {
		return false
	}
	for _, field := range f[:len(f)-3] { // [second] minute hour
		if strings.HasPrefix(field, "*") || strings.HasPrefix(field, "?") {
			return false
		}
	}
	return true
}

// String returns the expression.
func (c *CronSchedule) String() string { return c.expr }

// Location returns the schedule's time zone.
func (c *CronSchedule) Location() *time.Location { return c.loc }

// Next returns the first tick strictly after after, in UTC, or the zero time
// when there is none within five years.
func (c *CronSchedule) Next(after time.Time) time.Time {
	t := after.In(c.loc)
	for range 1000 { // each round skips one repeated wall-clock time; a handful suffice
		n := c.sched.Next(t)
		if n.IsZero() {
			return n
		}
		if c.fixed {
			if g, ok := c.gapTick(t, n); ok {
				return g.UTC()
			}
			if c.repeatedWallClock(n) {
				t = n
				continue
			}
		}
		return n.UTC()
	}
	return time.Time{}
}

// gapTick finds a forward daylight-saving change in (t, n) whose skipped
// wall-clock interval holds a time the expression matches: that time never
// happens, so it fires at the change instead.
func (c *CronSchedule) gapTick(t, n time.Time) (time.Time, bool) {
	cur := t
	for {
		_, end := cur.ZoneBounds()
		if end.IsZero() || !end.Before(n) {
			return time.Time{}, false
		}
		_, before := end.Add(-time.Second).Zone()
		_, after := end.Zone()
		if gap := time.Duration(after-before) * time.Second; gap > 0 {
			// Read the skipped interval as wall-clock times, in UTC where
			// every wall-clock time exists.
			w := end.In(c.loc)
			wallEnd := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, time.UTC)
			m := c.sched.Next(wallEnd.Add(-gap - time.Second))
			if !m.IsZero() && m.Before(wallEnd) {
				return end, true
			}
		}
		cur = end
	}
}

// repeatedWallClock reports whether n lies in the second pass of a
// wall-clock interval repeated by a backward daylight-saving change.
func (c *CronSchedule) repeatedWallClock(n time.Time) bool {
	start, _ := n.ZoneBounds()
	if start.IsZero() {
		return false
	}
	_, before := start.Add(-time.Second).Zone()
	_, after := n.Zone()
	back := time.Duration(before-after) * time.Second
	return back > 0 && n.Before(start.Add(back))
}

// Upcoming returns the next n ticks after after.
func (c *CronSchedule) Upcoming(after time.Time, n int) []time.Time {
	out := make([]time.Time, 0, n)
	for t := after; len(out) < n; {
		t = c.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out
}

// ---------------------------------------------------------------------------
// Parameter templates.

// Named layouts of ${tick:NAME}.
var tickLayouts = map[string]string{
	"date":     DateLayout,
	"datetime": "2006-01-02T15:04:05",
	"rfc3339":  time.RFC3339,
	"compact":  "20060102",
	"month":    "2006-01",
	"year":     "2006",
	"time":     "15:04:05",
}

var tickExprRE = regexp.MustCompile(`^tick((?:[+-][0-9]{1,6}(?:mo|[smhdwy]))*)(?::(.+))?$`)
var tickOffsetRE = regexp.MustCompile(`([+-])([0-9]{1,6})(mo|[smhdwy])`)

// ExpandTickTemplate expands the templates of one parameter value for a
// tick, read in the tick's location (the schedule's time zone):
//
//	${tick}                the tick in RFC 3339: 2026-03-01T02:00:00+01:00
//	${tick:LAYOUT}         formatted with a name: date (2006-01-02), datetime
//	                       (2006-01-02T15:04:05), rfc3339, compact (20060102),
//	                       month (2006-01), year (2006), time (15:04:05),
//	                       unix (seconds since 1970); or a Go layout such as
//	                       2006-01-02T15
//	${tick-1d:date}        shifted first by any number of [+-]N UNIT, UNIT one
//	                       of s, m, h (real time), d, w (calendar days and
//	                       weeks: the wall-clock time stays), mo, y (calendar
//	                       months and years: the 31st becomes the month's last day)
//	$${                    a literal "${"
//
// So business_date: "${tick-1d:date}" is the day before the tick's date.
// field names the parameter in errors (*ValidationError).
func ExpandTickTemplate(field, tmpl string, tick time.Time) (string, error) {
	var b strings.Builder
	for i := 0; i < len(tmpl); {
		switch {
		case strings.HasPrefix(tmpl[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(tmpl[i:], "${"):
			end := strings.IndexByte(tmpl[i:], '}')
			if end < 0 {
				return "", Invalid(field, "%q has a ${ without its closing }", tmpl)
			}
			v, err := expandTickExpr(field, tmpl[i+2:i+end], tick)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i += end + 1
		default:
			b.WriteByte(tmpl[i])
			i++
		}
	}
	return b.String(), nil
}

func expandTickExpr(field, expr string, tick time.Time) (string, error) {
	m := tickExprRE.FindStringSubmatch(strings.TrimSpace(expr))
	if m == nil {
		return "", Invalid(field, "${%s} is not a tick template: write ${tick}, ${tick:date} or ${tick-1d:date} (offsets [+-]N with s, m, h, d, w, mo, y)", expr)
	}
	t := tick
	for _, off := range tickOffsetRE.FindAllStringSubmatch(m[1], -1) {
		n, _ := strconv.Atoi(off[2])
		if off[1] == "-" {
			n = -n
		}
		switch off[3] {
		case "s":
			t = t.Add(time.Duration(n) * time.Second)
		case "m":
			t = t.Add(time.Duration(n) * time.Minute)
		case "h":
			t = t.Add(time.Duration(n) * time.Hour)
		case "d":
			t = t.AddDate(0, 0, n)
		case "w":
			t = t.AddDate(0, 0, 7*n)
		case "mo":
			t = addMonthsClamped(t, n)
		case "y":
			t = addMonthsClamped(t, 12*n)
		}
	}
	layout := m[2]
	switch {
	case layout == "":
		return t.Format(time.RFC3339), nil
	case layout == "unix":
		return strconv.FormatInt(t.Unix(), 10), nil
	case tickLayouts[layout] != "":
		return t.Format(tickLayouts[layout]), nil
	}
	// A Go layout must hold at least one element, or it is a typo.
	probe := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if probe.Format(layout) == layout {
		return "", Invalid(field, "%q in ${%s} is neither a layout name (date, datetime, rfc3339, compact, month, year, time, unix) nor a Go layout such as 2006-01-02", layout, expr)
	}
	return t.Format(layout), nil
}

// addMonthsClamped adds n calendar months to t, keeping the wall-clock time
// and clamping the day to the target month's last day (31 March - 1 month
// is 28 or 29 February, not 3 March).
func addMonthsClamped(t time.Time, n int) time.Time {
	y, mo, d := t.Date()
	first := time.Date(y, mo+time.Month(n), 1, 0, 0, 0, 0, t.Location())
	last := first.AddDate(0, 1, -1).Day()
	return time.Date(first.Year(), first.Month(), min(d, last), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
}

// ExpandParams expands the templates of every parameter for tick (read in
// the schedule's time zone).
func (sc *Schedule) ExpandParams(c *CronSchedule, tick time.Time) (map[string]string, error) {
	out := make(map[string]string, len(sc.Params.V))
	t := tick.In(c.Location())
	for _, k := range sortedKeys(sc.Params.V) {
		v, err := ExpandTickTemplate("params."+k, sc.Params.V[k], t)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// ---------------------------------------------------------------------------
// Validation.

// WithDefaults fills the empty time zone, overlap and catch-up policies and
// parameters with their defaults.
func (sc *Schedule) WithDefaults() {
	if sc.TimeZone == "" {
		sc.TimeZone = ScheduleTimeZoneDefault
	}
	if sc.Overlap == "" {
		sc.Overlap = ScheduleOverlapDefault
	}
	if sc.CatchUp == "" {
		sc.CatchUp = ScheduleCatchUpDefault
	}
	if sc.Params.V == nil {
		sc.Params.V = map[string]string{}
	}
}

// Validate checks a schedule's own fields (not its mapping, which the Store
// checks) and returns its parsed expression.
func (sc *Schedule) Validate() (*CronSchedule, error) {
	if err := ValidateName("name", sc.Name); err != nil {
		return nil, err
	}
	if sc.Mapping == "" {
		return nil, Invalid("mapping", "is required: the name of the mapping to run")
	}
	if err := ValidateName("mapping", sc.Mapping); err != nil {
		return nil, err
	}
	c, err := ParseCronSchedule(sc.Cron, sc.TimeZone)
	if err != nil {
		return nil, err
	}
	switch {
	case sc.Priority < SchedulePriorityMin || sc.Priority > SchedulePriorityMax:
		return nil, Invalid("priority", "must be between %d and %d, got %d", SchedulePriorityMin, SchedulePriorityMax, sc.Priority)
	case sc.Overlap != OverlapSkip && sc.Overlap != OverlapQueue:
		return nil, Invalid("overlap", "must be %q (no run while the previous one is still going) or %q (queue it behind), got %q", OverlapSkip, OverlapQueue, sc.Overlap)
	case sc.CatchUp != CatchUpSkip && sc.CatchUp != CatchUpLatest:
		return nil, Invalid("catch_up", "must be %q (drop ticks missed while no scheduler ran) or %q (run the latest missed tick once), got %q", CatchUpSkip, CatchUpLatest, sc.CatchUp)
	case utf8.RuneCountInString(sc.Description) > ScheduleDescriptionMaxLen:
		return nil, Invalid("description", "must be at most %d characters, got %d", ScheduleDescriptionMaxLen, utf8.RuneCountInString(sc.Description))
	case !utf8.ValidString(sc.Description) || strings.ContainsRune(sc.Description, 0):
		return nil, Invalid("description", "must be valid UTF-8 without NUL characters")
	case len(sc.Params.V) > ScheduleParamsMax:
		return nil, Invalid("params", "at most %d parameters, got %d", ScheduleParamsMax, len(sc.Params.V))
	case sc.OwnerID <= 0 || sc.Owner == "":
		return nil, Invalid("owner", "a schedule needs an owner: the user its runs are created as")
	case len(sc.OwnerIP) > 64:
		return nil, Invalid("owner_ip", "must be at most 64 characters")
	}
	for _, k := range sortedKeys(sc.Params.V) {
		v := sc.Params.V[k]
		if !paramNameRE.MatchString(k) {
			return nil, Invalid("params."+k, "%q is not a valid parameter name", k)
		}
		if utf8.RuneCountInString(v) > ScheduleParamValueMax || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return nil, Invalid("params."+k, "must be valid UTF-8 of at most %d characters without NUL", ScheduleParamValueMax)
		}
		// Syntax only: the values are checked against the mapping by the Store.
		if _, err := ExpandTickTemplate("params."+k, v, time.Date(2001, 2, 3, 4, 5, 6, 0, c.Location())); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// CheckAgainstMapping checks that the schedule's parameters, derived from
// tick, are valid for mapping m as a run request would be: declared, of
// their type, inside date windows (with tick as today), not leaving the
// systems' roots. Errors name the parameter and the tick.
func (sc *Schedule) CheckAgainstMapping(m *Mapping, c *CronSchedule, tick time.Time) error {
	if !m.Enabled {
		return Invalid("mapping", "mapping %s is disabled (version %d): enable it before scheduling it", m.Name, m.Version)
	}
	params, err := sc.ExpandParams(c, tick)
	if err != nil {
		return err
	}
	in := make(map[string]any, len(params))
	for k, v := range params {
		in[k] = v
	}
	at := tick.In(c.Location()).Format(time.RFC3339)
	resolved, err := m.ResolveParams(in, tick.UTC())
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return &ValidationError{Field: ve.Field, Message: fmt.Sprintf("%s (for the tick %s)", ve.Message, at)}
		}
		return err
	}
	for _, side := range []struct{ field, pattern string }{{"source.path", m.Source.V.Path}, {"target.path", m.Target.V.Path}} {
		if _, err := ExpandPath(side.field, side.pattern, resolved); err != nil {
			for _, k := range sortedKeys(resolved) {
				if !strings.Contains(side.pattern, "{"+k+"}") {
					continue
				}
				if _, perr := CleanRelPath("params."+k, resolved[k]); perr != nil {
					return Invalid("params."+k, "%q would make the mapping's %s leave the system's root (for the tick %s)", resolved[k], side.field, at)
				}
			}
			var ve *ValidationError
			if errors.As(err, &ve) {
				return Invalid("params", "the tick %s makes mapping %s's %s invalid: %s", at, m.Name, side.field, ve.Message)
			}
			return err
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// Store methods.

// CreateSchedule validates sc (defaults filled) against its mapping, which
// must exist and be enabled, and stores it; its region is the mapping's.
// An existing name is ErrConflict. Its first tick is the first after now.
func (s *Store) CreateSchedule(ctx context.Context, sc *Schedule) error {
	sc.WithDefaults()
	c, err := sc.Validate()
	if err != nil {
		return err
	}
	m, err := s.scheduleMapping(ctx, sc.Mapping)
	if err != nil {
		return err
	}
	now := s.now()
	next := c.Next(now)
	if next.IsZero() {
		return Invalid("cron", "%q never fires after now", sc.Cron)
	}
	if err := sc.CheckAgainstMapping(m, c, next); err != nil {
		return err
	}
	sc.ID, sc.Region, sc.CreatedAt, sc.UpdatedAt = 0, m.Region, now, now
	sc.NextTick, sc.LastTick, sc.LastOutcome, sc.LastRunID, sc.LastError = nil, nil, "", "", ""
	if sc.Enabled {
		sc.NextTick = &next
	}
	if err := translate(s.db.WithContext(ctx).Create(sc).Error); err != nil {
		return fmt.Errorf("create schedule %s: %w", sc.Name, err)
	}
	return nil
}

func (s *Store) scheduleMapping(ctx context.Context, name string) (*Mapping, error) {
	m, err := s.GetMapping(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return nil, Invalid("mapping", "no mapping named %q", name)
	}
	return m, err
}

// UpdateSchedule replaces the definition of the schedule named sc.Name
// (mapping, expression, zone, parameters, priority, policies, enabled,
// description, owner), validated as by CreateSchedule, and fills sc with the
// stored row. Its history stays. Its next tick stays when the expression and
// zone do not change and it stays enabled; otherwise it is the first after
// now (ticks missed while disabled are not caught up).
func (s *Store) UpdateSchedule(ctx context.Context, sc *Schedule) error {
	sc.WithDefaults()
	c, err := sc.Validate()
	if err != nil {
		return err
	}
	m, err := s.scheduleMapping(ctx, sc.Mapping)
	if err != nil {
		return err
	}
	now := s.now()
	first := c.Next(now)
	if first.IsZero() {
		return Invalid("cron", "%q never fires after now", sc.Cron)
	}
	if err := sc.CheckAgainstMapping(m, c, first); err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx *gorm.DB) error {
		var cur Schedule
		q := tx.Where("name = ?", sc.Name)
		if s.dialect == DialectPostgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		if err := translate(q.First(&cur).Error); err != nil {
			return err
		}
		var next *time.Time
		switch {
		case !sc.Enabled:
		case cur.Enabled && cur.NextTick != nil && cur.Cron == sc.Cron && cur.TimeZone == sc.TimeZone:
			next = cur.NextTick
		default:
			next = &first
		}
		set := map[string]any{
			"region": m.Region, "mapping": sc.Mapping, "description": sc.Description, "cron": sc.Cron,
			"time_zone": sc.TimeZone, "params": NewJSON(sc.Params.V), "priority": sc.Priority,
			"overlap": sc.Overlap, "catch_up": sc.CatchUp, "enabled": sc.Enabled, "owner_id": sc.OwnerID,
			"owner": sc.Owner, "owner_ip": sc.OwnerIP, "next_tick": next, "updated_at": now,
		}
		if err := tx.Model(&Schedule{}).Where("id = ?", cur.ID).UpdateColumns(set).Error; err != nil {
			return err
		}
		*sc = Schedule{}
		return tx.Where("id = ?", cur.ID).First(sc).Error
	})
	if err != nil {
		return fmt.Errorf("update schedule %s: %w", sc.Name, err)
	}
	return nil
}

// GetSchedule returns a schedule by name.
func (s *Store) GetSchedule(ctx context.Context, name string) (*Schedule, error) {
	var sc Schedule
	if err := translate(s.db.WithContext(ctx).Where("name = ?", name).First(&sc).Error); err != nil {
		return nil, fmt.Errorf("get schedule %s: %w", name, err)
	}
	return &sc, nil
}

// ScheduleFilter selects schedules for ListSchedules; empty fields do not filter.
type ScheduleFilter struct {
	Region  string
	Mapping string
	// Mappings, when non-nil, restricts the list to schedules of these mappings.
	Mappings []string
}

// ListSchedules returns schedules by name.
func (s *Store) ListSchedules(ctx context.Context, f ScheduleFilter) ([]Schedule, error) {
	q := s.db.WithContext(ctx).Order("name")
	if f.Region != "" {
		q = q.Where("region = ?", f.Region)
	}
	if f.Mapping != "" {
		q = q.Where("mapping = ?", f.Mapping)
	}
	if f.Mappings != nil {
		if len(f.Mappings) == 0 {
			return nil, nil
		}
		q = q.Where("mapping IN ?", f.Mappings)
	}
	var out []Schedule
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	return out, nil
}

// DeleteSchedule deletes a schedule and its ticks; the runs it created stay.
func (s *Store) DeleteSchedule(ctx context.Context, name string) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		var sc Schedule
		if err := translate(tx.Select("id").Where("name = ?", name).First(&sc).Error); err != nil {
			return err
		}
		if err := tx.Where("schedule_id = ?", sc.ID).Delete(&ScheduleTick{}).Error; err != nil {
			return err
		}
		return tx.Delete(&Schedule{}, sc.ID).Error
	})
	if err != nil {
		return fmt.Errorf("delete schedule %s: %w", name, err)
	}
	return nil
}

// ListDueSchedules returns a region's enabled schedules whose next tick has
// come (at or before now), earliest first, at most limit.
func (s *Store) ListDueSchedules(ctx context.Context, region string, limit int) ([]Schedule, error) {
	if limit <= 0 {
		limit = ListLimitDefault
	}
	var out []Schedule
	err := s.db.WithContext(ctx).
		Where("region = ? AND enabled = ? AND next_tick IS NOT NULL AND next_tick <= ?", region, true, s.now()).
		Order("next_tick, id").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list due schedules of region %s: %w", region, err)
	}
	return out, nil
}

// RecordTickParams records one processed tick of a schedule.
type RecordTickParams struct {
	ScheduleID int64
	// Expect is the schedule's NextTick the caller planned from: the record
	// happens only while the schedule still has it (compare-and-set).
	Expect time.Time
	// Tick is the processed tick, at or after Expect.
	Tick time.Time
	// Next is the schedule's next tick after Tick; zero when there is none
	// (the schedule then stops until it is changed).
	Next    time.Time
	Outcome string // TickFired, TickSkipped or TickFailed
	RunID   string // the run of a fired tick
	Reason  string // why it was skipped or failed, or how a catch-up came about
	Node    string
	// Leader fencing, when LeaseName is set: the record happens only while
	// this lease is held by LeaseHolder with LeaseToken and unexpired.
	LeaseName   string
	LeaseHolder string
	LeaseToken  int64
}

// RecordScheduleTick records a processed tick in one transaction: the
// schedule's NextTick moves from p.Expect to p.Next (ErrConflict when it is
// no longer p.Expect: another server processed it, or the schedule was
// changed), its last tick, outcome, run and error are set, a tick row is
// inserted, and a fired tick's run gets a "scheduled" event naming the
// schedule and the tick. recorded is false when the tick row existed already
// (the tick was processed before; nothing but NextTick changes then).
// A stale leader gets ErrNotLeader and changes nothing.
func (s *Store) RecordScheduleTick(ctx context.Context, p RecordTickParams) (recorded bool, err error) {
	switch {
	case p.Outcome != TickFired && p.Outcome != TickSkipped && p.Outcome != TickFailed:
		return false, Invalid("outcome", "must be %s, %s or %s; got %q", TickFired, TickSkipped, TickFailed, p.Outcome)
	case p.Tick.IsZero() || p.Expect.IsZero():
		return false, Invalid("tick", "a tick and the expected next tick are required")
	case p.Tick.Before(p.Expect):
		return false, Invalid("tick", "%s is before the expected next tick %s", p.Tick.UTC().Format(time.RFC3339), p.Expect.UTC().Format(time.RFC3339))
	case !p.Next.IsZero() && !p.Next.After(p.Tick):
		return false, Invalid("next", "%s is not after the tick %s", p.Next.UTC().Format(time.RFC3339), p.Tick.UTC().Format(time.RFC3339))
	case p.Outcome == TickFired && p.RunID == "":
		return false, Invalid("run_id", "a fired tick names its run")
	}
	tick, expect := p.Tick.UTC(), p.Expect.UTC()
	var next *time.Time
	if !p.Next.IsZero() {
		n := p.Next.UTC()
		next = &n
	}
	reason := clip(strings.ToValidUTF8(strings.ReplaceAll(p.Reason, "\x00", ""), "?"), errorTextMax)
	err = s.inTx(ctx, func(tx *gorm.DB) error {
		if p.LeaseName != "" {
			if err := s.checkLease(tx, p.LeaseName, p.LeaseHolder, p.LeaseToken); err != nil {
				return err
			}
		}
		set := map[string]any{"next_tick": next, "last_tick": tick, "last_outcome": p.Outcome}
		switch p.Outcome {
		case TickFired:
			set["last_run_id"], set["last_error"] = p.RunID, ""
		case TickFailed:
			set["last_error"] = reason
		}
		res := tx.Model(&Schedule{}).Where("id = ? AND next_tick = ?", p.ScheduleID, expect).UpdateColumns(set)
		if res.Error != nil {
			return res.Error
		}
		var sc Schedule
		if err := translate(tx.Select("id, name, time_zone, next_tick").Where("id = ?", p.ScheduleID).First(&sc).Error); err != nil {
			return err
		}
		if res.RowsAffected == 0 {
			at := "none"
			if sc.NextTick != nil {
				at = sc.NextTick.UTC().Format(time.RFC3339)
			}
			return fmt.Errorf("%w: the schedule's next tick is %s, not %s: processed by another server, or the schedule changed", ErrConflict, at, expect.Format(time.RFC3339))
		}
		ins := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&ScheduleTick{
			ScheduleID: p.ScheduleID, Tick: tick, Outcome: p.Outcome, RunID: p.RunID, Reason: reason,
			Node: clip(p.Node, 128), RecordedAt: s.now(),
		})
		if ins.Error != nil {
			return ins.Error
		}
		recorded = ins.RowsAffected == 1
		if !recorded || p.RunID == "" {
			return nil
		}
		loc, err := LoadTimeZone(sc.TimeZone)
		if err != nil {
			loc = time.UTC
		}
		msg := fmt.Sprintf("created by schedule %s for the tick %s", sc.Name, tick.In(loc).Format(time.RFC3339))
		if p.Reason != "" {
			msg += " (" + reason + ")"
		}
		return s.event(tx, p.RunID, 0, "scheduled", p.Node, "%s", msg)
	})
	if err != nil {
		return false, fmt.Errorf("record tick %s of schedule %d: %w", tick.Format(time.RFC3339), p.ScheduleID, err)
	}
	return recorded, nil
}

// ScheduleTriggerParams records a run created by triggering a schedule by hand.
type ScheduleTriggerParams struct {
	ScheduleID int64
	RunID      string
	Tick       time.Time // the tick the parameters were derived from
	By         string    // who triggered it
}

// RecordScheduleTrigger makes run p.RunID the schedule's latest run (the one
// its overlap policy looks at) and gives the run a "scheduled" event naming
// the schedule, the tick and who triggered it. It does not touch the ticks:
// a trigger is a run on demand, outside the cron sequence.
func (s *Store) RecordScheduleTrigger(ctx context.Context, p ScheduleTriggerParams) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		var sc Schedule
		if err := translate(tx.Select("id, name, time_zone").Where("id = ?", p.ScheduleID).First(&sc).Error); err != nil {
			return err
		}
		if err := tx.Model(&Schedule{}).Where("id = ?", sc.ID).UpdateColumn("last_run_id", p.RunID).Error; err != nil {
			return err
		}
		loc, err := LoadTimeZone(sc.TimeZone)
		if err != nil {
			loc = time.UTC
		}
		return s.event(tx, p.RunID, 0, "scheduled", "", "triggered by %s from schedule %s for the tick %s", p.By, sc.Name, p.Tick.In(loc).Format(time.RFC3339))
	})
	if err != nil {
		return fmt.Errorf("record trigger of schedule %d: %w", p.ScheduleID, err)
	}
	return nil
}

// ListScheduleTicks returns a schedule's processed ticks, newest first, at most limit.
func (s *Store) ListScheduleTicks(ctx context.Context, scheduleID int64, limit int) ([]ScheduleTick, error) {
	if limit <= 0 {
		limit = ListLimitDefault
	}
	limit = min(limit, ListLimitMax)
	var out []ScheduleTick
	err := s.db.WithContext(ctx).Where("schedule_id = ?", scheduleID).Order("tick DESC").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list ticks of schedule %d: %w", scheduleID, err)
	}
	return out, nil
}

// PruneScheduleTicks deletes tick rows recorded before before and returns
// how many. Schedules stay exact without them: their NextTick only moves forward.
func (s *Store) PruneScheduleTicks(ctx context.Context, before time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Where("recorded_at < ?", before.UTC()).Delete(&ScheduleTick{})
	if res.Error != nil {
		return 0, fmt.Errorf("prune schedule ticks: %w", res.Error)
	}
	return res.RowsAffected, nil
}
