package broker_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// gatedStore holds every password verification until release is closed.
type gatedStore struct {
	*catalog.Store
	entered chan string
	release chan struct{}
}

func (g *gatedStore) VerifyPassword(ctx context.Context, name, password string) (*catalog.User, error) {
	g.entered <- name
	<-g.release
	return g.Store.VerifyPassword(ctx, name, password)
}

func TestParallelSignInsAreCountedFirstAndBounded(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s, func(c *broker.Config) { c.Sessions.MaxConcurrentSignIns = 6 })
		e.setPassword("sub", testPassword)
		g := &gatedStore{Store: s, entered: make(chan string, 16), release: make(chan struct{})}
		e.rewire(g)
		signIn := func(user, pw, addr string) response {
			return e.do(request{Method: http.MethodPost, Path: "/api/v1/session", Token: "-", RemoteAddr: addr,
				Body: map[string]string{"username": user, "password": pw}})
		}
		// Five wrong passwords for sub at once, from five addresses: all
		// are being verified...
		done := make(chan response, 8)
		for i := range broker.SignInFailureLimitDefault {
			go func() { done <- signIn("sub", "wrong password!", fmt.Sprintf("198.51.100.%d:1", i+1)) }()
		}
		for range broker.SignInFailureLimitDefault {
			select {
			case <-g.entered:
			case <-time.After(10 * time.Second):
				t.Fatal("the sign-ins did not reach the password check")
			}
		}
		// ... so a sixth, even with the right password, waits: the five count already.
		go func() { done <- signIn("sub", testPassword, "198.51.100.99:1") }()
		select {
		case r := <-done:
			requireError(t, r, http.StatusTooManyRequests, broker.CodeTooManyRequests)
		case name := <-g.entered:
			t.Fatalf("a sixth parallel sign-in of %s reached the password check", name)
		}
		// Another user from another address fills the sixth slot; a seventh
		// verification at once is refused with 503 and Retry-After.
		go func() { done <- signIn("viewer", "wrong password!", "198.51.100.100:1") }()
		<-g.entered
		go func() { done <- signIn("admin", "wrong password!", "198.51.100.101:1") }()
		select {
		case r := <-done:
			requireError(t, r, http.StatusServiceUnavailable, broker.CodeUnavailable)
			require.Equal(t, "1", r.Header.Get("Retry-After"))
		case name := <-g.entered:
			t.Fatalf("a seventh parallel password check (%s) ran", name)
		}
		close(g.release)
		for range broker.SignInFailureLimitDefault + 1 {
			requireError(t, <-done, http.StatusUnauthorized, broker.CodeUnauthenticated)
		}
		// The refused 503 did not count against admin's address.
		e.rewire(s)
		e.setPassword("admin", testPassword)
		r := signIn("admin", testPassword, "198.51.100.101:1")
		require.Equal(t, http.StatusCreated, r.Status, r.String())
	})
}

func TestSignInLimiterCountsIPv6By64(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.setPassword("viewer", testPassword)
		signIn := func(user, addr string) response {
			return e.do(request{Method: http.MethodPost, Path: "/api/v1/session", Token: "-", RemoteAddr: addr,
				Body: map[string]string{"username": user, "password": testPassword}})
		}
		for i := range broker.SignInFailureLimitDefault {
			requireError(t, signIn(fmt.Sprintf("nobody%d", i), fmt.Sprintf("[2001:db8:1:2::%x]:1", i+1)), http.StatusUnauthorized, broker.CodeUnauthenticated)
		}
		requireError(t, signIn("viewer", "[2001:db8:1:2:ffff::1]:1"), http.StatusTooManyRequests, broker.CodeTooManyRequests)
		r := signIn("viewer", "[2001:db8:1:3::1]:1")
		require.Equal(t, http.StatusCreated, r.Status, "another /64: %s", r.String())
	})
}

func TestSignInRefusesNamesThatCannotBeUsers(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		for _, name := range []string{"a\x00b", "a\tb", "a\u0085b", strings.Repeat("é", 65)} {
			r := e.do(request{Method: http.MethodPost, Path: "/api/v1/session", Token: "-",
				Body: map[string]string{"username": name, "password": testPassword}})
			require.Equal(t, http.StatusBadRequest, r.Status, "%q: %s", name, r.String())
			require.Contains(t, r.String(), `"field":"username"`, "%q", name)
		}
		// Invalid UTF-8 (sent raw: encoding/json would replace it).
		r := e.do(request{Method: http.MethodPost, Path: "/api/v1/session", Token: "-",
			Body: []byte("{\"username\":\"a\xffb\",\"password\":\"x\"}")})
		require.Equal(t, http.StatusBadRequest, r.Status, r.String())
		es, _, err := s.ListAudit(e.ctx, catalog.AuditFilter{Action: "session.sign_in", Limit: 10})
		require.NoError(t, err)
		for _, en := range es {
			require.Regexp(t, `^(session|unknown-user:[0-9a-f]{8})$`, en.Target, "a name refused as invalid is not stored")
		}
	})
}

func TestUnknownSignInNamesAreNeverStored(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		e := newEnv(t, s)
		e.setPassword("sub", testPassword)
		const typed = "MyS3cretPassw0rd"
		for range broker.SignInFailureLimitDefault {
			requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/session", Token: "-",
				Body: map[string]string{"username": typed, "password": "whatever"}}), http.StatusUnauthorized, broker.CodeUnauthenticated)
		}
		requireError(t, e.do(request{Method: http.MethodPost, Path: "/api/v1/session", Token: "-", RemoteAddr: "192.0.2.77:1",
			Body: map[string]string{"username": "sub", "password": "wrong password"}}), http.StatusUnauthorized, broker.CodeUnauthenticated)
		es, _, err := s.ListAudit(e.ctx, catalog.AuditFilter{Action: "session.sign_in", Limit: 100})
		require.NoError(t, err)
		require.Len(t, es, broker.SignInFailureLimitDefault+1)
		var targets []string
		for _, en := range es {
			require.NotContains(t, fmt.Sprintf("%+v", en), typed)
			targets = append(targets, en.Target)
		}
		require.Contains(t, targets, "user:sub", "a user that exists is named")
		require.Regexp(t, `^unknown-user:[0-9a-f]{8}$`, es[len(es)-1].Target)
		alerts, _, err := s.ListAlerts(e.ctx, catalog.AlertFilter{})
		require.NoError(t, err)
		require.NotEmpty(t, alerts)
		for _, a := range alerts {
			require.NotContains(t, fmt.Sprintf("%+v", a), typed)
		}
		require.Contains(t, fmt.Sprint(alerts), broker.AlertKeySignInFailures+"unknown-user:")
		require.NotContains(t, e.logs.String(), typed)
	})
}
