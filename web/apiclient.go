package web

import (
	"net/http"
	"net/http/httptest"

	"github.com/labstack/echo/v4"
	"github.com/weirdata/weir/client"
)

// apiBaseURL is the made-up origin of in-process API calls: requests never
// leave the process, but the client needs an absolute URL.
const apiBaseURL = "http://weir.internal"

// inProcess is an http.RoundTripper that serves each request with the API's
// handler in this process. It sends the browser's session cookie and, for
// unsafe methods, the session's CSRF token, and gives the API the browser's
// address so that entitlements limited to networks hold as they would over
// the wire. Cookies the API sets (sign-in, sign-out) are copied to the
// browser's response.
type inProcess struct {
	api     http.Handler
	outer   *http.Request
	outResp http.ResponseWriter
	cookie  string // raw session cookie value; "" sends none
	csrf    string // session CSRF token; "" sends none
}

// RoundTrip serves r with the API handler.
func (t *inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.RemoteAddr = t.outer.RemoteAddr
	r.Host = t.outer.Host
	if xff := t.outer.Header.Values(echo.HeaderXForwardedFor); len(xff) > 0 {
		r.Header[echo.HeaderXForwardedFor] = xff
	}
	// The API believes X-Forwarded-Proto only from a trusted proxy (the
	// browser's address is the peer), so its cookies get Secure behind TLS.
	if proto := t.outer.Header.Get(echo.HeaderXForwardedProto); proto != "" {
		r.Header.Set(echo.HeaderXForwardedProto, proto)
	}
	if id := t.outer.Header.Get(echo.HeaderXRequestID); id != "" {
		r.Header.Set(echo.HeaderXRequestID, id)
	}
	if t.outer.TLS != nil {
		r.TLS = t.outer.TLS
	}
	if t.cookie != "" {
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: t.cookie})
	}
	if t.csrf != "" && unsafeMethod(r.Method) {
		r.Header.Set(HeaderCSRF, t.csrf)
	}
	rec := httptest.NewRecorder()
	t.api.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	if t.outResp != nil {
		for _, sc := range resp.Header.Values("Set-Cookie") {
			t.outResp.Header().Add("Set-Cookie", sc)
		}
	}
	return resp, nil
}

// unsafeMethod reports whether m may change state (and so needs a CSRF token).
func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// apiFor returns a client of the API that acts as the browser of c: with its
// session cookie and CSRF token, from its address. It never retries: the
// API is in this process, a failure will not go away by itself.
func (s *Server) apiFor(c echo.Context) *client.Client {
	t := &inProcess{api: s.cfg.API, outer: c.Request(), outResp: c.Response().Writer}
	if ck, err := c.Cookie(SessionCookie); err == nil {
		t.cookie = ck.Value
	}
	if v := viewerOf(c); v != nil {
		t.csrf = v.CSRF
	}
	cl, err := client.New(apiBaseURL, "",
		client.WithHTTPClient(&http.Client{Transport: t, Timeout: s.cfg.APITimeout}),
		client.WithRetry(client.RetryPolicy{MaxAttempts: 1}),
		client.WithUserAgent("weir-web/1"))
	if err != nil {
		panic("web: in-process API URL is invalid: " + err.Error()) // a constant: cannot happen
	}
	return cl
}
