package catalog_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

func TestAuditInsertAndList(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		clock := newTestClock()
		s.SetClock(clock.Now)
		tok := int64(7)
		entries := []catalog.AuditEntry{
			{Actor: "alice", TokenID: &tok, Node: "n1", Action: "dispatcher.count", Target: "system:src", Args: `{"path":"a"}`, Outcome: catalog.AuditOK, Status: 200, DurationMS: 12, ClientIP: "10.0.0.1"},
			{Actor: "", Node: "n1", Action: "dispatcher.ls", Target: "system:src", Outcome: catalog.AuditUnauthenticated, Status: 401, Detail: "unknown token", ClientIP: "10.0.0.2"},
			{Actor: "bob", Node: "n2", Action: "dispatcher.verify", Target: "run:1", Outcome: catalog.AuditForbidden, Status: 403},
			{Actor: "alice", Node: "n2", Action: "broker.submit", Target: "mapping:m", Outcome: catalog.AuditOK, Status: 201},
			{Actor: "alice", Node: "n1", Action: "dispatcher_x", Outcome: catalog.AuditRejected, Status: 404},
		}
		for i := range entries {
			clock.Advance(time.Second)
			require.NoError(t, s.InsertAudit(ctx, &entries[i]))
			require.NotZero(t, entries[i].ID)
			require.Equal(t, clock.Now(), entries[i].At, "At defaults to the Store's clock")
		}

		all, next, err := s.ListAudit(ctx, catalog.AuditFilter{})
		require.NoError(t, err)
		require.Zero(t, next)
		require.Len(t, all, 5)
		require.Equal(t, entries[4].ID, all[0].ID, "newest first")
		got := all[4]
		require.Equal(t, "alice", got.Actor)
		require.Equal(t, int64(7), *got.TokenID)
		require.Equal(t, "n1", got.Node)
		require.Equal(t, `{"path":"a"}`, got.Args)
		require.Equal(t, int64(12), got.DurationMS)
		require.Equal(t, "10.0.0.1", got.ClientIP)
		require.Equal(t, 200, got.Status)
		require.True(t, got.At.Equal(entries[0].At))

		ids := func(es []catalog.AuditEntry) (out []int64) {
			for _, e := range es {
				out = append(out, e.ID)
			}
			return out
		}
		cases := []struct {
			name string
			f    catalog.AuditFilter
			want []int64
		}{
			{"actor", catalog.AuditFilter{Actor: "alice"}, []int64{entries[4].ID, entries[3].ID, entries[0].ID}},
			{"action prefix", catalog.AuditFilter{Action: "dispatcher.*"}, []int64{entries[2].ID, entries[1].ID, entries[0].ID}},
			{"action exact", catalog.AuditFilter{Action: "dispatcher.ls"}, []int64{entries[1].ID}},
			{"outcome", catalog.AuditFilter{Outcome: catalog.AuditUnauthenticated}, []int64{entries[1].ID}},
			{"target", catalog.AuditFilter{Target: "system:src"}, []int64{entries[1].ID, entries[0].ID}},
			{"node", catalog.AuditFilter{Node: "n2"}, []int64{entries[3].ID, entries[2].ID}},
			{"time", catalog.AuditFilter{Since: entries[1].At, Until: entries[3].At}, []int64{entries[2].ID, entries[1].ID}},
		}
		for _, c := range cases {
			es, _, err := s.ListAudit(ctx, c.f)
			require.NoError(t, err, c.name)
			require.Equal(t, c.want, ids(es), c.name)
		}

		// Paging: 2 per page walks all five exactly once.
		var seen []int64
		cursor := int64(0)
		for range 5 {
			page, nxt, err := s.ListAudit(ctx, catalog.AuditFilter{Limit: 2, BeforeID: cursor})
			require.NoError(t, err)
			seen = append(seen, ids(page)...)
			if nxt == 0 {
				break
			}
			cursor = nxt
		}
		require.Equal(t, ids(all), seen)

		_, _, err = s.ListAudit(ctx, catalog.AuditFilter{Outcome: "maybe"})
		var ve *catalog.ValidationError
		require.ErrorAs(t, err, &ve)
		require.Equal(t, "outcome", ve.Field)
	})
}

