package monitor_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
	"github.com/weirdata/weir/monitor"
)

// receiver is a webhook endpoint that records what it receives.
type receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []received
	// respond decides the status of request number n (from 1); nil answers 204.
	respond func(n int, r *http.Request) int
}

type received struct {
	at       time.Time
	header   http.Header
	body     []byte
	payload  monitor.WebhookPayload
	delivery string
}

func newReceiver(t *testing.T, respond func(n int, r *http.Request) int) *receiver {
	rc := &receiver{respond: respond}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := received{at: time.Now(), header: r.Header.Clone(), body: body, delivery: r.Header.Get(monitor.DeliveryHeader)}
		if err := json.Unmarshal(body, &rec.payload); err != nil {
			t.Errorf("webhook got a body that is not a payload: %v: %s", err, body)
		}
		rc.mu.Lock()
		rc.requests = append(rc.requests, rec)
		n := len(rc.requests)
		rc.mu.Unlock()
		status := http.StatusNoContent
		if rc.respond != nil {
			status = rc.respond(n, r)
		}
		w.WriteHeader(status)
		if status >= 300 {
			fmt.Fprint(w, "receiver unhappy")
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) got() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.requests...)
}

// running runs n in the background until the test ends or stop is called.
func running(t *testing.T, n *monitor.Notifier) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(20 * time.Second):
				t.Fatal("notifier did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func fastNotifier(hooks ...monitor.Webhook) monitor.NotifierConfig {
	return monitor.NotifierConfig{Webhooks: hooks, Interval: 20 * time.Millisecond, MaxAttempts: 5,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Timeout: 2 * time.Second}
}

func raise(t *testing.T, s *catalog.Store, key, severity string) *catalog.Alert {
	t.Helper()
	a, _, err := s.RaiseAlert(context.Background(), catalog.RaiseAlertParams{Key: key, Severity: severity,
		Subject: "subject of " + key, Message: "message of " + key, Region: "eu"})
	require.NoError(t, err)
	return a
}

func getAlert(t *testing.T, s *catalog.Store, id int64) *catalog.Alert {
	t.Helper()
	a, err := s.GetAlert(context.Background(), id)
	require.NoError(t, err)
	return a
}

func TestWebhookRetriedAfterFailureThenDeliveredOnce(t *testing.T) {
	catalogtest.Each(t, func(t *testing.T, s *catalog.Store) {
		rc := newReceiver(t, func(n int, _ *http.Request) int {
			if n == 1 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		})
		cfg := fastNotifier(monitor.Webhook{Name: "ops", URL: rc.srv.URL + "/alerts"})
		n, err := monitor.NewNotifier(cfg, s)
		require.NoError(t, err)
		running(t, n)
		a := raise(t, s, "node-red:w1", catalog.AlertCritical)

		within(t, 10*time.Second, "the alert is delivered", func() bool { return getAlert(t, s, a.ID).DeliveredAt != nil })
		time.Sleep(4 * cfg.BackoffMax) // time enough for any wrong extra delivery
		reqs := rc.got()
		require.Len(t, reqs, 2, "one failure, one success, nothing after")
		require.Equal(t, reqs[0].delivery, reqs[1].delivery, "a retry is the same delivery")
		require.Equal(t, a.EventID(), reqs[1].delivery)
		require.GreaterOrEqual(t, reqs[1].at.Sub(reqs[0].at), cfg.BackoffMin, "retried after the backoff")
		p := reqs[1].payload
		require.Equal(t, a.EventID(), p.DeliveryID)
		require.Equal(t, monitor.WebhookAlert{ID: a.ID, Key: "node-red:w1", Severity: catalog.AlertCritical,
			Subject: "subject of node-red:w1", Message: "message of node-red:w1", Region: "eu",
			FirstSeen: p.Alert.FirstSeen, LastSeen: p.Alert.LastSeen, Count: 1}, p.Alert)
		require.True(t, p.Alert.FirstSeen.Equal(a.FirstSeen))
		require.Equal(t, "application/json", reqs[1].header.Get("Content-Type"))
		require.Empty(t, reqs[1].header.Get(monitor.SignatureHeader), "no secret, no signature")

		got := getAlert(t, s, a.ID)
		require.Equal(t, 2, got.DeliveryAttempts)
		require.Equal(t, []string{"ops"}, got.DeliveredTo.V)
		require.Nil(t, got.NextDeliveryAt)
		require.Empty(t, got.DeliveryError)

		// A repeat only counts; an escalation is delivered again, as a new event.
		raise(t, s, "node-red:w1", catalog.AlertCritical)
		time.Sleep(4 * cfg.Interval)
		require.Len(t, rc.got(), 2, "a repeat is not delivered")
		raise(t, s, "run-held:1", catalog.AlertWarning)
		b := raise(t, s, "run-held:1", catalog.AlertCritical)
		within(t, 10*time.Second, "the escalated alert is delivered", func() bool { return getAlert(t, s, b.ID).DeliveredAt != nil })
		reqs = rc.got()
		require.Equal(t, catalog.AlertCritical, reqs[len(reqs)-1].payload.Alert.Severity)
		require.Equal(t, int64(2), reqs[len(reqs)-1].payload.Alert.Count)
	})
}

