package catalog

import "time"

// RunState is the state of a run; see DESIGN.md for the machine.
type RunState string

// The run states.
const (
	StatePending   RunState = "pending"
	StateQueued    RunState = "queued"
	StateActive    RunState = "active"
	StateSucceeded RunState = "succeeded"
	StateEmpty     RunState = "empty"
	StateFailed    RunState = "failed"
	StateCanceled  RunState = "canceled"
	StateAborted   RunState = "aborted"
)

// AllRunStates lists every state, in lifecycle order.
var AllRunStates = []RunState{StatePending, StateQueued, StateActive, StateSucceeded, StateEmpty, StateFailed, StateCanceled, StateAborted}

// Terminal reports whether no transition leaves s.
func (s RunState) Terminal() bool {
	switch s {
	case StateSucceeded, StateEmpty, StateFailed, StateCanceled, StateAborted:
		return true
	}
	return false
}

// Valid reports whether s is one of the known states.
func (s RunState) Valid() bool {
	for _, v := range AllRunStates {
		if v == s {
			return true
		}
	}
	return false
}

// legalTransitions is the run state machine of DESIGN.md: from -> allowed
// targets. Only an attempt fails: a run that never started is canceled (by a
// user) or aborted (by the system), never failed.
var legalTransitions = map[RunState][]RunState{
	StatePending: {StateQueued, StateCanceled, StateAborted},
	StateQueued:  {StateActive, StatePending, StateCanceled, StateAborted},
	StateActive:  {StateSucceeded, StateEmpty, StateFailed, StateCanceled, StateAborted, StatePending},
}

// CanTransition reports whether the state machine allows from -> to.
func CanTransition(from, to RunState) bool {
	for _, t := range legalTransitions[from] {
		if t == to {
			return true
		}
	}
	return false
}

// Request types, derived from the kinds of a mapping's source and target.
const (
	RequestTransfer  = "transfer"
	RequestExtract   = "extract"
	RequestLoad      = "load"
	RequestReplicate = "replicate"
)

// Roles of users, from least to most powerful.
const (
	RoleViewer    = "viewer"
	RoleSubmitter = "submitter"
	RoleOperator  = "operator"
	RoleAdmin     = "admin"
)

// Actions that entitlements grant.
const (
	ActionRead   = "read"
	ActionSubmit = "submit"
	ActionCancel = "cancel"
	ActionManage = "manage" // create, change and delete systems and mappings
	ActionAdmin  = "admin"  // users, tokens and entitlements
)

// Node roles.
const (
	NodeRoleServer = "server"
	NodeRoleWorker = "worker"
)

// Node states.
const (
	NodeAlive = "alive"
	NodeDead  = "dead"
	NodeLeft  = "left"
)

// User is a person or service account that calls Weir.
type User struct {
	ID           int64     `gorm:"primaryKey" json:"id"`
	Name         string    `gorm:"size:128;not null;uniqueIndex" json:"name"`
	Role         string    `gorm:"size:32;not null" json:"role"`
	PasswordHash string    `gorm:"size:255" json:"-"`
	Disabled     bool      `gorm:"not null;default:false" json:"disabled"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Token is an API token; only the SHA-256 of its secret is stored.
type Token struct {
	ID         int64      `gorm:"primaryKey" json:"id"`
	UserID     int64      `gorm:"not null;index" json:"user_id"`
	Name       string     `gorm:"size:128;not null" json:"name"`
	Hash       string     `gorm:"size:64;not null;uniqueIndex" json:"-"`
	Prefix     string     `gorm:"size:16;not null" json:"prefix"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
}

// Entitlement grants a user, or every member of a group, one action on a
// resource ("mapping:NAME", "system:NAME", "mapping:*", "system:*" or "*"),
// optionally only from some source networks. A group's entitlement has
// UserID 0 and GroupID set.
type Entitlement struct {
	ID        int64          `gorm:"primaryKey" json:"id"`
	UserID    int64          `gorm:"not null;index" json:"user_id"`
	GroupID   *int64         `gorm:"index" json:"group_id,omitempty"`
	Resource  string         `gorm:"size:200;not null" json:"resource"`
	Action    string         `gorm:"size:32;not null" json:"action"`
	CIDRs     JSON[[]string] `json:"cidrs"`
	CreatedBy string         `gorm:"size:128" json:"created_by"`
	CreatedAt time.Time      `json:"created_at"`
}

