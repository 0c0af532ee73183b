package broker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/catalog"
)

// Keys of values middleware stores in the echo context.
const (
	ctxRequestID = "weir.request_id"
	ctxPrincipal = "weir.principal"
	ctxClientIP  = "weir.client_ip"
)

// HeaderRequestID carries the request id in answers (and is honoured in requests when sane).
const HeaderRequestID = "X-Request-Id"

func requestIDOf(c echo.Context) string {
	id, _ := c.Get(ctxRequestID).(string)
	return id
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// saneRequestID accepts a caller's request id only when it is short and plain,
// so it cannot forge log lines.
func saneRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// requestID gives every request an id, echoed in the X-Request-Id header.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(HeaderRequestID)
		if !saneRequestID(id) {
			id = newRequestID()
		}
		c.Set(ctxRequestID, id)
		c.Response().Header().Set(HeaderRequestID, id)
		return next(c)
	}
}

// logRequests writes one structured line per request. It never logs headers,
// so the Authorization header cannot reach a log.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err) // answer now, so that the status is known
		}
		req := c.Request()
		status := c.Response().Status
		s.auditRequest(c, start, status)
		attrs := []slog.Attr{
			slog.String("request_id", requestIDOf(c)),
			slog.String("method", req.Method),
			slog.String("route", c.Path()),
			slog.String("path", req.URL.Path),
			slog.Int("status", status),
			slog.Duration("duration", time.Since(start)),
			slog.Int64("bytes_out", c.Response().Size),
			slog.String("client_ip", c.RealIP()),
		}
		if id := c.Param("run_id"); id != "" {
			attrs = append(attrs, slog.String("run_id", id)) // every line about a run carries it
		}
		if p := principalOf(c); p != nil {
			attrs = append(attrs, slog.String("user", p.User.Name))
		}
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		s.log.LogAttrs(req.Context(), level, "http request", attrs...)
		return nil
	}
}

// recoverPanics turns a handler's panic into a 500 answer and a logged stack.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.log.Error("handler panicked", slog.String("request_id", requestIDOf(c)),
					slog.String("route", c.Path()), slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
				err = &apiError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: fmt.Errorf("panic: %v", r)}
			}
		}()
		return next(c)
	}
}

// clientIP is the echo IPExtractor: the TCP peer, or, when the peer is a
// trusted proxy, the right-most address of X-Forwarded-For that is not one.
func (s *Server) clientIP(r *http.Request) string {
	return s.clientAddr(r).String()
}

// peerAddr is the TCP peer of the request (invalid when unparseable).
func (s *Server) peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return peer.Unmap().WithZone("")
}

func (s *Server) clientAddr(r *http.Request) netip.Addr {
	peer := s.peerAddr(r)
	if !peer.IsValid() {
		return peer
	}
	if !s.trusted(peer) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values(echo.HeaderXForwardedFor) {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: believe nothing left of it
		}
		client = a.Unmap().WithZone("")
		if !s.trusted(client) {
			break
		}
	}
	return client
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ipOf returns the client address of the request.
func (s *Server) ipOf(c echo.Context) netip.Addr {
	if a, ok := c.Get(ctxClientIP).(netip.Addr); ok {
		return a
	}
	a := s.clientAddr(c.Request())
	c.Set(ctxClientIP, a)
	return a
}

func principalOf(c echo.Context) *catalog.Principal {
	p, _ := c.Get(ctxPrincipal).(*catalog.Principal)
	return p
}

// authenticate resolves "Authorization: Bearer <token>", or else the
// session cookie (whose unsafe requests must carry the session's CSRF
// token), to a principal; every /api/v1 route needs one. The principal and
// its entitlements are read for each request, never cached.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get(echo.HeaderAuthorization)
		if h == "" {
			if ck, err := c.Cookie(catalog.SessionCookie); err == nil && ck.Value != "" {
				if err := s.authenticateCookie(c, ck.Value); err != nil {
					return err
				}
				return next(c)
			}
			return &apiError{Status: http.StatusUnauthorized, Code: CodeUnauthenticated,
				Message: "unauthenticated: no token given; send the header Authorization: Bearer <token>, or sign in (POST /api/v1/session)"}
		}
		scheme, token, ok := strings.Cut(h, " ")
		token = strings.TrimSpace(token)
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			s.authFailed(c, "", "malformed Authorization header")
			return &apiError{Status: http.StatusUnauthorized, Code: CodeUnauthenticated,
				Message: "unauthenticated: the Authorization header must be \"Bearer <token>\""}
		}
		p, err := s.store.Authenticate(c.Request().Context(), token)
		if err != nil {
			var ae *catalog.AuthError
			switch {
			case errors.As(err, &ae):
				s.authFailed(c, token, ae.Reason)
			case errors.Is(err, catalog.ErrUnauthenticated):
				s.authFailed(c, token, "credential refused")
			}
			return fmt.Errorf("authenticate: %w", err)
		}
		c.Set(ctxPrincipal, p)
		return next(c)
	}
}

// allow checks that the caller may do action on resource from its address.
func (s *Server) allow(c echo.Context, action, resource string) error {
	p := principalOf(c)
	if p == nil {
		return &apiError{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: "unauthenticated: no token given"}
	}
	if !p.Allowed(action, resource, s.ipOf(c)) {
		return forbidden(action, resource)
	}
	return nil
}

// requireAdmin guards the admin routes: action admin on "*".
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := s.allow(c, catalog.ActionAdmin, "*"); err != nil {
			return err
		}
		return next(c)
	}
}

// checkBody bounds every request body and requires JSON on POST, PUT and
// PATCH requests that carry one.
func (s *Server) checkBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.ContentLength > s.cfg.MaxBodyBytes {
			return &apiError{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
				Message: fmt.Sprintf("request body is larger than %d bytes", s.cfg.MaxBodyBytes)}
		}
		if req.Body != nil && req.Body != http.NoBody {
			req.Body = http.MaxBytesReader(c.Response(), req.Body, s.cfg.MaxBodyBytes)
		}
		switch req.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			ct := req.Header.Get(echo.HeaderContentType)
			if ct == "" && req.ContentLength == 0 {
				break // no body at all: handlers that need one say so
			}
			if !isJSON(ct) {
				return &apiError{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMedia,
					Message: fmt.Sprintf("%s needs Content-Type: application/json, got %q", req.Method, ct)}
			}
		}
		return next(c)
	}
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == echo.MIMEApplicationJSON
}
