package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
)

// flashParam carries a one-line notice across a redirect after a form post
// (post, redirect, get); flashSigParam carries its MAC under a key made at
// start-up, so that only notices this process wrote are shown: a forged
// link (?flash=Call+us+at...) shows nothing. A notice that outlives the
// process (or lands on another server) is not shown either; it is only a
// notice.
const (
	flashParam    = "flash"
	flashSigParam = "flash_sig"
)

// flashMax bounds a notice.
const flashMax = 200

// flashKey is the MAC key of notices, random per process.
var flashKey = sync.OnceValue(func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read never fails on supported platforms
	return k
})

func flashSig(msg string) string {
	m := hmac.New(sha256.New, flashKey())
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// withFlash adds the notice msg, and its MAC, to the local path p.
func withFlash(p, msg string) string {
	u, err := url.Parse(p)
	if err != nil {
		return p
	}
	if len(msg) > flashMax {
		msg = msg[:flashMax]
	}
	q := u.Query()
	q.Set(flashParam, msg)
	q.Set(flashSigParam, flashSig(msg))
	u.RawQuery = q.Encode()
	return u.String()
}

// flashOf returns the notice of c's query when this process wrote it, else "".
func flashOf(c echo.Context) string {
	m := c.QueryParam(flashParam)
	sig := c.QueryParam(flashSigParam)
	if m == "" || !hmac.Equal([]byte(sig), []byte(flashSig(m))) {
		return ""
	}
	return strings.TrimSpace(m)
}