func TestAuditInsertValidatesAndClips(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		var ve *catalog.ValidationError
		require.ErrorAs(t, s.InsertAudit(ctx, &catalog.AuditEntry{Outcome: catalog.AuditOK}), &ve)
		require.Equal(t, "action", ve.Field)
		require.ErrorAs(t, s.InsertAudit(ctx, &catalog.AuditEntry{Action: "a", Outcome: "fine"}), &ve)
		require.Equal(t, "outcome", ve.Field)
		require.ErrorAs(t, s.InsertAudit(ctx, &catalog.AuditEntry{Action: "a", Outcome: catalog.AuditOK, DurationMS: -1}), &ve)
		es, _, err := s.ListAudit(ctx, catalog.AuditFilter{})
		require.NoError(t, err)
		require.Empty(t, es, "refused entries are not written")

		long := catalog.AuditEntry{Action: "dispatcher.count", Outcome: catalog.AuditFailed,
			Args: strings.Repeat("é", 5000), Detail: strings.Repeat("x", 5000), Target: strings.Repeat("t", 400)}
		require.NoError(t, s.InsertAudit(ctx, &long))
		es, _, err = s.ListAudit(ctx, catalog.AuditFilter{})
		require.NoError(t, err)
		require.Len(t, es, 1)
		require.Equal(t, 2000, len([]rune(es[0].Args)))
		require.True(t, strings.HasSuffix(es[0].Args, "…"))
		require.Equal(t, 1000, len([]rune(es[0].Detail)))
		require.Equal(t, 256, len([]rune(es[0].Target)))
	})
}

func TestAuditPrune(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range 4 {
			require.NoError(t, s.InsertAudit(ctx, &catalog.AuditEntry{At: base.Add(time.Duration(i) * time.Hour), Action: "a", Outcome: catalog.AuditOK}))
		}
		n, err := s.DeleteAuditBefore(ctx, base.Add(2*time.Hour))
		require.NoError(t, err)
		require.Equal(t, int64(2), n)
		es, _, err := s.ListAudit(ctx, catalog.AuditFilter{})
		require.NoError(t, err)
		require.Len(t, es, 2)
		for _, e := range es {
			require.False(t, e.At.Before(base.Add(2*time.Hour)))
		}
	})
}

func TestSystemAttributes(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		ctx := context.Background()
		clock := newTestClock()
		s.SetClock(clock.Now)
		require.NoError(t, s.CreateSystem(ctx, &catalog.System{Name: "src", Kind: catalog.KindFS, Region: "r1",
			Settings: catalog.NewJSON(map[string]string{"root": "/data/src"})}))
		require.NoError(t, s.CreateSystem(ctx, &catalog.System{Name: "other", Kind: catalog.KindNull, Region: "r1"}))

		got, err := s.GetSystemAttributes(ctx, "src")
		require.NoError(t, err)
		require.Empty(t, got, "never probed")

		require.NoError(t, s.SetSystemAttributes(ctx, "src", map[string]string{"kind": "fs", "host.cores": "8", "root.free_bytes": "100"}))
		require.NoError(t, s.SetSystemAttributes(ctx, "other", map[string]string{"kind": "null"}))
		clock.Advance(time.Minute)
		require.NoError(t, s.SetSystemAttributes(ctx, "src", map[string]string{"kind": "fs", "host.cores": "16"}))

		got, err = s.GetSystemAttributes(ctx, "src")
		require.NoError(t, err)
		require.Equal(t, map[string]string{"kind": "fs", "host.cores": "16"}, got, "a new probe replaces the attributes")
		rows, err := s.ListSystemAttributes(ctx, "src")
		require.NoError(t, err)
		require.Len(t, rows, 2)
		require.Equal(t, "host.cores", rows[0].Key)
		require.True(t, rows[0].UpdatedAt.Equal(clock.Now()))
		other, err := s.GetSystemAttributes(ctx, "other")
		require.NoError(t, err)
		require.Equal(t, map[string]string{"kind": "null"}, other, "another system's attributes stay")

		err = s.SetSystemAttributes(ctx, "nope", map[string]string{"kind": "fs"})
		require.True(t, errors.Is(err, catalog.ErrNotFound), "got %v", err)
		_, err = s.GetSystemAttributes(ctx, "nope")
		require.True(t, errors.Is(err, catalog.ErrNotFound), "got %v", err)

		var ve *catalog.ValidationError
		for _, bad := range []map[string]string{
			{"": "x"},
			{"has space": "x"},
			{strings.Repeat("k", 129): "x"},
			{"k": strings.Repeat("v", 2001)},
			{"k": "nul\x00"},
		} {
			require.ErrorAs(t, s.SetSystemAttributes(ctx, "src", bad), &ve)
		}
		got, err = s.GetSystemAttributes(ctx, "src")
		require.NoError(t, err)
		require.Equal(t, map[string]string{"kind": "fs", "host.cores": "16"}, got, "refused sets change nothing")

		require.NoError(t, s.SetSystemAttributes(ctx, "src", nil))
		got, err = s.GetSystemAttributes(ctx, "src")
		require.NoError(t, err)
		require.Empty(t, got)
	})
}
