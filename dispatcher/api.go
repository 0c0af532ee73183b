package dispatcher

import "time"

// The wire contract of the agent, shared by Agent and Client.
//
//	POST /agent/v1/commands/{name}   {"system": NAME, "args": {...}}  -> 200 {"result": {...}}
//	GET  /agent/v1/commands                                           -> 200 {"commands": [...]}
//	GET  /healthz                                                     -> 200 {"status": "ok", ...}
//
// Errors answer {"error": {"code", "message", "field"?, "known"?}} with a
// 4xx or 5xx status.

// Paths of the agent's endpoints.
const (
	CommandsPath = "/agent/v1/commands"
	HealthPath   = "/healthz"
)

// Names of the registered commands.
const (
	CommandCount  = "count"
	CommandVerify = "verify"
	CommandProbe  = "probe"
	CommandLs     = "ls"
)

// Request is the body of a command call.
type Request struct {
	// System names the catalog system the command acts on. verify takes it
	// from the run and accepts it only when it is the run's target.
	System string `json:"system,omitempty"`
	// Args are the command's arguments; unknown ones are refused.
	Args any `json:"args,omitempty"`
}

// Response is the body of a successful command call.
type Response[T any] struct {
	Result T `json:"result"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the offending input ("system", "args.path").
	Field string `json:"field,omitempty"`
	// Known lists the valid names when a command or argument is unknown.
	Known []string `json:"known,omitempty"`
}

// Error codes of ErrorDetail.Code.
const (
	CodeBadRequest       = "bad_request"      // 400: malformed JSON, wrong envelope
	CodeInvalid          = "invalid"          // 400: an argument of the wrong type or value
	CodeUnknownArgument  = "unknown_argument" // 400: an argument the command does not take
	CodePathEscape       = "path_escape"      // 400: a path that leaves the system's root
	CodeUnsupported      = "unsupported"      // 400: the command does not apply to the system's kind
	CodeUnauthenticated  = "unauthenticated"  // 401
	CodeForbidden        = "forbidden"        // 403: no entitlement
	CodeNotFound         = "not_found"        // 404: no such system, run or path
	CodeUnknownCommand   = "unknown_command"  // 404: Known lists the commands
	CodeMethodNotAllowed = "method_not_allowed"
	CodeConflict         = "conflict"   // 409: e.g. the run has no manifest yet
	CodeWrongNode        = "wrong_node" // 421: this node does not serve the system
	CodeTooLarge         = "too_large"  // 413
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeBusy             = "busy"         // 503: too many commands in flight
	CodeSystemError      = "system_error" // 502: the system failed
	CodeTimeout          = "timeout"      // 504: the command ran past its deadline
	CodeInternal         = "internal"     // 500
	CodeUnavailable      = "unavailable"  // 503: the catalog did not answer
)

// CommandInfo describes a registered command (GET /agent/v1/commands).
type CommandInfo struct {
	Name    string    `json:"name"`
	Summary string    `json:"summary"`
	Args    []ArgInfo `json:"args"`
	// Needs is the entitlement a caller needs: "read on system:NAME" or
	// "read on mapping:NAME".
	Needs string `json:"needs"`
}

// ArgInfo describes one argument of a command.
type ArgInfo struct {
	Name     string `json:"name"`
	Type     string `json:"type"` // string, integer, boolean, object
	Required bool   `json:"required,omitempty"`
	Doc      string `json:"doc"`
}

// CountArgs are the arguments of count. A file system counts the files and
// bytes under Path, or, with Format, the rows in those files; a database
// counts the rows of Table or of Query.
type CountArgs struct {
	// Path is a file, directory (recursively) or glob relative to the
	// system's root; "" is the root.
	Path string `json:"path,omitempty"`
	// Format, when set, counts the rows of the files under Path instead:
	// "csv", "jsonl", "parquet", or "auto" (each file's extension decides).
	Format string `json:"format,omitempty"`
	// Options are the format's options ("header": "false", "delimiter":
	// ";", "compression": "gzip" ...), with Format only.
	Options map[string]string `json:"options,omitempty"`
	// Table is a table, optionally schema-qualified, of a database system.
	Table string `json:"table,omitempty"`
	// Query is a SELECT of a database system whose rows are counted.
	Query string `json:"query,omitempty"`
}

// FormatAuto lets each file's extension name its format (CountArgs.Format).
const FormatAuto = "auto"

// Count methods reported by CountResult.Method.
const (
	MethodList  = "list"  // files listed and summed
	MethodCount = "count" // the connector counted itself
	MethodSQL   = "sql"   // a table of a database: SELECT count(*) FROM it
	MethodScan  = "scan"  // every partition read and its rows counted (a query, files with a format)
)

// CountResult is count's answer: Files and Bytes for a file system, Rows
// for a database or for files counted with a format.
type CountResult struct {
	System string `json:"system"`
	Kind   string `json:"kind"`
	Node   string `json:"node"`
	Path   string `json:"path,omitempty"`
	Format string `json:"format,omitempty"`
	Table  string `json:"table,omitempty"`
	Query  string `json:"query,omitempty"`
	Method string `json:"method"`
	Files  *int64 `json:"files,omitempty"`
	Bytes  *int64 `json:"bytes,omitempty"`
	Rows   *int64 `json:"rows,omitempty"`
	// Bad counts records a scan could not decode (not included in Rows).
	Bad int64 `json:"bad,omitempty"`
	// Partitions is how many partitions a scan read.
	Partitions int   `json:"partitions,omitempty"`
	TookMS     int64 `json:"took_ms"`
}

// Manifest sources of VerifyArgs.Manifest.
const (
	ManifestFromCatalog = "catalog" // the manifest the worker recorded with the run
	ManifestFromTarget  = "target"  // the _weir_manifest.json written at the target
)

// VerifyArgs are the arguments of verify.
type VerifyArgs struct {
	// RunID is the run whose delivery is verified.
	RunID string `json:"run_id"`
	// Manifest is where the manifest is read: ManifestFromCatalog (default)
	// or ManifestFromTarget.
	Manifest string `json:"manifest,omitempty"`
}

// Problems of a VerifyDiff.
const (
	ProblemSize       = "size"       // the file's size differs from the manifest's
	ProblemChecksum   = "sha256"     // same size, different content
	ProblemUnreadable = "unreadable" // listed, but could not be read to its end
	ProblemBadPath    = "bad_path"   // the manifest names a path that is not a clean relative path
)

// VerifyDiff is one delivered file that does not match its manifest entry.
type VerifyDiff struct {
	Path           string `json:"path"`
	Problem        string `json:"problem"`
	ExpectedSize   int64  `json:"expected_size"`
	ActualSize     int64  `json:"actual_size"`
	ExpectedSHA256 string `json:"expected_sha256,omitempty"`
	ActualSHA256   string `json:"actual_sha256,omitempty"`
	Detail         string `json:"detail,omitempty"`
}

// FileEntry is a file and its size: a file ls lists, or one at a verified
// target that the manifest does not list.
type FileEntry struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
}

// VerifyResult is verify's answer. OK is true when every file of the
// manifest is at the target with its size and SHA-256. Files at the target
// that the manifest does not list are reported in Extra but do not make the
// delivery fail: a target directory may hold other runs' deliveries or
// files put there by others. Paths are relative to Path, as in the manifest.
type VerifyResult struct {
	RunID          string `json:"run_id"`
	Mapping        string `json:"mapping"`
	System         string `json:"system"`
	Kind           string `json:"kind"`
	Node           string `json:"node"`
	Path           string `json:"path"`
	ManifestSource string `json:"manifest_source"`
	// State and Attempt are the manifest's.
	State   string `json:"state"`
	Attempt int    `json:"attempt"`
	OK      bool   `json:"ok"`
	// Expected is the number of files in the manifest, Matched how many of
	// them are at the target intact, BytesChecked the bytes hashed.
	Expected     int   `json:"expected"`
	Matched      int   `json:"matched"`
	BytesChecked int64 `json:"bytes_checked"`
	// Missing, Changed and Extra list up to the agent's report limit each;
	// the counts are complete and Truncated says whether a list was cut.
	Missing      []string     `json:"missing"`
	MissingCount int          `json:"missing_count"`
	Changed      []VerifyDiff `json:"changed"`
	ChangedCount int          `json:"changed_count"`
	Extra        []FileEntry  `json:"extra"`
	ExtraCount   int          `json:"extra_count"`
	Truncated    bool         `json:"truncated,omitempty"`
	// TargetManifest tells what the target holds as its manifest:
	// "present" (this run's), "missing", or "other_run:RUN_ID" when a
	// later delivery to the same path replaced it. Informational only.
	TargetManifest string `json:"target_manifest"`
	TookMS         int64  `json:"took_ms"`
}

// ProbeArgs are the arguments of probe.
type ProbeArgs struct {
	// CountFiles, for a file system, also counts the files and bytes under
	// the root (root.files, root.bytes), which walks the whole tree.
	CountFiles bool `json:"count_files,omitempty"`
}

// ProbeResult is probe's answer: the system's discovered attributes, ready
// for catalog.Store.SetSystemAttributes. A file system reports kind,
// host.name, host.os, host.arch, host.cores, host.memory_total_bytes,
// host.memory_available_bytes, root.total_bytes, root.free_bytes,
// root.used_percent (and root.files, root.bytes with count_files); a
// database reports kind and whatever its connector's Prober gives
// (version, size_bytes).
type ProbeResult struct {
	System     string            `json:"system"`
	Kind       string            `json:"kind"`
	Node       string            `json:"node"`
	ProbedAt   time.Time         `json:"probed_at"`
	Attributes map[string]string `json:"attributes"`
}

// Paging limits of ls.
const (
	LsLimitDefault = 1000
	LsLimitMax     = 10000
)

// LsArgs are the arguments of ls.
type LsArgs struct {
	// Path is a file, directory (recursively) or glob relative to the root.
	Path string `json:"path,omitempty"`
	// Limit is the page size: LsLimitDefault when 0, at most LsLimitMax.
	Limit int `json:"limit,omitempty"`
	// After is the cursor: the page starts after this path (LsResult.Next).
	After string `json:"after,omitempty"`
}

// LsResult is one page of ls: files sorted by path, relative to the root.
type LsResult struct {
	System string      `json:"system"`
	Kind   string      `json:"kind"`
	Node   string      `json:"node"`
	Path   string      `json:"path"`
	Files  []FileEntry `json:"files"`
	// Total is the number of files the path selects, over all pages.
	Total int `json:"total"`
	// Next is the After of the next page, "" on the last page.
	Next string `json:"next,omitempty"`
}
