package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/web"
)

// apiPaths are the paths the API keeps when the dashboard serves the rest.
var apiPaths = []string{"/api/", "/federation/", "/healthz", "/readyz", "/metrics", "/agent/"}

// withWeb serves the dashboard at / and everything under apiPaths with
// next. The dashboard reads and writes through api (the broker's handler),
// in process. trustedProxies are the --trusted-proxy CIDRs, whose
// X-Forwarded-Proto the dashboard believes as the API does.
func withWeb(next, api http.Handler, trustedProxies []string, log *slog.Logger) (http.Handler, error) {
	dash, err := web.New(web.Config{API: api, Logger: log, TrustedProxies: trustedProxies})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	for _, p := range apiPaths {
		mux.Handle(p, next)
	}
	mux.Handle("/", dash)
	return mux, nil
}

// AdminPasswordFile is where `weir dev` writes the admin's dashboard password.
const AdminPasswordFile = "admin-password"

// devAdminPassword makes sure the admin user can sign in to the dashboard.
// WEIR_ADMIN_PASSWORD, when set, becomes the password: it is never echoed
// nor written to disk (a file left by an earlier run is removed, being
// stale). Otherwise the password in <data-dir>/admin-password (mode 0600,
// enforced) is kept while it still works, and a new one is made the first
// time. A password that already verifies is not set again, so a restart
// keeps the admin's sessions. It returns the password when it was made now
// (to be printed once), "" otherwise.
func devAdminPassword(ctx context.Context, store *catalog.Store, dataDir string) (string, error) {
	path := filepath.Join(dataDir, AdminPasswordFile)
	u, err := store.GetUserByName(ctx, AdminUserName)
	if err != nil {
		return "", fmt.Errorf("find admin user: %w", err)
	}
	if env := os.Getenv("WEIR_ADMIN_PASSWORD"); env != "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("remove the stale %s: %w", path, err)
		}
		if _, err := store.VerifyPassword(ctx, AdminUserName, env); err == nil {
			return "", nil
		}
		if err := store.SetPassword(ctx, u.ID, env); err != nil {
			return "", withHint(fmt.Errorf("set the admin password from WEIR_ADMIN_PASSWORD: %w", err), "choose a password of 12 to 256 characters")
		}
		return "", nil
	}
	if b, err := os.ReadFile(path); err == nil {
		if err := os.Chmod(path, 0o600); err != nil {
			return "", fmt.Errorf("restrict %s to its owner: %w", path, err)
		}
		if _, err := store.VerifyPassword(ctx, AdminUserName, string(trimNL(b))); err == nil {
			return "", nil
		}
	}
	var raw [18]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("make admin password: %w", err)
	}
	pw := base64.RawURLEncoding.EncodeToString(raw[:])
	if err := store.SetPassword(ctx, u.ID, pw); err != nil {
		return "", fmt.Errorf("set admin password: %w", err)
	}
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return pw, nil
}

// printDashboard tells where the dashboard is and how to sign in.
func printDashboard(out io.Writer, url, dataDir, password string) {
	fmt.Fprintf(out, "Dashboard: %s/\n", url)
	if password != "" {
		fmt.Fprintf(out, "Sign in as %s with password (shown once, also in %s):\n  %s\n", AdminUserName, filepath.Join(dataDir, AdminPasswordFile), password)
		return
	}
	fmt.Fprintf(out, "Sign in as %s with the password in %s (or WEIR_ADMIN_PASSWORD).\n", AdminUserName, filepath.Join(dataDir, AdminPasswordFile))
}
