package broker

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// Sign-in with a user name and password, browser sessions in a cookie, and
// the CSRF check of requests authenticated by that cookie.

// Error codes of sessions.
const (
	// CodeCSRF: a request authenticated by the session cookie lacks the
	// session's X-CSRF-Token header, or carries a wrong one.
	CodeCSRF = "csrf"
	// CodeTooManyRequests: too many refused sign-ins; retry after Retry-After seconds.
	CodeTooManyRequests = "too_many_requests"
)

// Defaults of SessionConfig.
const (
	// SignInFailureLimitDefault is how many refused sign-ins for one user
	// name, or from one address, within SignInFailureWindowDefault make
	// further sign-ins wait (429) and raise an alert.
	SignInFailureLimitDefault = 5
	// SignInFailureWindowDefault is the sliding window of SignInFailureLimitDefault.
	SignInFailureWindowDefault = 15 * time.Minute
	// sessionCleanupEvery is how often a sign-in also removes expired sessions.
	sessionCleanupEvery = time.Hour
	// signInKeysMax bounds the user names and addresses tracked at once.
	signInKeysMax = 10000
	// signInNameMax bounds the user name of a sign-in (user names are at
	// most 128 characters), so that the failure counts stay small.
	signInNameMax = 128
	// signInFullWait is the Retry-After of a sign-in refused because the
	// limiter tracks signInKeysMax keys already.
	signInFullWait = time.Minute
	// signInBusyWait is the Retry-After of a sign-in refused because
	// MaxConcurrentSignIns passwords are being verified.
	signInBusyWait = time.Second
)

// SignInConcurrencyDefault is the default of SessionConfig.MaxConcurrentSignIns:
// two password verifications per usable CPU (each argon2id verification
// holds 19 MiB and a CPU for tens of milliseconds).
func SignInConcurrencyDefault() int { return 2 * runtime.GOMAXPROCS(0) }

// Alert keys of sign-in failures: "sign-in-failures:user:NAME" and "sign-in-failures:ip:ADDR".
const AlertKeySignInFailures = "sign-in-failures:"

// SessionConfig configures sign-in and sessions; its zero value works.
type SessionConfig struct {
	// Lifetime is how long a session lasts (default catalog.SessionLifetimeDefault).
	Lifetime time.Duration
	// FailureLimit refused sign-ins per user name or address within
	// FailureWindow make sign-ins wait (default SignInFailureLimitDefault).
	FailureLimit int
	// FailureWindow is the window of FailureLimit (default SignInFailureWindowDefault).
	FailureWindow time.Duration
	// MaxConcurrentSignIns bounds the password verifications running at
	// once; beyond it sign-ins are answered 503 with Retry-After (default
	// SignInConcurrencyDefault()).
	MaxConcurrentSignIns int
}

// WithDefaults returns c with every zero field set to its default.
func (c SessionConfig) WithDefaults() SessionConfig {
	if c.Lifetime <= 0 {
		c.Lifetime = catalog.SessionLifetimeDefault
	}
	if c.FailureLimit <= 0 {
		c.FailureLimit = SignInFailureLimitDefault
	}
	if c.FailureWindow <= 0 {
		c.FailureWindow = SignInFailureWindowDefault
	}
	if c.MaxConcurrentSignIns <= 0 {
		c.MaxConcurrentSignIns = SignInConcurrencyDefault()
	}
	return c
}

// AccountStore is what sign-in, sessions, passwords, groups and the audit
// log need from the catalog; *catalog.Store implements it.
type AccountStore interface {
	SetPassword(ctx context.Context, userID int64, password string) error
	VerifyPassword(ctx context.Context, name, password string) (*catalog.User, error)
	GetUserByName(ctx context.Context, name string) (*catalog.User, error)
	CreateSession(ctx context.Context, p catalog.CreateSessionParams) (string, *catalog.Session, error)
	AuthenticateSession(ctx context.Context, raw string) (*catalog.Principal, *catalog.Session, error)
	DeleteSession(ctx context.Context, raw string) error
	DeleteExpiredSessions(ctx context.Context) (int64, error)

	CreateGroup(ctx context.Context, g *catalog.Group) error
	GetGroup(ctx context.Context, id int64) (*catalog.Group, error)
	ListGroups(ctx context.Context) ([]catalog.Group, error)
	DeleteGroup(ctx context.Context, id int64) error
	AddGroupMember(ctx context.Context, groupID, userID int64) error
	RemoveGroupMember(ctx context.Context, groupID, userID int64) error
	ListGroupEntitlements(ctx context.Context, groupID int64) ([]catalog.Entitlement, error)

	InsertAudit(ctx context.Context, e *catalog.AuditEntry) error
	DeleteAuditBefore(ctx context.Context, before time.Time) (int64, error)
	ListAudit(ctx context.Context, f catalog.AuditFilter) ([]catalog.AuditEntry, int64, error)
}

