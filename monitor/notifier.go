package monitor

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/weirdata/weir/catalog"
)

// Defaults of NotifierConfig.
const (
	// NotifierIntervalDefault is how often the notifier looks for due
	// deliveries; a new alert wakes it at once.
	NotifierIntervalDefault = 5 * time.Second
	// NotifierMaxAttemptsDefault is how many times an alert is tried before
	// the notifier gives up on it (the alert stays in the catalog).
	NotifierMaxAttemptsDefault = 8
	// NotifierBackoffMinDefault is the pause after the first failed attempt;
	// it doubles at each further failure up to NotifierBackoffMaxDefault.
	NotifierBackoffMinDefault = 5 * time.Second
	NotifierBackoffMaxDefault = 5 * time.Minute
	// NotifierTimeoutDefault bounds one POST to one webhook.
	NotifierTimeoutDefault = 10 * time.Second
	// NotifierBatchDefault is how many alerts one round claims.
	NotifierBatchDefault = 20
)

// Signature headers of a webhook POST.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
	// under the webhook's secret (only when it has one).
	SignatureHeader = "X-Weir-Signature-256"
	// DeliveryHeader carries the event ID (catalog.Alert.EventID): the same
	// on every retry of one event, so that receivers can drop duplicates.
	DeliveryHeader = "X-Weir-Delivery"
)

// Webhook is one receiver of alerts.
type Webhook struct {
	// Name identifies the webhook in logs and in alerts' delivered_to; it
	// must be the same on every node. Default: the URL's host and a short
	// hash of the whole URL (which may hold a token and is never logged).
	Name string
	// URL is an http or https URL. Redirects are not followed.
	URL string
	// Secret, when set, signs each body (SignatureHeader). Never logged.
	Secret string
	// MinSeverity is the least severe alert it receives; default info (all).
	MinSeverity string
}

// String names the webhook (its Name, or the default name) without its
// URL's path, query or secret.
func (w Webhook) String() string {
	if w.Name != "" {
		return w.Name
	}
	return defaultWebhookName(w.URL)
}

// GoString is String, so that %#v does not print the secret either.
func (w Webhook) GoString() string { return w.String() }

// LogValue is String, so that a Webhook given to slog logs only its name.
func (w Webhook) LogValue() slog.Value { return slog.StringValue(w.String()) }

// NotifierConfig configures a Notifier.
type NotifierConfig struct {
	Webhooks    []Webhook
	Interval    time.Duration
	MaxAttempts int
	BackoffMin  time.Duration
	BackoffMax  time.Duration
	// Timeout bounds one POST: a slow or dead webhook delays nothing else
	// beyond it.
	Timeout time.Duration
	Batch   int
	// ClaimLease is how long a claimed alert is kept from other notifiers;
	// default twice Timeout plus 30 s, which covers one round.
	ClaimLease time.Duration
	Logger     *slog.Logger
	// Client makes the requests; default one that follows no redirects.
	Client *http.Client
}

// WithDefaults fills zero (or negative) fields with their defaults.
func (c NotifierConfig) WithDefaults() NotifierConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Interval, NotifierIntervalDefault)
	def(&c.BackoffMin, NotifierBackoffMinDefault)
	def(&c.BackoffMax, NotifierBackoffMaxDefault)
	def(&c.Timeout, NotifierTimeoutDefault)
	def(&c.ClaimLease, 2*c.Timeout+30*time.Second)
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = NotifierMaxAttemptsDefault
	}
	if c.Batch <= 0 {
		c.Batch = NotifierBatchDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Client == nil {
		c.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	c.Webhooks = slices.Clone(c.Webhooks)
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		if w.MinSeverity == "" {
			w.MinSeverity = catalog.AlertInfo
		}
		if w.Name == "" {
			w.Name = defaultWebhookName(w.URL)
		}
	}
	return c
}

func defaultWebhookName(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	host := "webhook"
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		host = u.Host
	}
	return host + "-" + hex.EncodeToString(sum[:4])
}

func (c NotifierConfig) validate() error {
	if c.BackoffMin > c.BackoffMax {
		return catalog.Invalid("backoff_min", "%s is more than backoff_max %s", c.BackoffMin, c.BackoffMax)
	}
	if c.ClaimLease < 2*c.Timeout {
		return catalog.Invalid("claim_lease", "%s must be at least twice the timeout %s: a round posts only while its claim holds", c.ClaimLease, c.Timeout)
	}
	names := map[string]bool{}
	for i, w := range c.Webhooks {
		field := fmt.Sprintf("webhooks[%d]", i)
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// The URL may hold a token: the error names the webhook, not the URL.
			return catalog.Invalid(field+".url", "webhook %s needs an absolute http or https URL", w.Name)
		}
		if catalog.AlertSeverityRank(w.MinSeverity) == 0 {
			return catalog.Invalid(field+".min_severity", "must be one of %s; got %q", strings.Join(catalog.AlertSeverities, ", "), w.MinSeverity)
		}
		if w.Name == "" || len(w.Name) > 64 || !utf8.ValidString(w.Name) || strings.ContainsAny(w.Name, "\x00\n\r") {
			return catalog.Invalid(field+".name", "a webhook name has 1-64 characters on one line, got %q", w.Name)
		}
		if names[w.Name] {
			return catalog.Invalid(field+".name", "two webhooks are named %q", w.Name)
		}
		names[w.Name] = true
	}
	return nil
}