// TestTwoNotifiersDeliverEachEventOnce: notifiers of two nodes share one
// catalog; every event reaches the webhook exactly once.
func TestTwoNotifiersDeliverEachEventOnce(t *testing.T) {
	for _, d := range catalogtest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			dsn := catalogtest.DSN(t, d)
			s1 := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn})
			s2 := catalogtest.OpenConfig(t, catalog.StoreConfig{DSN: dsn})
			rc := newReceiver(t, nil)
			for _, s := range []*catalog.Store{s1, s2} {
				cfg := fastNotifier(monitor.Webhook{URL: rc.srv.URL + "/hook"})
				cfg.Batch = 3
				n, err := monitor.NewNotifier(cfg, s)
				require.NoError(t, err)
				running(t, n)
			}
			const alerts = 30
			var ids []int64
			for i := range alerts {
				s := []*catalog.Store{s1, s2}[i%2]
				ids = append(ids, raise(t, s, fmt.Sprint("k", i), catalog.AlertWarning).ID)
				if i%5 == 0 {
					raise(t, s, fmt.Sprint("k", i), catalog.AlertCritical) // an escalation: one more event
				}
			}
			const events = alerts + alerts/5
			within(t, 20*time.Second, "every alert is delivered", func() bool {
				for _, id := range ids {
					if getAlert(t, s1, id).DeliveredAt == nil {
						return false
					}
				}
				return true
			})
			time.Sleep(200 * time.Millisecond)
			seen := map[string]int{}
			for _, r := range rc.got() {
				seen[r.delivery]++
			}
			for id, c := range seen {
				require.Equal(t, 1, c, "event %s delivered %d times", id, c)
			}
			// Escalations may happen before the first delivery, which then
			// carries the critical alert only: between alerts and events.
			require.GreaterOrEqual(t, len(seen), alerts)
			require.LessOrEqual(t, len(seen), events)
		})
	}
}

func TestHangingWebhookDoesNotDelayOthers(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	release := make(chan struct{})
	slow := newReceiver(t, func(_ int, r *http.Request) int {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return http.StatusOK
	})
	t.Cleanup(func() { close(release) }) // runs before the servers close
	fast := newReceiver(t, nil)
	cfg := fastNotifier(monitor.Webhook{Name: "slow", URL: slow.srv.URL}, monitor.Webhook{Name: "fast", URL: fast.srv.URL})
	cfg.Timeout = time.Second
	cfg.MaxAttempts = 2
	cfg.BackoffMin, cfg.BackoffMax = 100*time.Millisecond, 100*time.Millisecond
	n, err := monitor.NewNotifier(cfg, s)
	require.NoError(t, err)
	var ids []int64
	for i := range 3 {
		ids = append(ids, raise(t, s, fmt.Sprint("k", i), catalog.AlertWarning).ID)
	}
	begin := time.Now()
	running(t, n)
	within(t, 10*time.Second, "the fast webhook has every alert", func() bool { return len(fast.got()) == 3 })
	for _, r := range fast.got() {
		require.Less(t, r.at.Sub(begin), cfg.Timeout/2, "the fast webhook waited for the slow one")
	}
	within(t, 10*time.Second, "both attempts of the slow webhook timed out", func() bool {
		for _, id := range ids {
			if getAlert(t, s, id).NextDeliveryAt != nil {
				return false
			}
		}
		return true
	})
	require.Len(t, fast.got(), 3, "the retry skipped the webhook that had the alerts")
	// One timeout per round, not one per alert: the first round had the
	// three alerts and tried the slow webhook once; retries are due per alert.
	reqs := slow.got()
	require.LessOrEqual(t, len(reqs), 4)
	for i := 1; i < len(reqs); i++ {
		require.GreaterOrEqual(t, reqs[i].at.Sub(reqs[i-1].at), cfg.Timeout*9/10, "rounds wait for the hanging webhook one at a time")
	}
	for i, id := range ids {
		a := getAlert(t, s, id)
		require.Equal(t, 2, a.DeliveryAttempts)
		require.Equal(t, []string{"fast"}, a.DeliveredTo.V)
		require.Nil(t, a.DeliveredAt)
		if i == 0 {
			require.Equal(t, "gave up: slow: no answer within 1s", a.DeliveryError)
		} else {
			require.Regexp(t, `^gave up: slow: (no answer within 1s|not tried: it failed earlier in this round)$`, a.DeliveryError)
		}
	}
}