// System is a data source or target: a root directory, a database, or the null sink.
type System struct {
	ID                int64                   `gorm:"primaryKey" json:"id"`
	Name              string                  `gorm:"size:128;not null;uniqueIndex" json:"name"`
	Kind              string                  `gorm:"size:32;not null" json:"kind"`
	Region            string                  `gorm:"size:64;not null" json:"region"`
	Settings          JSON[map[string]string] `json:"settings"`
	Secrets           JSON[map[string]string] `json:"-"`
	MaxConcurrentRuns int                     `gorm:"not null;default:0" json:"max_concurrent_runs"`
	CreatedAt         time.Time               `json:"created_at"`
	UpdatedAt         time.Time               `json:"updated_at"`
}

// Endpoint is one side of a mapping: a system and what of it is read or
// written, in the shape of a connector's dataset. Files have a Path pattern
// relative to the system's root in which {param} is replaced by a
// parameter, and a Format; databases have a Table (either side) or a Query
// (a source's SELECT). Options are the format's or connector's options;
// Schema declares the fields of a source that has no types of its own (CSV).
type Endpoint struct {
	System  string            `json:"system"`
	Path    string            `json:"path,omitempty"`
	Table   string            `json:"table,omitempty"`
	Query   string            `json:"query,omitempty"`
	Format  string            `json:"format,omitempty"`
	Options map[string]string `json:"options,omitempty"`
	Schema  []SchemaField     `json:"schema,omitempty"`
}

// SchemaField is one declared field of a dataset: the catalog's copy of a
// connector's field (connector/spi.Field), with the same names and types.
type SchemaField struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Nullable bool   `json:"nullable,omitempty"`
	// Precision and Scale of a decimal (numeric(18,4)); 0 when not declared.
	Precision int `json:"precision,omitempty"`
	Scale     int `json:"scale,omitempty"`
}

// FieldMapping is one target field of a mapping: its name, its type and the
// expression over the source fields that computes it. An empty Expr copies
// the source field of the same name; an empty Type, with an empty Expr or
// one naming a source field, takes that field's type.
type FieldMapping struct {
	Name string `json:"name"`
	Type string `json:"type,omitempty"`
	Expr string `json:"expr,omitempty"`
}

// Write modes of a mapping: how a load treats the target's existing rows.
const (
	WriteAppend         = "append"
	WriteTruncateInsert = "truncate_insert"
	WriteUpsert         = "upsert"
)

// Bad-row policies of a mapping.
const (
	// BadRowsFail fails the run at the first row that cannot be read or transformed.
	BadRowsFail = "fail"
	// BadRowsReject writes such rows to a reject file and continues, up to MaxRejects.
	BadRowsReject = "reject"
)

// BadRowPolicy says what happens to a row that cannot be decoded or
// transformed. With BadRowsReject, each such row is written to a JSON Lines
// reject file (its location, raw record and reason) in RejectPath of
// RejectSystem, a file system: by default the target when it is a file
// system, else the source when it is one. More than MaxRejects rejected
// rows fail the run; 0 means no limit.
type BadRowPolicy struct {
	Policy       string `json:"policy,omitempty"`
	MaxRejects   int64  `json:"max_rejects,omitempty"`
	RejectSystem string `json:"reject_system,omitempty"`
	RejectPath   string `json:"reject_path,omitempty"`
}

// DateWindow bounds a date parameter: between Min and Max (YYYY-MM-DD, both
// optional), at most MaxAgeDays before today when set, and never after today
// unless AllowFuture.
type DateWindow struct {
	Min         string `json:"min,omitempty"`
	Max         string `json:"max,omitempty"`
	MaxAgeDays  int    `json:"max_age_days,omitempty"`
	AllowFuture bool   `json:"allow_future,omitempty"`
}

// Parameter types.
const (
	ParamString = "string"
	ParamInt    = "int"
	ParamDate   = "date"
)