// accountState is the Server's sign-in state, made on first use.
type accountState struct {
	once        sync.Once
	cfg         SessionConfig
	limiter     *signInLimiter
	verifying   chan struct{} // a slot per password verification running
	denials     *denialThrottle
	mu          sync.Mutex
	lastCleanup time.Time
}

func (s *Server) accounts() *accountState {
	a := &s.acct
	a.once.Do(func() {
		a.cfg = s.cfg.Sessions.WithDefaults()
		a.limiter = &signInLimiter{limit: a.cfg.FailureLimit, window: a.cfg.FailureWindow, keys: map[string][]time.Time{}}
		a.verifying = make(chan struct{}, a.cfg.MaxConcurrentSignIns)
		a.denials = &denialThrottle{every: auditDenialEvery, keys: map[string]*denialCount{}}
	})
	return a
}

// signInLimiter counts refused sign-ins per key in a sliding window.
type signInLimiter struct {
	limit  int
	window time.Duration
	mu     sync.Mutex
	keys   map[string][]time.Time // failures in the window, oldest first
}

func (l *signInLimiter) prune(key string, now time.Time) []time.Time {
	ts := l.keys[key]
	cut := now.Add(-l.window)
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.keys, key)
		return nil
	}
	l.keys[key] = ts
	return ts
}

// attempt counts a password attempt for every key of keys before the
// password is verified, so that parallel attempts cannot all pass the
// check. It returns how long the caller must wait instead (0: go on, the
// attempt is counted) and, when counted, the keys that just reached the
// limit. A key that is new while the limiter tracks signInKeysMax keys
// waits signInFullWait: keys tracked already are never dropped, or spraying
// new names would reset a victim's count.
func (l *signInLimiter) attempt(keys []string, now time.Time) (time.Duration, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var d time.Duration
	for _, k := range keys {
		ts := l.prune(k, now)
		if len(ts) >= l.limit {
			d = max(d, ts[len(ts)-l.limit].Add(l.window).Sub(now))
		}
	}
	if d > 0 {
		return d, nil
	}
	var fresh int
	for _, k := range keys {
		if _, ok := l.keys[k]; !ok {
			fresh++
		}
	}
	if fresh > 0 && len(l.keys)+fresh > signInKeysMax {
		for k := range l.keys {
			l.prune(k, now)
		}
		if len(l.keys)+fresh > signInKeysMax {
			return signInFullWait, nil
		}
	}
	var reached []string
	for _, k := range keys {
		ts := append(l.keys[k], now)
		l.keys[k] = ts
		if len(ts) == l.limit {
			reached = append(reached, k)
		}
	}
	return 0, reached
}

// undo takes back the attempt counted for keys at now (a verification
// that did not happen).
func (l *signInLimiter) undo(keys []string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		ts := l.keys[k]
		for i := len(ts) - 1; i >= 0; i-- {
			if ts[i].Equal(now) {
				ts = append(ts[:i:i], ts[i+1:]...)
				break
			}
		}
		if len(ts) == 0 {
			delete(l.keys, k)
		} else {
			l.keys[k] = ts
		}
	}
}

func (l *signInLimiter) clear(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, key)
}

// signInAddrKey is the limiter key of a client address: an IPv6 address
// counts by its /64 (one customer's allocation), an IPv4 address alone.
func signInAddrKey(a netip.Addr) string {
	if a.Is6() && !a.Is4In6() {
		if p, err := a.Prefix(64); err == nil {
			return "ip:" + p.String()
		}
	}
	return "ip:" + a.String()
}