func TestWebhookSignatureIsVerifiable(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	const secret = "s3cret-for-hmac"
	rc := newReceiver(t, nil)
	n, err := monitor.NewNotifier(fastNotifier(monitor.Webhook{URL: rc.srv.URL, Secret: secret}), s)
	require.NoError(t, err)
	running(t, n)
	a := raise(t, s, "auth-failures:10.1.2.3", catalog.AlertWarning)
	within(t, 10*time.Second, "delivered", func() bool { return len(rc.got()) == 1 })
	r := rc.got()[0]
	sig := r.header.Get(monitor.SignatureHeader)
	// Verified the way a receiver in any language would.
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(r.body)
	require.Equal(t, "sha256="+hex.EncodeToString(m.Sum(nil)), sig)
	require.True(t, monitor.VerifySignature(secret, r.body, sig))
	require.False(t, monitor.VerifySignature("other", r.body, sig))
	require.False(t, monitor.VerifySignature(secret, append(r.body, ' '), sig), "a changed body fails")
	require.Equal(t, a.Key, r.payload.Alert.Key)
}

func TestWebhookMinSeverity(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	pager := newReceiver(t, nil)
	chat := newReceiver(t, nil)
	n, err := monitor.NewNotifier(fastNotifier(
		monitor.Webhook{Name: "pager", URL: pager.srv.URL, MinSeverity: catalog.AlertCritical},
		monitor.Webhook{Name: "chat", URL: chat.srv.URL}), s)
	require.NoError(t, err)
	running(t, n)
	w := raise(t, s, "w", catalog.AlertWarning)
	within(t, 10*time.Second, "delivered", func() bool { return getAlert(t, s, w.ID).DeliveredAt != nil })
	require.Len(t, chat.got(), 1)
	require.Empty(t, pager.got(), "the pager only wants critical alerts")
	require.Equal(t, []string{"chat"}, getAlert(t, s, w.ID).DeliveredTo.V)
	raise(t, s, "w", catalog.AlertCritical)
	within(t, 10*time.Second, "the escalation reaches the pager", func() bool { return len(pager.got()) == 1 })
	within(t, 10*time.Second, "and the chat again", func() bool { return len(chat.got()) == 2 })
}

func TestNotifierGivesUpAfterMaxAttempts(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	rc := newReceiver(t, func(int, *http.Request) int { return http.StatusBadGateway })
	cfg := fastNotifier(monitor.Webhook{Name: "down", URL: rc.srv.URL})
	cfg.MaxAttempts = 3
	cfg.BackoffMin, cfg.BackoffMax = 10*time.Millisecond, 20*time.Millisecond
	n, err := monitor.NewNotifier(cfg, s)
	require.NoError(t, err)
	running(t, n)
	a := raise(t, s, "k", catalog.AlertInfo)
	within(t, 10*time.Second, "given up", func() bool {
		g := getAlert(t, s, a.ID)
		return g.DeliveryAttempts == 3 && g.NextDeliveryAt == nil
	})
	time.Sleep(100 * time.Millisecond)
	require.Len(t, rc.got(), 3)
	g := getAlert(t, s, a.ID)
	require.Nil(t, g.DeliveredAt)
	require.Equal(t, "gave up: down: HTTP 502: receiver unhappy", g.DeliveryError)
	require.True(t, g.Open(), "the alert itself stays open")
}