// ParamSpec declares one parameter a mapping accepts.
type ParamSpec struct {
	Name     string      `json:"name"`
	Type     string      `json:"type"`
	Required bool        `json:"required,omitempty"`
	Default  string      `json:"default,omitempty"`
	Window   *DateWindow `json:"window,omitempty"`
}

// Mapping defaults.
const (
	MaxAttemptsDefault    = 3
	TimeoutSecondsDefault = 6 * 3600
)

// Mapping describes what moves from a source to a target. Every change makes
// a new version; runs record the version they ran.
type Mapping struct {
	ID             int64             `gorm:"primaryKey" json:"id"`
	Name           string            `gorm:"size:128;not null;uniqueIndex:idx_mapping_name_version" json:"name"`
	Version        int               `gorm:"not null;uniqueIndex:idx_mapping_name_version" json:"version"`
	Region         string            `gorm:"size:64;not null" json:"region"`
	Description    string            `gorm:"size:1000" json:"description,omitempty"`
	SourceSystem   string            `gorm:"size:128;not null" json:"-"`
	TargetSystem   string            `gorm:"size:128;not null" json:"-"`
	Source         JSON[Endpoint]    `json:"source"`
	Target         JSON[Endpoint]    `json:"target"`
	Params         JSON[[]ParamSpec] `json:"params"`
	MaxAttempts    int               `gorm:"not null" json:"max_attempts"`
	TimeoutSeconds int               `gorm:"not null" json:"timeout_seconds"`
	Enabled        bool              `gorm:"not null" json:"enabled"`
	CreatedBy      string            `gorm:"size:128" json:"created_by"`
	CreatedAt      time.Time         `json:"created_at"`

	// The data plane (issue 3; columns added by migration 0005_dataplane).

	// Fields are the target's fields in order, each computed by an
	// expression over the source's fields; none means the source's fields as
	// they are.
	Fields JSON[[]FieldMapping] `json:"fields"`
	// Filter is a boolean expression over the source's fields: rows for which
	// it is not true are not delivered.
	Filter string `gorm:"type:text" json:"filter,omitempty"`
	// WriteMode is WriteAppend (default), WriteTruncateInsert or WriteUpsert.
	WriteMode string `gorm:"size:32;not null;default:''" json:"write_mode,omitempty"`
	// WriteKey are the target fields an upsert matches rows on.
	WriteKey JSON[[]string] `json:"key,omitempty"`
	// BadRows is the bad-row policy; the zero value fails the run.
	BadRows JSON[BadRowPolicy] `json:"bad_rows"`
	// WatermarkColumn, when set, makes the mapping incremental: each run
	// moves the source rows whose column is greater than the watermark the
	// last run committed at the target, and commits the new one with its data.
	WatermarkColumn string `gorm:"size:128;not null;default:''" json:"watermark_column,omitempty"`
	// Tables are code translation tables for translate(table, value).
	Tables JSON[map[string]map[string]string] `json:"tables,omitempty"`
	// Timezone is the zone of the expressions (IANA name, "UTC" or "+05:30"):
	// of text parsed without an offset, formatted timestamps and today().
	Timezone string `gorm:"size:64;not null;default:''" json:"timezone,omitempty"`

	// MaxHold is how long a run of the mapping may stay held by health (a
	// red host, no healthy worker) before it is aborted; 0 takes the
	// region's --max-hold. Column added by migration 0009_gov_max_hold.
	MaxHold Duration `gorm:"column:max_hold_ns;not null;default:0" json:"max_hold,omitempty"`
}

// Progress is a run's or task's progress counters.
type Progress struct {
	TasksTotal int   `gorm:"not null;default:0" json:"tasks_total"`
	TasksDone  int   `gorm:"not null;default:0" json:"tasks_done"`
	FilesTotal int64 `gorm:"not null;default:0" json:"files_total"`
	FilesDone  int64 `gorm:"not null;default:0" json:"files_done"`
	BytesTotal int64 `gorm:"not null;default:0" json:"bytes_total"`
	BytesDone  int64 `gorm:"not null;default:0" json:"bytes_done"`
	Rows       int64 `gorm:"not null;default:0" json:"rows"`
}

