package broker

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// How brokers of different regions prove who they are to each other.
//
// Every request one region's server sends another (a forwarded run
// request, a replication pull) carries the headers below and an HMAC-SHA256
// signature, keyed with the federation secret every region shares
// (WEIR_FEDERATION_SECRET), over:
//
//	weir-federation-v1
//	METHOD
//	/request/uri?with=query
//	sha256(body), hex
//	time, Unix milliseconds
//	nonce, 32 hex digits
//	origin region
//	origin node
//	the original caller's token hash (SHA-256 hex; empty for server-to-server calls)
//	the original caller's IP address (empty for server-to-server calls)
//
// The receiver refuses a request whose time is more than the replay window
// away from its own clock, and a nonce it has seen within the window. The
// caller's token never travels: only its hash, which the receiving region
// resolves against its replica of the authoritative region's tokens; the
// hash is worthless without the secret, since only signed requests may
// present one.
//
// Answers are signed too, over "weir-federation-v1-response", the
// request's nonce, the status code and sha256(body), so that a node that
// slipped into the gossip pool cannot answer in a region's name.
const (
	HeaderFedRegion    = "X-Weir-Federation-Region"
	HeaderFedNode      = "X-Weir-Federation-Node"
	HeaderFedTime      = "X-Weir-Federation-Time"
	HeaderFedNonce     = "X-Weir-Federation-Nonce"
	HeaderFedPrincipal = "X-Weir-Federation-Principal"
	HeaderFedClientIP  = "X-Weir-Federation-Client-Ip"
	HeaderFedSignature = "X-Weir-Federation-Signature"
	// HeaderRegion names, in answers relayed from another region, the
	// region that answered.
	HeaderRegion = "X-Weir-Region"
)

// FederationSecretMinLen is the shortest federation secret accepted.
const FederationSecretMinLen = 32

const (
	signPrefix         = "weir-federation-v1"
	signResponsePrefix = "weir-federation-v1-response"
	sigScheme          = "v1="
)

// ErrFederationAuth is wrapped by every refusal of a federation request's
// credentials.
var ErrFederationAuth = errors.New("federation request refused")

// ParseFederationSecrets reads WEIR_FEDERATION_SECRET: one secret, or
// several separated by commas while a new one is rolled out (the first
// signs, any verifies). Each must be at least FederationSecretMinLen
// characters. Errors never contain a secret.
func ParseFederationSecrets(s string) ([][]byte, error) {
	var out [][]byte
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if len(part) < FederationSecretMinLen {
			return nil, fmt.Errorf("federation secret %d of %d is %d characters; it must be at least %d (for example `openssl rand -hex 32`)",
				i+1, len(strings.Split(s, ",")), len(part), FederationSecretMinLen)
		}
		out = append(out, []byte(part))
	}
	return out, nil
}

// fedCredentials are the signed facts of one federation request.
type fedCredentials struct {
	Method, URI, BodySHA string
	Time                 int64 // Unix milliseconds
	Nonce                string
	Region, Node         string
	Principal, ClientIP  string
}