// validSignInName reports why a typed user name cannot be a user's name, "" when it can.
func validSignInName(name string) string {
	switch {
	case len(name) > signInNameMax:
		return fmt.Sprintf("must be at most %d characters", signInNameMax)
	case !utf8.ValidString(name) || strings.ContainsRune(name, utf8.RuneError):
		return "must be valid UTF-8" // JSON decoding turns invalid bytes into U+FFFD
	case strings.ContainsFunc(name, unicode.IsControl):
		return "must not contain control characters"
	}
	return ""
}

// typedUser names a typed user name in the audit log, alerts and logs:
// "user:NAME" when the user exists, else "unknown-user:" and a short
// hash, since a name that is no user is often a password typed in the
// wrong field.
func (s *Server) typedUser(ctx context.Context, name string) string {
	if _, err := s.store.GetUserByName(ctx, name); err == nil {
		return "user:" + name
	}
	return unknownUser(name)
}

func unknownUser(name string) string {
	h := sha256.Sum256([]byte(name))
	return "unknown-user:" + hex.EncodeToString(h[:4])
}

// SignInRequest is the body of POST /session.
type SignInRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// SessionInfo is the answer of POST and GET /session.
type SessionInfo struct {
	User      catalog.User `json:"user"`
	CSRFToken string       `json:"csrf_token"`
	ExpiresAt time.Time    `json:"expires_at"`
}

// signInRefused is the one answer of every refused sign-in.
func signInRefused() error {
	return &apiError{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: "unauthenticated: " + catalog.SignInRefused}
}

// signIn handles POST /session.
func (s *Server) signIn(c echo.Context) error {
	var req SignInRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	req.Username = strings.TrimSpace(req.Username)
	if req.Username == "" {
		return catalog.Invalid("username", "is required")
	}
	if why := validSignInName(req.Username); why != "" {
		noteAudit(c, auditNote{Target: unknownUser(req.Username)})
		return catalog.Invalid("username", "%s", why)
	}
	ctx := c.Request().Context()
	who := s.typedUser(ctx, req.Username)
	noteAudit(c, auditNote{Target: who})
	if req.Password == "" {
		return catalog.Invalid("password", "is required")
	}
	a := s.accounts()
	now := s.cfg.Now()
	addr := s.ipOf(c)
	ip := addr.String()
	keys := []string{"user:" + req.Username, signInAddrKey(addr)}
	d, reached := a.limiter.attempt(keys, now)
	if d > 0 {
		secs := int(math.Ceil(d.Seconds()))
		c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(secs))
		return &apiError{Status: http.StatusTooManyRequests, Code: CodeTooManyRequests,
			Message: fmt.Sprintf("too many refused sign-ins for this user or from this address; try again in %d seconds", secs)}
	}
	select {
	case a.verifying <- struct{}{}:
	default:
		a.limiter.undo(keys, now)
		c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(int(signInBusyWait.Seconds())))
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Message: "unavailable: too many sign-ins at once; try again in a second"}
	}
	u, err := s.store.VerifyPassword(ctx, req.Username, req.Password)
	<-a.verifying
	if errors.Is(err, catalog.ErrUnauthenticated) {
		for _, k := range reached {
			if strings.HasPrefix(k, "user:") {
				k = who
			}
			s.raiseSignInAlert(c, k, a.cfg)
		}
		s.authFailed(c, "", "sign-in refused")
		return signInRefused()
	} else if err != nil {
		a.limiter.undo(keys, now)
		return fmt.Errorf("sign in: %w", err)
	}
	a.limiter.undo(keys[1:], now) // the address keeps only its refused attempts
	a.limiter.clear("user:" + req.Username)
	raw, sess, err := s.store.CreateSession(ctx, catalog.CreateSessionParams{UserID: u.ID, ClientIP: ip,
		UserAgent: c.Request().UserAgent(), Lifetime: a.cfg.Lifetime})
	if errors.Is(err, catalog.ErrUnauthenticated) { // disabled in between
		return signInRefused()
	} else if err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	c.Set(ctxPrincipal, &catalog.Principal{User: *u, SessionID: sess.ID})
	s.cleanupSessions(ctx, a, now)
	s.log.Info("signed in", slog.String("user", u.Name), slog.Int64("session_id", sess.ID))
	s.setSessionCookie(c, raw, a.cfg.Lifetime)
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusCreated, SessionInfo{User: *u, CSRFToken: catalog.SessionCSRF(raw), ExpiresAt: sess.ExpiresAt})
}