// NotifierStore is what a Notifier needs of the catalog.
type NotifierStore interface {
	ClaimAlertDeliveries(ctx context.Context, p catalog.ClaimAlertDeliveriesParams) ([]catalog.Alert, error)
	FinishAlertDelivery(ctx context.Context, o catalog.AlertDeliveryOutcome) error
	Subscribe(ctx context.Context, channel string) <-chan struct{}
}

// Notifier delivers alerts to webhooks. What it delivers: an alert when it
// is created, and again when it is escalated (raised again with a higher
// severity). Repeats of an open alert only count in the catalog, and
// resolutions are not sent. Each delivery is a JSON POST of WebhookPayload;
// a webhook that does not answer 2xx within Timeout is retried with
// exponential backoff (BackoffMin doubling up to BackoffMax) up to
// MaxAttempts claims, and only the webhooks that have not accepted the event
// yet are tried again. Several notifiers, on several nodes, may share one
// catalog: claiming a delivery is a conditional update, so each event is
// delivered once while a claim holds (receivers can also drop duplicates by
// DeliveryHeader). Configure the same webhooks on every notifier.
type Notifier struct {
	cfg   NotifierConfig
	store NotifierStore
	log   *slog.Logger
}

// NewNotifier checks cfg and returns a Notifier.
func NewNotifier(cfg NotifierConfig, store NotifierStore) (*Notifier, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Notifier{cfg: cfg, store: store, log: cfg.Logger}, nil
}

