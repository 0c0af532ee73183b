package broker

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"
)

// SignForTest builds a request signed as a server of region "test-origin"
// would sign it, at the time at.
func SignForTest(t testing.TB, method, url string, body, secret []byte, principal, clientIP string, at time.Time) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	signRequest(req, secret, body, fedCredentials{Time: at.UnixMilli(), Nonce: newNonce(), Region: "test-origin",
		Node: "test-node", Principal: principal, ClientIP: clientIP})
	return req
}