// Run is one request to execute a mapping, and its life.
type Run struct {
	ID              string                  `gorm:"primaryKey;size:24" json:"run_id"`
	Region          string                  `gorm:"size:64;not null;index:idx_runs_dispatch,priority:1" json:"region"`
	State           RunState                `gorm:"size:16;not null;index:idx_runs_dispatch,priority:2" json:"state"`
	Mapping         string                  `gorm:"size:128;not null;index" json:"mapping"`
	MappingVersion  int                     `gorm:"not null" json:"mapping_version"`
	Params          JSON[map[string]string] `json:"params"`
	SourceSystem    string                  `gorm:"size:128;not null" json:"source_system"`
	TargetSystem    string                  `gorm:"size:128;not null" json:"target_system"`
	RequestType     string                  `gorm:"size:16;not null" json:"request_type"`
	Priority        int                     `gorm:"not null;default:0" json:"priority"`
	Attempt         int                     `gorm:"not null;default:0" json:"attempt"`
	MaxAttempts     int                     `gorm:"not null" json:"max_attempts"`
	TimeoutSeconds  int                     `gorm:"not null" json:"timeout_seconds"`
	NotBefore       time.Time               `gorm:"not null" json:"not_before"`
	IdempotencyKey  *string                 `gorm:"size:200;uniqueIndex:idx_runs_idempotency" json:"idempotency_key,omitempty"`
	RequestHash     string                  `gorm:"size:64" json:"-"`
	UserID          int64                   `gorm:"not null;uniqueIndex:idx_runs_idempotency" json:"-"`
	SubmittedBy     string                  `gorm:"size:128;not null;index" json:"submitted_by"`
	TokenID         *int64                  `json:"token_id,omitempty"`
	ClientIP        string                  `gorm:"size:64" json:"client_ip"`
	WorkerID        string                  `gorm:"size:128;index" json:"worker,omitempty"`
	FencingToken    int64                   `gorm:"not null;default:0" json:"-"`
	LeaseExpiresAt  *time.Time              `json:"lease_expires_at,omitempty"`
	CancelRequested bool                    `gorm:"not null;default:false" json:"cancel_requested"`
	HoldReason      string                  `gorm:"size:500" json:"hold_reason,omitempty"`
	Error           string                  `gorm:"size:4000" json:"error,omitempty"`
	Plan            JSON[*Plan]             `json:"-"`
	Manifest        JSON[*Manifest]         `json:"-"`
	Progress        `gorm:"embedded" json:"progress"`
	CreatedAt       time.Time  `json:"created_at"`
	QueuedAt        *time.Time `json:"queued_at,omitempty"`
	StartedAt       *time.Time `json:"started_at,omitempty"`
	FinishedAt      *time.Time `json:"finished_at,omitempty"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

// RunAttempt records one claim of a run by a worker; (run_id, attempt) is unique,
// so the catalog itself proves that an attempt was claimed once.
type RunAttempt struct {
	RunID        string     `gorm:"primaryKey;size:24" json:"run_id"`
	Attempt      int        `gorm:"primaryKey;autoIncrement:false" json:"attempt"`
	WorkerID     string     `gorm:"size:128;not null" json:"worker"`
	FencingToken int64      `gorm:"not null" json:"-"`
	SourceSystem string     `gorm:"size:128;not null" json:"source_system"`
	TargetSystem string     `gorm:"size:128;not null" json:"target_system"`
	QueuedAt     time.Time  `gorm:"not null" json:"queued_at"`
	StartedAt    time.Time  `gorm:"not null" json:"started_at"`
	FinishedAt   *time.Time `json:"finished_at,omitempty"`
	State        RunState   `gorm:"size:16;not null" json:"state"`
	Error        string     `gorm:"size:4000" json:"error,omitempty"`
}

// Task states.
const (
	TaskPending = "pending"
	TaskActive  = "active"
	TaskDone    = "done"
	TaskFailed  = "failed"
)

// RunTask is one row of a run's internal manifest: a partition moved by one thread.
type RunTask struct {
	ID        int64          `gorm:"primaryKey" json:"-"`
	RunID     string         `gorm:"size:24;not null;uniqueIndex:idx_task_run_seq" json:"run_id"`
	Seq       int            `gorm:"not null;uniqueIndex:idx_task_run_seq" json:"seq"`
	Attempt   int            `gorm:"not null" json:"attempt"`
	Thread    int            `gorm:"not null" json:"thread"`
	Files     JSON[[]string] `json:"files"`
	State     string         `gorm:"size:16;not null" json:"state"`
	Progress  `gorm:"embedded" json:"progress"`
	UpdatedAt time.Time `json:"updated_at"`
}

// RunEvent is one line of a run's log.
type RunEvent struct {
	ID      int64     `gorm:"primaryKey" json:"id"`
	RunID   string    `gorm:"size:24;not null;index" json:"run_id"`
	Attempt int       `gorm:"not null" json:"attempt"`
	At      time.Time `gorm:"not null" json:"at"`
	Kind    string    `gorm:"size:32;not null" json:"kind"`
	Node    string    `gorm:"size:128" json:"node,omitempty"`
	Message string    `gorm:"size:4000" json:"message"`
}

// Node is one Weir process in a region.
type Node struct {
	ID        string         `gorm:"primaryKey;size:128" json:"id"`
	Region    string         `gorm:"size:64;not null;index" json:"region"`
	Roles     JSON[[]string] `json:"roles"`
	Address   string         `gorm:"size:256" json:"address,omitempty"`
	Slots     int            `gorm:"not null;default:0" json:"slots"`
	State     string         `gorm:"size:16;not null" json:"state"`
	Version   string         `gorm:"size:64" json:"version"`
	StartedAt time.Time      `json:"started_at"`
	LastSeen  time.Time      `gorm:"not null" json:"last_seen"`
}

// HasRole reports whether the node runs role.
func (n *Node) HasRole(role string) bool {
	for _, r := range n.Roles.V {
		if r == role {
			return true
		}
	}
	return false
}

// Lease is a named, expiring, fenced lock row: the region's leader lease.
type Lease struct {
	Name      string    `gorm:"primaryKey;size:128" json:"name"`
	Holder    string    `gorm:"size:128;not null" json:"holder"`
	Token     int64     `gorm:"not null" json:"token"`
	ExpiresAt time.Time `gorm:"not null" json:"expires_at"`
}

// PlanSchemaVersion is the version of the execution plan's JSON layout.
const PlanSchemaVersion = 1

// Plan is the execution plan of one run, written by the workload manager and
// completed by the worker with its partitioning.
type Plan struct {
	SchemaVersion  int               `json:"schema_version"`
	RunID          string            `json:"run_id"`
	Mapping        string            `json:"mapping"`
	MappingVersion int               `json:"mapping_version"`
	Params         map[string]string `json:"params"`
	Steps          []string          `json:"steps"`
	Source         PlanEndpoint      `json:"source"`
	Target         PlanEndpoint      `json:"target"`
	Worker         string            `json:"worker"`
	MaxThreads     int               `json:"max_threads"`
	CreatedAt      time.Time         `json:"created_at"`
	// Filled by the worker after inspecting the source.
	Attempt     int             `json:"attempt,omitempty"`
	Parallelism int             `json:"parallelism,omitempty"`
	Reason      string          `json:"parallelism_reason,omitempty"`
	Partitions  []PlanPartition `json:"partitions,omitempty"`
}

// PlanEndpoint is a resolved side of a plan.
type PlanEndpoint struct {
	System string `json:"system"`
	Kind   string `json:"kind"`
	Path   string `json:"path,omitempty"`
	// Table is a database side's table (issue 3).
	Table string `json:"table,omitempty"`
}

// PlanPartition is one partition of a plan and the thread that moves it.
type PlanPartition struct {
	Seq    int   `json:"seq"`
	Thread int   `json:"thread"`
	Files  int   `json:"files"`
	Bytes  int64 `json:"bytes"`
	// Row partitions (issue 3): the connector's description, estimates and
	// own specification of the part it reads.
	Desc    string            `json:"desc,omitempty"`
	EstRows int64             `json:"est_rows,omitempty"`
	Spec    map[string]string `json:"spec,omitempty"`
}

// ManifestSchemaVersion is the version of the delivery manifest's JSON layout.
const ManifestSchemaVersion = 1

// Manifest is the delivery manifest written at the target after the data.
type Manifest struct {
	SchemaVersion  int               `json:"schema_version"`
	RunID          string            `json:"run_id"`
	Mapping        string            `json:"mapping"`
	MappingVersion int               `json:"mapping_version"`
	Params         map[string]string `json:"params"`
	Attempt        int               `json:"attempt"`
	State          RunState          `json:"state"`
	Target         PlanEndpoint      `json:"target"`
	StartedAt      time.Time         `json:"started_at"`
	FinishedAt     time.Time         `json:"finished_at"`
	Files          []ManifestFile    `json:"files"`
	TotalFiles     int64             `json:"total_files"`
	TotalBytes     int64             `json:"total_bytes"`
	TotalRows      int64             `json:"total_rows"`

	// Row deliveries (issue 3); absent from file copies.

	// Source is where the rows came from.
	Source *PlanEndpoint `json:"source,omitempty"`
	// Layout describes the delivered data as a consumer reads it.
	Layout *ManifestLayout `json:"layout,omitempty"`
	// Rejects counts the rows set aside by the bad-row policy; RejectFile
	// is the reject file, when there is one.
	Rejects    int64         `json:"rejects"`
	RejectFile *ManifestFile `json:"reject_file,omitempty"`
	// Watermark is the incremental range this run delivered.
	Watermark *ManifestWatermark `json:"watermark,omitempty"`
	// Counts are the rows counted at each step and at the target after the commit.
	Counts *ManifestCounts `json:"counts,omitempty"`
	// AlreadyCommitted is true when an earlier attempt of the run had
	// committed the data: this attempt found its commit marker and loaded nothing.
	AlreadyCommitted bool `json:"already_committed,omitempty"`
}

// ManifestFile is one delivered file.
type ManifestFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Rows in the file, for row deliveries.
	Rows int64 `json:"rows,omitempty"`
}

// ManifestLayout is the shape of delivered rows: the fields, and for files
// the format and how values are written.
type ManifestLayout struct {
	Format      string  `json:"format,omitempty"`
	Compression string  `json:"compression,omitempty"`
	Header      *bool   `json:"header,omitempty"`
	Delimiter   string  `json:"delimiter,omitempty"`
	Quote       string  `json:"quote,omitempty"`
	Null        *string `json:"null,omitempty"`
	DateFormat  string  `json:"date_format,omitempty"`
	// TimestampFormat is the Go layout of timestamps ("" with Format text:
	// RFC 3339 with nanoseconds and the offset).
	TimestampFormat string `json:"timestamp_format,omitempty"`
	Timezone        string `json:"timezone,omitempty"`
	// NumberFormat says how numbers are written.
	NumberFormat string        `json:"number_format,omitempty"`
	Fields       []SchemaField `json:"fields"`
	Table        string        `json:"table,omitempty"`
	WriteMode    string        `json:"write_mode,omitempty"`
	Key          []string      `json:"key,omitempty"`
}

// ManifestWatermark is the incremental range of a run: the rows whose
// Column is greater than From (empty: from the start) and at most To.
type ManifestWatermark struct {
	Column string `json:"column"`
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
}

// ManifestCounts are a row delivery's counts: what was read at the source
// (SourceRows, plus SourceBad records that could not be decoded), dropped
// by the filter or beyond the watermark, rejected, and written; then the
// target's count after the commit (TargetRows, by TargetMethod, for the
// run's selection) and the check that compares them.
type ManifestCounts struct {
	SourceRows   int64  `json:"source_rows"`
	SourceBad    int64  `json:"source_bad"`
	Filtered     int64  `json:"filtered"`
	Rejected     int64  `json:"rejected"`
	Written      int64  `json:"written"`
	TargetBefore *int64 `json:"target_before,omitempty"`
	TargetRows   *int64 `json:"target_rows,omitempty"`
	TargetMethod string `json:"target_method,omitempty"`
	Check        string `json:"check"`
	// SourceCounted is the rows the dispatcher agent linked to the source
	// system counted there after the commit, by SourceMethod: a cross-check
	// of SourceRows that does not fail the run (the source may change
	// meanwhile); nil when no agent counted.
	SourceCounted *int64 `json:"source_counted,omitempty"`
	SourceMethod  string `json:"source_method,omitempty"`
}
