package catalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"
)

// RegisterCollector registers c with reg and returns it; when a collector
// describing the same metrics was registered before (a component restarted
// by the node's monitor registers again), it returns that one, so that
// counters keep counting across the component's lives. Components share it
// from here, the one package they all import.
func RegisterCollector[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if old, ok := are.ExistingCollector.(C); ok {
			return old, nil
		}
	}
	return c, fmt.Errorf("register metrics: %w", err)
}

// MustRegisterCollector is RegisterCollector for collectors whose names and
// labels are fixed in the code: an error there is a bug, so it panics.
func MustRegisterCollector[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	out, err := RegisterCollector(reg, c)
	if err != nil {
		panic(err)
	}
	return out
}

// Query operations, the label of the catalog's query metrics (gorm's callback chains).
const (
	OpCreate = "create"
	OpQuery  = "query"
	OpUpdate = "update"
	OpDelete = "delete"
	OpRow    = "row"
	OpRaw    = "raw"
)

// queryMetrics are the catalog's query latency and errors.
type queryMetrics struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

// startKey holds a statement's start time in its settings.
const startKey = "weir:metrics_start"

// Instrument reports the latency and the errors of every catalog query to
// reg, by operation:
//
//	weir_catalog_query_duration_seconds{operation}  histogram
//	weir_catalog_query_errors_total{operation}      counter (not found is no error)
//
// Call it once per Store, before the Store is used concurrently.
func (s *Store) Instrument(reg prometheus.Registerer) error {
	m := &queryMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "weir_catalog_query_duration_seconds",
			Help:    "Time catalog queries took, by operation (create, query, update, delete, row, raw).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"operation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_catalog_query_errors_total",
			Help: "Catalog queries that failed, by operation; a row not found is not counted.",
		}, []string{"operation"}),
	}
	var err error
	if m.duration, err = RegisterCollector(reg, m.duration); err != nil {
		return err
	}
	if m.errors, err = RegisterCollector(reg, m.errors); err != nil {
		return err
	}
	cb := s.db.Callback()
	hooks := []struct {
		op            string
		before, after func(string, func(*gorm.DB)) error
	}{
		{OpCreate, cb.Create().Before("gorm:create").Register, cb.Create().After("gorm:create").Register},
		{OpQuery, cb.Query().Before("gorm:query").Register, cb.Query().After("gorm:query").Register},
		{OpUpdate, cb.Update().Before("gorm:update").Register, cb.Update().After("gorm:update").Register},
		{OpDelete, cb.Delete().Before("gorm:delete").Register, cb.Delete().After("gorm:delete").Register},
		{OpRow, cb.Row().Before("gorm:row").Register, cb.Row().After("gorm:row").Register},
		{OpRaw, cb.Raw().Before("gorm:raw").Register, cb.Raw().After("gorm:raw").Register},
	}
	for _, h := range hooks {
		if err := h.before("weir:metrics_before_"+h.op, startQuery); err != nil {
			return fmt.Errorf("instrument catalog %s: %w", h.op, err)
		}
		if err := h.after("weir:metrics_after_"+h.op, m.endQuery(h.op)); err != nil {
			return fmt.Errorf("instrument catalog %s: %w", h.op, err)
		}
	}
	return nil
}

func startQuery(db *gorm.DB) { db.InstanceSet(startKey, time.Now()) }

func (m *queryMetrics) endQuery(op string) func(*gorm.DB) {
	d, e := m.duration.WithLabelValues(op), m.errors.WithLabelValues(op)
	return func(db *gorm.DB) {
		if v, ok := db.InstanceGet(startKey); ok {
			if start, ok := v.(time.Time); ok {
				d.Observe(time.Since(start).Seconds())
			}
		}
		if db.Error != nil && !errors.Is(db.Error, gorm.ErrRecordNotFound) {
			e.Inc()
		}
	}
}

// RunCount is how many runs of a mapping are in a state.
type RunCount struct {
	Mapping string
	State   RunState
	Count   int64
}

// CountRunsByState counts the runs of region by mapping and state, for the
// metrics of the region's leader (one grouped read of the runs' index).
func (s *Store) CountRunsByState(ctx context.Context, region string) ([]RunCount, error) {
	var out []RunCount
	err := s.db.WithContext(ctx).Model(&Run{}).Select("mapping, state, COUNT(*) AS count").
		Where("region = ?", region).Group("mapping, state").Order("mapping, state").Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("count runs by state: %w", translate(err))
	}
	return out, nil
}
