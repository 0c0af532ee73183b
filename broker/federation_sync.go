package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/weirdata/weir/catalog"
)

// Replication between regions.
//
// On every region, one server at a time (the holder of the lease
// FederationSyncLeaseName) pulls every SyncInterval:
//
//   - outside the authoritative region, the identities (users, token hashes,
//     entitlements) from a live server of the authoritative region, applied
//     whole in one transaction when their digest changed;
//   - the mapping directory of every other region that has a live server.
//
// Each pull is signed like a forwarded request, sends the digest it has as
// If-None-Match (an unchanged stream costs one small answer), and is
// recorded in the catalog (catalog.FederationSync): the replication lag of a
// stream is the time since its last success, shown by GET /api/v1/cluster.
// Identities lagging more than LagAlertAfter raise a warning alert, resolved
// when they catch up.

// FederationSyncLeaseName is the name of the lease that elects the server
// of region that replicates.
func FederationSyncLeaseName(region string) string { return "federation-sync/" + region }

// identityLagAlertKey is the dedupe key of the identity lag alert.
func identityLagAlertKey(region string) string { return "federation/identity-lag/" + region }

// Run replicates until ctx ends (see above); it returns nil then. It holds
// the region's sync lease while it runs and releases it when it stops.
// Without Secrets it only waits for ctx.
func (f *Federation) Run(ctx context.Context) error {
	if !f.enabled() {
		<-ctx.Done()
		return nil
	}
	lease := FederationSyncLeaseName(f.region())
	node := f.s.cfg.NodeID
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = f.store.ReleaseLease(rctx, lease, node)
	}()
	started := time.Now()
	lagging := false
	t := time.NewTicker(f.cfg.SyncInterval)
	defer t.Stop()
	for {
		l, err := f.store.AcquireLease(ctx, lease, node, 3*f.cfg.SyncInterval)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			f.log.Warn("take the federation sync lease", slog.Any("error", err))
		case l.Holder == node:
			f.SyncOnce(ctx)
			lagging = f.watchLag(ctx, started, lagging)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// SyncOnce pulls every stream once: identities outside the authoritative
// region, and the directory of every other region with a live server or
// pulled before. Failures are recorded, not returned.
func (f *Federation) SyncOnce(ctx context.Context) {
	if !f.authoritative() {
		f.syncIdentity(ctx)
	}
	regions := map[string]bool{}
	for _, p := range f.peers() {
		if p.Region != f.region() && slices.Contains(p.Roles, catalog.NodeRoleServer) {
			regions[p.Region] = true
		}
	}
	if syncs, err := f.store.ListSyncs(ctx); err == nil {
		for _, s := range syncs {
			if s.Stream == catalog.SyncDirectory && s.Region != f.region() {
				regions[s.Region] = true
			}
		}
	}
	names := make([]string, 0, len(regions))
	for r := range regions {
		names = append(names, r)
	}
	slices.Sort(names)
	for _, r := range names {
		if ctx.Err() != nil {
			return
		}
		f.syncDirectory(ctx, r)
	}
}

// pull GETs path from a live server of region, with If-None-Match etag; it
// returns the answer (status 200 or 304).
func (f *Federation) pull(ctx context.Context, region, path, etag string) (*fedAnswer, error) {
	servers := f.serversIn(region)
	if len(servers) == 0 {
		return nil, fmt.Errorf("no server of region %s is alive in the gossip pool%s", region, f.lastSeen(region))
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.ForwardTimeout)
	defer cancel()
	var errs []error
	for _, srv := range servers[:min(len(servers), maxForwardTries)] {
		ans, err := f.sendPull(ctx, srv, path, etag)
		if err == nil {
			f.mu.Lock()
			f.sticky[region] = srv.Name
			f.mu.Unlock()
			return ans, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func (f *Federation) sendPull(ctx context.Context, srv Peer, path, etag string) (*fedAnswer, error) {
	cred := fedCredentials{Region: f.region(), Node: f.s.cfg.NodeID}
	hdr := http.Header{}
	if etag != "" {
		hdr.Set("If-None-Match", `"`+etag+`"`)
	}
	ans, err := f.sendWith(ctx, srv, http.MethodGet, path, nil, cred, "", hdr)
	if err != nil {
		return nil, err
	}
	if ans.status != http.StatusOK && ans.status != http.StatusNotModified {
		return nil, fmt.Errorf("%s answered %d: %s", srv.Name, ans.status, errorMessage(ans.body))
	}
	return ans, nil
}

// errorMessage extracts the message of an error body, or the body.
func errorMessage(b []byte) string {
	var eb ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error.Message != "" {
		return eb.Error.Message
	}
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

func (f *Federation) syncIdentity(ctx context.Context) {
	from := f.cfg.AuthoritativeRegion
	var have string
	if st, err := f.store.GetSync(ctx, from, catalog.SyncIdentity); err == nil {
		have = st.Digest
	}
	rec := catalog.RecordSyncParams{Region: from, Stream: catalog.SyncIdentity, Node: f.s.cfg.NodeID}
	err := func() error {
		ans, err := f.pull(ctx, from, "/federation/v1/identity", have)
		if err != nil {
			return err
		}
		if ans.status == http.StatusNotModified {
			rec.Digest = have
			if st, err := f.store.GetSync(ctx, from, catalog.SyncIdentity); err == nil {
				rec.Rows = st.Rows
			}
			return nil
		}
		var a IdentityAnswer
		if err := json.Unmarshal(ans.body, &a); err != nil || a.Snapshot == nil {
			return fmt.Errorf("decode the identities of region %s: %v", from, err)
		}
		if a.Region != from {
			return fmt.Errorf("a server of region %s answered for region %s", from, a.Region)
		}
		if got := a.Snapshot.ComputeDigest(); got != a.Snapshot.Digest {
			return fmt.Errorf("the identities of region %s do not match their digest", from)
		}
		if err := f.store.ApplyIdentitySnapshot(ctx, a.Snapshot); err != nil {
			return err
		}
		rec.Digest, rec.Rows, rec.Changed = a.Snapshot.Digest, a.Snapshot.Rows(), true
		f.log.Info("identities replicated", slog.String("from_region", from), slog.Int("users", len(a.Snapshot.Users)),
			slog.Int("tokens", len(a.Snapshot.Tokens)), slog.Int("entitlements", len(a.Snapshot.Entitlements)))
		return nil
	}()
	f.record(ctx, rec, err)
}

func (f *Federation) syncDirectory(ctx context.Context, region string) {
	var have string
	if st, err := f.store.GetSync(ctx, region, catalog.SyncDirectory); err == nil {
		have = st.Digest
	}
	rec := catalog.RecordSyncParams{Region: region, Stream: catalog.SyncDirectory, Node: f.s.cfg.NodeID}
	err := func() error {
		ans, err := f.pull(ctx, region, "/federation/v1/directory", have)
		if err != nil {
			return err
		}
		if ans.status == http.StatusNotModified {
			rec.Digest = have
			if st, err := f.store.GetSync(ctx, region, catalog.SyncDirectory); err == nil {
				rec.Rows = st.Rows
			}
			return nil
		}
		var a DirectoryAnswer
		if err := json.Unmarshal(ans.body, &a); err != nil {
			return fmt.Errorf("decode the directory of region %s: %w", region, err)
		}
		if a.Region != region {
			return fmt.Errorf("a server of region %s answered for region %s", region, a.Region)
		}
		if directoryDigest(a.Mappings) != a.Digest {
			return fmt.Errorf("the directory of region %s does not match its digest", region)
		}
		if err := f.store.ReplaceDirectory(ctx, region, a.Mappings); err != nil {
			return err
		}
		rec.Digest, rec.Rows, rec.Changed = a.Digest, len(a.Mappings), true
		f.log.Info("mapping directory replicated", slog.String("from_region", region), slog.Int("mappings", len(a.Mappings)))
		return nil
	}()
	f.record(ctx, rec, err)
}

// record stores the outcome of a pull.
func (f *Federation) record(ctx context.Context, rec catalog.RecordSyncParams, err error) {
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		rec.Err = err.Error()
		f.log.Debug("replication pull failed", slog.String("from_region", rec.Region), slog.String("stream", rec.Stream), slog.Any("error", err))
	}
	if rerr := f.store.RecordSync(ctx, rec); rerr != nil {
		f.log.Warn("record replication state", slog.String("from_region", rec.Region), slog.Any("error", rerr))
	}
}

// watchLag raises an alert when the identities lag more than LagAlertAfter
// (counting from started when they never replicated) and resolves it when
// they catch up. It returns whether they lag.
func (f *Federation) watchLag(ctx context.Context, started time.Time, lagging bool) bool {
	if f.authoritative() {
		return false
	}
	from := f.cfg.AuthoritativeRegion
	var lag time.Duration
	var lastErr string
	st, err := f.store.GetSync(ctx, from, catalog.SyncIdentity)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		lag = time.Since(started)
	case err != nil:
		return lagging
	default:
		lastErr = st.LastError
		if l, ok := st.Lag(f.store.Now()); ok {
			lag = l
		} else {
			lag = time.Since(started)
		}
	}
	key := identityLagAlertKey(f.region())
	if lag < f.cfg.LagAlertAfter {
		if lagging {
			if _, err := f.store.ResolveAlert(ctx, key); err != nil {
				f.log.Warn("resolve the identity lag alert", slog.Any("error", err))
				return true
			}
			f.log.Info("identities replicated again", slog.String("from_region", from))
		}
		return false
	}
	if !lagging {
		msg := fmt.Sprintf("Users, tokens and entitlements of region %s were last replicated to region %s %s ago; tokens created or revoked since are not known here.",
			from, f.region(), lag.Round(time.Second))
		if lastErr != "" {
			msg += " Last error: " + lastErr
		}
		if _, _, err := f.store.RaiseAlert(ctx, catalog.RaiseAlertParams{Key: key, Severity: catalog.AlertWarning, Region: f.region(),
			Subject: fmt.Sprintf("identity replication from %s lags %s", from, lag.Round(time.Second)), Message: msg}); err != nil {
			f.log.Warn("raise the identity lag alert", slog.Any("error", err))
			return false
		}
		f.log.Warn("identity replication lags", slog.String("from_region", from), slog.Duration("lag", lag))
	}
	return true
}
