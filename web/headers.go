package web

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// contentSecurityPolicy allows only the dashboard's own scripts, styles,
// images and fetches, and no framing. Pages have no inline script or style.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// securityHeaders sets the security headers on every answer, errors included.
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if s.overTLS(c.Request()) {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		return next(c)
	}
}

// overTLS reports whether r reached the dashboard over TLS, directly or
// through a trusted proxy that says so with X-Forwarded-Proto: https (the
// API's rule).
func (s *Server) overTLS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if !strings.EqualFold(r.Header.Get(echo.HeaderXForwardedProto), "https") {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	peer = peer.Unmap().WithZone("")
	for _, p := range s.proxies {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// parsePrefix parses a CIDR or a single address (as a /32 or /128).
func parsePrefix(v string) (netip.Prefix, error) {
	v = strings.TrimSpace(v)
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// logRequests writes one line per request; never headers, cookies or forms.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		req := c.Request()
		attrs := []slog.Attr{
			slog.String("method", req.Method), slog.String("route", c.Path()), slog.String("path", req.URL.Path),
			slog.Int("status", c.Response().Status), slog.Duration("duration", time.Since(start)),
		}
		if v := viewerOf(c); v != nil {
			attrs = append(attrs, slog.String("user", v.Name))
		}
		level := slog.LevelDebug
		if c.Response().Status >= 500 {
			level = slog.LevelError
		}
		s.log.LogAttrs(req.Context(), level, "web request", attrs...)
		return nil
	}
}

// recoverPanics turns a handler's panic into a 500 page and a logged stack.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.log.Error("page handler panicked", slog.String("path", c.Request().URL.Path),
					slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return next(c)
	}
}