func (c fedCredentials) canonical() string {
	return strings.Join([]string{signPrefix, c.Method, c.URI, c.BodySHA, strconv.FormatInt(c.Time, 10), c.Nonce,
		c.Region, c.Node, c.Principal, c.ClientIP}, "\n")
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func mac(secret []byte, msg string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// newNonce returns 16 random bytes in hex.
func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// signRequest sets the federation headers of req, whose body is body.
func signRequest(req *http.Request, secret []byte, body []byte, c fedCredentials) {
	c.Method, c.URI, c.BodySHA = req.Method, req.URL.RequestURI(), sha256Hex(body)
	h := req.Header
	h.Set(HeaderFedRegion, c.Region)
	h.Set(HeaderFedNode, c.Node)
	h.Set(HeaderFedTime, strconv.FormatInt(c.Time, 10))
	h.Set(HeaderFedNonce, c.Nonce)
	if c.Principal != "" {
		h.Set(HeaderFedPrincipal, c.Principal)
	}
	if c.ClientIP != "" {
		h.Set(HeaderFedClientIP, c.ClientIP)
	}
	h.Set(HeaderFedSignature, sigScheme+hex.EncodeToString(mac(secret, c.canonical())))
}

// verifyRequest checks the federation headers of req against its body and
// returns the signed facts. It does not check the replay window or the
// nonce; see nonceCache.
func verifyRequest(req *http.Request, secrets [][]byte, body []byte) (fedCredentials, error) {
	h := req.Header
	c := fedCredentials{Method: req.Method, URI: req.URL.RequestURI(), BodySHA: sha256Hex(body),
		Nonce: h.Get(HeaderFedNonce), Region: h.Get(HeaderFedRegion), Node: h.Get(HeaderFedNode),
		Principal: h.Get(HeaderFedPrincipal), ClientIP: h.Get(HeaderFedClientIP)}
	sig := h.Get(HeaderFedSignature)
	if sig == "" || c.Region == "" || c.Nonce == "" || h.Get(HeaderFedTime) == "" {
		return c, fmt.Errorf("%w: it carries no federation signature (%s, %s, %s and %s are required)",
			ErrFederationAuth, HeaderFedSignature, HeaderFedRegion, HeaderFedTime, HeaderFedNonce)
	}
	t, err := strconv.ParseInt(h.Get(HeaderFedTime), 10, 64)
	if err != nil {
		return c, fmt.Errorf("%w: %s is not Unix milliseconds", ErrFederationAuth, HeaderFedTime)
	}
	c.Time = t
	got, ok := strings.CutPrefix(sig, sigScheme)
	raw, derr := hex.DecodeString(got)
	if !ok || derr != nil {
		return c, fmt.Errorf("%w: %s must be v1=<hex>", ErrFederationAuth, HeaderFedSignature)
	}
	msg := c.canonical()
	for _, s := range secrets {
		if hmac.Equal(raw, mac(s, msg)) {
			return c, nil
		}
	}
	return c, fmt.Errorf("%w: the signature does not match: the servers do not share WEIR_FEDERATION_SECRET, or the request was altered", ErrFederationAuth)
}

func responseMessage(nonce string, status int, body []byte) string {
	return strings.Join([]string{signResponsePrefix, nonce, strconv.Itoa(status), sha256Hex(body)}, "\n")
}

// signResponse returns the signature header value of an answer.
func signResponse(secret []byte, nonce string, status int, body []byte) string {
	return sigScheme + hex.EncodeToString(mac(secret, responseMessage(nonce, status, body)))
}

// verifyResponse checks the signature of an answer to the request of nonce.
func verifyResponse(secrets [][]byte, sig, nonce string, status int, body []byte) bool {
	got, ok := strings.CutPrefix(sig, sigScheme)
	raw, err := hex.DecodeString(got)
	if !ok || err != nil {
		return false
	}
	msg := responseMessage(nonce, status, body)
	for _, s := range secrets {
		if hmac.Equal(raw, mac(s, msg)) {
			return true
		}
	}
	return false
}

// nonceCacheMax bounds the nonces remembered; beyond it, new requests are
// refused until old ones leave the window (a flood, not normal traffic).
const nonceCacheMax = 200_000

// nonceCache remembers the nonces of the requests accepted within the
// replay window, so that a captured request cannot be played again.
type nonceCache struct {
	window time.Duration

	mu     sync.Mutex
	seen   map[string]time.Time // nonce -> when it leaves the window
	pruned time.Time
}

func newNonceCache(window time.Duration) *nonceCache {
	return &nonceCache{window: window, seen: map[string]time.Time{}}
}

// admit checks the request time against now and the window, and that
// nonce is new; it then remembers nonce.
func (n *nonceCache) admit(nonce string, sent, now time.Time) error {
	if len(nonce) != 32 {
		return fmt.Errorf("%w: %s must be 32 hex digits", ErrFederationAuth, HeaderFedNonce)
	}
	if d := now.Sub(sent); d > n.window || d < -n.window {
		return fmt.Errorf("%w: it was signed %s from this server's clock, beyond the replay window of %s: check the clocks (NTP)",
			ErrFederationAuth, d.Round(time.Millisecond), n.window)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if now.Sub(n.pruned) > n.window/4 || len(n.seen) >= nonceCacheMax {
		for k, until := range n.seen {
			if now.After(until) {
				delete(n.seen, k)
			}
		}
		n.pruned = now
	}
	if _, dup := n.seen[nonce]; dup {
		return fmt.Errorf("%w: this request was received before (a replay)", ErrFederationAuth)
	}
	if len(n.seen) >= nonceCacheMax {
		return fmt.Errorf("%w: too many federation requests within the replay window", ErrFederationAuth)
	}
	n.seen[nonce] = sent.Add(n.window)
	return nil
}
