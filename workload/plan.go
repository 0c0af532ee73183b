package workload

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weirdata/weir/catalog"
)

// Steps of an execution plan, in the order a worker performs them.
const (
	StepList     = "list"     // select the source files the path or glob names
	StepCopy     = "copy"     // copy them, one pipeline per thread
	StepRead     = "read"     // read the source (a null source yields nothing)
	StepDiscard  = "discard"  // drop what was read (a null target accepts nothing)
	StepStage    = "stage"    // write into the target's staging area
	StepCommit   = "commit"   // rename the staged data into place, once
	StepManifest = "manifest" // write the delivery manifest, last

	// The row path (issue 3): a database on either side, or files read as rows.
	StepDescribe = "describe" // describe the source: its fields and types
	StepFilter   = "filter"   // drop the rows the mapping's filter rejects
	StepMap      = "map"      // compute the target fields from the source's
	StepWrite    = "write"    // write the rows into the target's staging, one pipeline per thread
	StepCount    = "count"    // count the rows at the target and compare them with those written
)

// SettingMaxThreads is the system setting that caps the threads of a run
// reading or writing the system.
const SettingMaxThreads = "max_threads"

// planSteps returns the steps moving data of mapping m from a source of
// kind src to a target of kind dst: a byte copy of files, or the row path
// (the worker refines the row steps once it has described the source).
func planSteps(m *catalog.Mapping, src, dst string) ([]string, error) {
	if m.DataPath(src, dst) == catalog.DataPathRows {
		for _, k := range []string{src, dst} {
			if !slices.Contains(catalog.KnownKinds, k) {
				return nil, fmt.Errorf("no data path from a %s system to a %s system", src, dst)
			}
		}
		steps := []string{StepDescribe, StepRead}
		if m.Filter != "" {
			steps = append(steps, StepFilter)
		}
		if len(m.Fields.V) > 0 {
			steps = append(steps, StepMap)
		}
		return append(steps, StepWrite, StepCommit, StepCount, StepManifest), nil
	}
	switch {
	case src == catalog.KindFS && dst == catalog.KindFS:
		return []string{StepList, StepCopy, StepStage, StepCommit, StepManifest}, nil
	case src == catalog.KindFS && dst == catalog.KindNull:
		return []string{StepList, StepRead, StepDiscard}, nil
	case src == catalog.KindNull && dst == catalog.KindFS:
		return []string{StepRead, StepStage, StepCommit, StepManifest}, nil
	case src == catalog.KindNull && dst == catalog.KindNull:
		return []string{StepRead, StepDiscard}, nil
	}
	return nil, fmt.Errorf("no data path from a %s system to a %s system", src, dst)
}

// planDraft is the part of a run's plan known before a worker is chosen.
type planDraft struct {
	plan *catalog.Plan
	// maxThreads is the systems' cap on threads (0: none set).
	maxThreads int
}

// draftPlan resolves what run r needs from its mapping version m and the
// systems: the steps, the endpoints with their paths expanded, and the
// systems' thread cap. An error means the run can never be planned as it is.
func draftPlan(r *catalog.Run, m *catalog.Mapping, systems map[string]*catalog.System) (planDraft, error) {
	src, ok := systems[r.SourceSystem]
	if !ok {
		return planDraft{}, fmt.Errorf("source system %s no longer exists", r.SourceSystem)
	}
	dst, ok := systems[r.TargetSystem]
	if !ok {
		return planDraft{}, fmt.Errorf("target system %s no longer exists", r.TargetSystem)
	}
	steps, err := planSteps(m, src.Kind, dst.Kind)
	if err != nil {
		return planDraft{}, err
	}
	params := r.Params.V
	if params == nil {
		params = map[string]string{}
	}
	srcPath, err := endpointPath("source.path", src.Kind, m.Source.V.Path, params)
	if err != nil {
		return planDraft{}, err
	}
	dstPath, err := endpointPath("target.path", dst.Kind, m.Target.V.Path, params)
	if err != nil {
		return planDraft{}, err
	}
	maxThreads := 0
	for _, sys := range []*catalog.System{src, dst} {
		n, err := systemMaxThreads(sys)
		if err != nil {
			return planDraft{}, err
		}
		if n > 0 && (maxThreads == 0 || n < maxThreads) {
			maxThreads = n
		}
	}
	return planDraft{
		plan: &catalog.Plan{
			SchemaVersion:  catalog.PlanSchemaVersion,
			RunID:          r.ID,
			Mapping:        r.Mapping,
			MappingVersion: r.MappingVersion,
			Params:         params,
			Steps:          steps,
			Source:         catalog.PlanEndpoint{System: src.Name, Kind: src.Kind, Path: srcPath, Table: m.Source.V.Table},
			Target:         catalog.PlanEndpoint{System: dst.Name, Kind: dst.Kind, Path: dstPath, Table: m.Target.V.Table},
		},
		maxThreads: maxThreads,
	}, nil
}

// endpointPath expands a side's path pattern with the run's parameters. A
// file system always has a path (its root is "."); a null system has one only
// when the mapping gives it.
func endpointPath(field, kind, pattern string, params map[string]string) (string, error) {
	if pattern == "" && kind != catalog.KindFS {
		return "", nil
	}
	if kind != catalog.KindFS && kind != catalog.KindNull {
		return "", fmt.Errorf("%s: a %s system has tables, not paths", field, kind)
	}
	return catalog.ExpandPath(field, pattern, params)
}

// systemMaxThreads returns a system's max_threads setting, 0 when unset.
func systemMaxThreads(sys *catalog.System) (int, error) {
	raw, ok := sys.Settings.V[SettingMaxThreads]
	if !ok || strings.TrimSpace(raw) == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("system %s: setting %s must be a positive integer, got %q", sys.Name, SettingMaxThreads, raw)
	}
	return n, nil
}

// finish completes a draft for the chosen worker: its name, the threads a run
// may use (the systems' cap when set, else the worker's slots) and the time.
func (d planDraft) finish(worker WorkerLoad, now time.Time) *catalog.Plan {
	p := *d.plan
	p.Worker = worker.ID
	p.MaxThreads = d.maxThreads
	if p.MaxThreads == 0 {
		p.MaxThreads = max(worker.Slots, 1)
	}
	p.CreatedAt = now
	return &p
}