func TestSecretsNeverLogged(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	const (
		secret    = "HMACSECRET-4f1b"
		pathToken = "PATHTOKEN-9c2e"
		password  = "PASSWORD-77aa"
		queryTok  = "QUERYTOKEN-0d3f"
	)
	rc := newReceiver(t, func(int, *http.Request) int { return http.StatusInternalServerError })
	log, logs := newLogger()
	cfg := fastNotifier(
		monitor.Webhook{URL: rc.srv.URL + "/hooks/" + pathToken + "?token=" + queryTok, Secret: secret},
		monitor.Webhook{URL: "http://user:" + password + "@127.0.0.1:1/hooks/" + pathToken, Secret: secret})
	cfg.Logger = log
	cfg.MaxAttempts = 2
	cfg.BackoffMin, cfg.BackoffMax = 10*time.Millisecond, 10*time.Millisecond
	n, err := monitor.NewNotifier(cfg, s)
	require.NoError(t, err)
	running(t, n)
	a := raise(t, s, "k", catalog.AlertCritical)
	within(t, 10*time.Second, "both attempts failed", func() bool { return getAlert(t, s, a.ID).NextDeliveryAt == nil })
	got := getAlert(t, s, a.ID)
	require.Contains(t, got.DeliveryError, "HTTP 500")
	require.Contains(t, got.DeliveryError, "connection refused")
	require.Contains(t, logs.String(), "alert delivery failed")
	_, err = monitor.NewNotifier(monitor.NotifierConfig{Webhooks: []monitor.Webhook{{URL: "ftp://h/" + pathToken}}}, s)
	require.Error(t, err)
	// A webhook printed or logged by mistake shows its name only.
	log.Info("webhook as a value", slog.Any("webhook", cfg.Webhooks[1]))
	printed := fmt.Sprintf("%v %+v %#v %s", cfg.Webhooks[0], cfg.Webhooks[1], cfg.Webhooks[1], cfg.Webhooks)
	require.Contains(t, printed, "127.0.0.1:1-", "the default name: host and a hash")
	for _, leak := range []string{secret, pathToken, password, queryTok} {
		require.NotContains(t, logs.String(), leak)
		require.NotContains(t, got.DeliveryError, leak)
		require.NotContains(t, err.Error(), leak)
		require.NotContains(t, printed, leak)
	}
	require.Len(t, rc.got(), 2)
	require.Equal(t, catalog.AlertCritical, rc.got()[0].payload.Alert.Severity)
}

func TestNotifierRefusesBadConfiguration(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	for name, cfg := range map[string]monitor.NotifierConfig{
		"relative url":  {Webhooks: []monitor.Webhook{{URL: "/hook"}}},
		"ftp url":       {Webhooks: []monitor.Webhook{{URL: "ftp://h/x"}}},
		"bad severity":  {Webhooks: []monitor.Webhook{{URL: "http://h/x", MinSeverity: "urgent"}}},
		"same names":    {Webhooks: []monitor.Webhook{{Name: "a", URL: "http://h/x"}, {Name: "a", URL: "http://h/y"}}},
		"short lease":   {Webhooks: []monitor.Webhook{{URL: "http://h/x"}}, Timeout: 10 * time.Second, ClaimLease: 15 * time.Second},
		"backoff order": {Webhooks: []monitor.Webhook{{URL: "http://h/x"}}, BackoffMin: time.Minute, BackoffMax: time.Second},
	} {
		_, err := monitor.NewNotifier(cfg, s)
		var ve *catalog.ValidationError
		require.ErrorAs(t, err, &ve, name)
	}
	// Two webhooks on one host get distinct default names.
	n, err := monitor.NewNotifier(monitor.NotifierConfig{Webhooks: []monitor.Webhook{{URL: "http://h/x"}, {URL: "http://h/y"}}}, s)
	require.NoError(t, err)
	require.NotNil(t, n)
}

func TestNotifierWithoutWebhooksClaimsNothing(t *testing.T) {
	s := catalogtest.Open(t, catalog.DialectSQLite)
	n, err := monitor.NewNotifier(monitor.NotifierConfig{Interval: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}, s)
	require.NoError(t, err)
	stop := running(t, n)
	a := raise(t, s, "k", catalog.AlertInfo)
	time.Sleep(100 * time.Millisecond)
	stop()
	g := getAlert(t, s, a.ID)
	require.Zero(t, g.DeliveryAttempts, "left for a notifier that has webhooks")
	require.NotNil(t, g.NextDeliveryAt)
}