// Run delivers alerts until ctx ends. Without webhooks it claims nothing
// (another node's notifier may have some) and only waits for ctx.
func (n *Notifier) Run(ctx context.Context) error {
	if len(n.cfg.Webhooks) == 0 {
		n.log.Info("no webhooks configured: alerts are not delivered from this node")
		<-ctx.Done()
		return nil
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	raised := n.store.Subscribe(sctx, catalog.ChannelAlertsRaised)
	t := time.NewTicker(n.cfg.Interval)
	defer t.Stop()
	for {
		// Drain what is due: a full batch means there may be more.
		for ctx.Err() == nil {
			if n.Round(ctx) < n.cfg.Batch {
				break
			}
		}
		select {
		case <-ctx.Done():
			cancel()
			for range raised { // Subscribe closes it once its goroutines are done
			}
			return nil
		case <-raised:
		case <-t.C:
		}
	}
}

// WebhookPayload is the JSON body POSTed to webhooks.
type WebhookPayload struct {
	// DeliveryID is the event's ID, as in DeliveryHeader.
	DeliveryID string       `json:"delivery_id"`
	SentAt     time.Time    `json:"sent_at"`
	Alert      WebhookAlert `json:"alert"`
}

// WebhookAlert is the alert as webhooks see it.
type WebhookAlert struct {
	ID         int64      `json:"id"`
	Key        string     `json:"key"`
	Severity   string     `json:"severity"`
	Subject    string     `json:"subject"`
	Message    string     `json:"message"`
	Region     string     `json:"region,omitempty"`
	FirstSeen  time.Time  `json:"first_seen"`
	LastSeen   time.Time  `json:"last_seen"`
	Count      int64      `json:"count"`
	AckedBy    string     `json:"acked_by,omitempty"`
	AckedAt    *time.Time `json:"acked_at,omitempty"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
}

// errNotTried marks a webhook skipped in a round after it failed on an
// earlier alert of that round, so that a dead webhook costs one Timeout per round.
var errNotTried = errors.New("not tried: it failed earlier in this round")

// errOutOfTime marks a post not started because it could have ended after the claim.
var errOutOfTime = errors.New("not tried: the round ran out of time")

// Round claims the alerts that are due, delivers them to every webhook
// that has not accepted them yet, records the outcomes and returns how
// many alerts it claimed. Webhooks are served in parallel, each in alert
// order; a webhook that fails is not tried again for the rest of the round,
// and no post starts that could end after the claim (ClaimLease) does.
// Run calls it; it is exported for tests and one-shot tools.
func (n *Notifier) Round(ctx context.Context) int {
	postsEnd := time.Now().Add(n.cfg.ClaimLease - n.cfg.Timeout) // the rest is for recording
	alerts, err := n.store.ClaimAlertDeliveries(ctx, catalog.ClaimAlertDeliveriesParams{Limit: n.cfg.Batch, Lease: n.cfg.ClaimLease})
	if err != nil {
		if ctx.Err() == nil {
			n.log.Warn("claim alert deliveries", slog.String("error", err.Error()))
		}
		return 0
	}
	if len(alerts) == 0 {
		return 0
	}
	hooks := n.cfg.Webhooks
	// results[a][w]: nil delivered (now or before), errSkip not for this webhook, else the failure.
	results := make([][]error, len(alerts))
	for i := range results {
		results[i] = make([]error, len(hooks))
	}
	var wg sync.WaitGroup
	for wi, w := range hooks {
		wg.Go(func() {
			var failed bool
			for ai := range alerts {
				a := &alerts[ai]
				switch {
				case catalog.AlertSeverityRank(a.Severity) < catalog.AlertSeverityRank(w.MinSeverity):
					results[ai][wi] = errSkip
				case slices.Contains(a.DeliveredTo.V, w.Name):
					results[ai][wi] = nil
				case failed:
					results[ai][wi] = errNotTried
				case time.Now().Add(n.cfg.Timeout).After(postsEnd):
					results[ai][wi] = errOutOfTime
				default:
					err := n.post(ctx, w, a)
					results[ai][wi] = err
					if err != nil {
						failed = true
						n.log.Warn("alert delivery failed", slog.String("webhook", w.Name), slog.Int64("alert", a.ID),
							slog.String("delivery", a.EventID()), slog.Int("attempt", a.DeliveryAttempts), slog.String("error", err.Error()))
					} else {
						n.log.Info("alert delivered", slog.String("webhook", w.Name), slog.Int64("alert", a.ID),
							slog.String("delivery", a.EventID()), slog.String("key", a.Key))
					}
				}
			}
		})
	}
	wg.Wait()

	// Record the outcomes even when ctx ended meanwhile: the posts happened.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.Timeout)
	defer cancel()
	for ai := range alerts {
		a := &alerts[ai]
		o := catalog.AlertDeliveryOutcome{ID: a.ID, Token: a.DeliveryToken, DeliveredTo: slices.Clone(a.DeliveredTo.V), Done: true}
		var errs []string
		for wi, w := range hooks {
			switch err := results[ai][wi]; {
			case err == nil:
				if !slices.Contains(o.DeliveredTo, w.Name) {
					o.DeliveredTo = append(o.DeliveredTo, w.Name)
				}
			case errors.Is(err, errSkip):
			default:
				o.Done = false
				errs = append(errs, w.Name+": "+err.Error())
			}
		}
		if !o.Done {
			o.Error = strings.Join(errs, "; ")
			if a.DeliveryAttempts < n.cfg.MaxAttempts {
				o.RetryAfter = backoff(n.cfg.BackoffMin, n.cfg.BackoffMax, a.DeliveryAttempts)
			} else {
				n.log.Error("giving up delivering an alert", slog.Int64("alert", a.ID), slog.String("key", a.Key),
					slog.Int("attempts", a.DeliveryAttempts), slog.String("error", o.Error))
			}
		}
		if err := n.store.FinishAlertDelivery(fctx, o); err != nil {
			n.log.Warn("record alert delivery", slog.Int64("alert", a.ID), slog.String("error", err.Error()))
		}
	}
	return len(alerts)
}

// errSkip marks a webhook that does not take an alert (below its MinSeverity).
var errSkip = errors.New("below the webhook's minimum severity")

// post sends one alert to one webhook. Its errors never contain the URL
// beyond its host, nor the secret.
func (n *Notifier) post(ctx context.Context, w Webhook, a *catalog.Alert) error {
	body, err := json.Marshal(WebhookPayload{DeliveryID: a.EventID(), SentAt: time.Now().UTC(), Alert: WebhookAlert{
		ID: a.ID, Key: a.Key, Severity: a.Severity, Subject: a.Subject, Message: a.Message, Region: a.Region,
		FirstSeen: a.FirstSeen, LastSeen: a.LastSeen, Count: a.Count, AckedBy: a.AckedBy, AckedAt: a.AckedAt, ResolvedAt: a.ResolvedAt,
	}})
	if err != nil {
		return fmt.Errorf("encode alert: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return errors.New("build request: invalid webhook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "weir-notifier")
	req.Header.Set(DeliveryHeader, a.EventID())
	if w.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(w.Secret, body))
	}
	resp, err := n.cfg.Client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("no answer within %s", n.cfg.Timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("post to %s: %w", redactURL(w.URL), ue.Err)
		}
		return errors.New("post failed")
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	msg := strings.Join(strings.Fields(strings.ToValidUTF8(string(snippet), "?")), " ")
	if msg != "" {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
	}
	return fmt.Errorf("HTTP %d", resp.StatusCode)
}

// redactURL keeps a URL's scheme and host: its user info, path and query may hold tokens.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the webhook"
	}
	return u.Scheme + "://" + u.Host
}

// Sign returns the SignatureHeader value of body under secret:
// "sha256=" and the hex HMAC-SHA256.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports whether header is body's signature under secret,
// comparing in constant time; receivers written in Go can use it.
func VerifySignature(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(header), []byte(Sign(secret, body)))
}