// raiseSignInAlert raises the alert of a user name or address whose sign-ins
// keep being refused; a catalog error is logged, never answered.
func (s *Server) raiseSignInAlert(c echo.Context, key string, cfg SessionConfig) {
	what := "for the user " + strings.TrimPrefix(key, "user:")
	if ip, ok := strings.CutPrefix(key, "ip:"); ok {
		what = "from " + ip
	} else if h, ok := strings.CutPrefix(key, "unknown-user:"); ok {
		what = "for an unknown user name (hash " + h + ")"
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), raiseTimeout)
	defer cancel()
	_, _, err := s.store.RaiseAlert(ctx, catalog.RaiseAlertParams{
		Key:      AlertKeySignInFailures + key,
		Severity: catalog.AlertWarning,
		Subject:  "repeated refused sign-ins " + what,
		Message:  fmt.Sprintf("%d refused sign-ins within %s; further sign-ins wait", cfg.FailureLimit, cfg.FailureWindow),
		Region:   s.cfg.Region,
	})
	if err != nil {
		s.log.Error("cannot raise the alert of refused sign-ins", slog.String("key", key), slog.String("error", err.Error()))
		return
	}
	s.log.Warn("repeated refused sign-ins", slog.String("key", key))
}

// cleanupSessions removes expired sessions at most once per sessionCleanupEvery.
func (s *Server) cleanupSessions(ctx context.Context, a *accountState, now time.Time) {
	a.mu.Lock()
	due := now.Sub(a.lastCleanup) >= sessionCleanupEvery
	if due {
		a.lastCleanup = now
	}
	a.mu.Unlock()
	if !due {
		return
	}
	if n, err := s.store.DeleteExpiredSessions(ctx); err != nil {
		s.log.Warn("remove expired sessions", slog.String("error", err.Error()))
	} else if n > 0 {
		s.log.Info("removed expired sessions", slog.Int64("sessions", n))
	}
}

// getSession handles GET /session: the cookie's session.
func (s *Server) getSession(c echo.Context) error {
	ck, err := c.Cookie(catalog.SessionCookie)
	if err != nil || ck.Value == "" {
		return &apiError{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: "unauthenticated: not signed in; POST /api/v1/session to sign in"}
	}
	p, sess, err := s.store.AuthenticateSession(c.Request().Context(), ck.Value)
	if err != nil {
		if errors.Is(err, catalog.ErrUnauthenticated) {
			s.clearSessionCookie(c)
		}
		return fmt.Errorf("get session: %w", err)
	}
	c.Set(ctxPrincipal, p)
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, SessionInfo{User: p.User, CSRFToken: catalog.SessionCSRF(ck.Value), ExpiresAt: sess.ExpiresAt})
}

// signOut handles DELETE /session: it ends the cookie's session (which must
// carry its CSRF token) and clears the cookie. Without a live session it
// only clears the cookie.
func (s *Server) signOut(c echo.Context) error {
	ck, err := c.Cookie(catalog.SessionCookie)
	if err == nil && ck.Value != "" {
		ctx := c.Request().Context()
		if p, _, aerr := s.store.AuthenticateSession(ctx, ck.Value); aerr == nil {
			c.Set(ctxPrincipal, p)
			if err := checkCSRF(c, ck.Value); err != nil {
				return err
			}
		}
		if err := s.store.DeleteSession(ctx, ck.Value); err != nil {
			return fmt.Errorf("sign out: %w", err)
		}
	}
	s.clearSessionCookie(c)
	return c.NoContent(http.StatusNoContent)
}

// overTLS reports whether the request reached us over TLS, directly or
// through a trusted proxy that says so.
func (s *Server) overTLS(c echo.Context) bool {
	r := c.Request()
	if r.TLS != nil {
		return true
	}
	return strings.EqualFold(r.Header.Get(echo.HeaderXForwardedProto), "https") && s.trusted(s.peerAddr(r))
}

func (s *Server) setSessionCookie(c echo.Context, raw string, lifetime time.Duration) {
	c.SetCookie(&http.Cookie{Name: catalog.SessionCookie, Value: raw, Path: "/", MaxAge: int(lifetime.Seconds()),
		HttpOnly: true, Secure: s.overTLS(c), SameSite: http.SameSiteStrictMode})
}

func (s *Server) clearSessionCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: catalog.SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.overTLS(c), SameSite: http.SameSiteStrictMode})
}

// unsafeMethod reports whether a request with method may change state.
func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// checkCSRF refuses an unsafe request whose X-CSRF-Token header is not the
// session's CSRF token.
func checkCSRF(c echo.Context, raw string) error {
	if !unsafeMethod(c.Request().Method) {
		return nil
	}
	got := c.Request().Header.Get(catalog.SessionCSRFHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(catalog.SessionCSRF(raw))) != 1 {
		return &apiError{Status: http.StatusForbidden, Code: CodeCSRF,
			Message: "csrf: a request signed in by the session cookie must send the header " + catalog.SessionCSRFHeader +
				" with the csrf_token of GET /api/v1/session"}
	}
	return nil
}

// authenticateCookie authenticates a request by its session cookie and
// checks its CSRF token.
func (s *Server) authenticateCookie(c echo.Context, raw string) error {
	p, _, err := s.store.AuthenticateSession(c.Request().Context(), raw)
	if err != nil {
		var ae *catalog.AuthError
		if errors.As(err, &ae) {
			s.authFailed(c, "", "session: "+ae.Reason)
			s.clearSessionCookie(c)
		}
		return fmt.Errorf("authenticate: %w", err)
	}
	c.Set(ctxPrincipal, p)
	return checkCSRF(c, raw)
}

// PasswordRequest is the body of PUT /users/:id/password.
type PasswordRequest struct {
	Password string `json:"password"`
	// CurrentPassword is required when users set their own password
	// without being admins.
	CurrentPassword string `json:"current_password"`
}

// setPassword handles PUT /users/:id/password: admins set anyone's
// password; other users only their own, with their current password. It
// ends the user's sessions.
func (s *Server) setPassword(c echo.Context) error {
	id, err := pathInt64(c, "id")
	if err != nil {
		return err
	}
	var req PasswordRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	me := principalOf(c)
	ctx := c.Request().Context()
	if !me.Allowed(catalog.ActionAdmin, "*", s.ipOf(c)) {
		if id != me.User.ID {
			return forbidden(catalog.ActionAdmin, "*")
		}
		if req.CurrentPassword == "" {
			return catalog.Invalid("current_password", "is required to change your own password")
		}
		a := s.accounts()
		now := s.cfg.Now()
		keys := []string{"user:" + me.User.Name}
		d, reached := a.limiter.attempt(keys, now)
		if d > 0 {
			c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(int(math.Ceil(d.Seconds()))))
			return &apiError{Status: http.StatusTooManyRequests, Code: CodeTooManyRequests, Message: "too many wrong passwords; try again later"}
		}
		select {
		case a.verifying <- struct{}{}:
		default:
			a.limiter.undo(keys, now)
			c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(int(signInBusyWait.Seconds())))
			return &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
				Message: "unavailable: too many password checks at once; try again in a second"}
		}
		_, err := s.store.VerifyPassword(ctx, me.User.Name, req.CurrentPassword)
		<-a.verifying
		if err != nil {
			if errors.Is(err, catalog.ErrUnauthenticated) {
				for _, k := range reached {
					s.raiseSignInAlert(c, k, a.cfg)
				}
				return &apiError{Status: http.StatusForbidden, Code: CodeForbidden, Message: "current_password is wrong"}
			}
			a.limiter.undo(keys, now)
			return fmt.Errorf("set password: %w", err)
		}
		a.limiter.undo(keys, now)
	}
	if err := s.store.SetPassword(ctx, id, req.Password); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return notFound("no user with id %d", id)
		}
		return err
	}
	s.log.Info("password set", slog.Int64("for_user_id", id), slog.String("user", me.User.Name))
	return c.NoContent(http.StatusNoContent)
}
