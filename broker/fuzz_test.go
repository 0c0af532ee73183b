package broker_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/weirdata/weir/broker"
	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
)

// FuzzSubmitRunDecoding sends arbitrary bodies to POST /api/v1/runs as an
// admin (who passes every entitlement check, so the body reaches the deepest
// validation) on SQLite: whatever the body, the answer is never a 5xx, and an
// error answer is the JSON error body with a code.
func FuzzSubmitRunDecoding(f *testing.F) { fuzzSubmitRun(f, catalog.DialectSQLite) }

// FuzzSubmitRunDecodingPostgres is FuzzSubmitRunDecoding on PostgreSQL,
// which refuses more bytes (NUL, invalid UTF-8) than SQLite.
func FuzzSubmitRunDecodingPostgres(f *testing.F) { fuzzSubmitRun(f, catalog.DialectPostgres) }

func fuzzSubmitRun(f *testing.F, dialect string) {
	for _, seed := range []string{
		`{"mapping":"trades","params":{"business_date":"2026-11-20"}}`,
		`{"mapping":"trades","params":{"business_date":"2026-11-20","desk":"a/b"},"priority":-1000,"idempotency_key":"k"}`,
		`{"mapping":"trades","params":{"business_date":"2026-11-20","desk":"../x"}}`,
		`{"mapping":"trades","params":{"business_date":1e400}}`,
		`{"mapping":"trades","params":{"business_date":["2026-11-20"]}}`,
		`{"mapping":"trades","params":{"business_date":null,"desk":{"a":1}}}`,
		`{"mapping":"trades","priority":99999999999999999999}`,
		`{"mapping":"remote"}`,
		`{"mapping":"other","params":null,"idempotency_key":"\u0000"}`,
		`{"mapping":"\u00e9\u0301","params":{}}`,
		`{"mapping":"trades"}{"mapping":"trades"}`,
		`{"mapping":"trades\u0000"}`,
		`{"mapping":"trades","params":{"business_date":"2026-11-20","desk":"\u0000"}}`,
		`{"mapping":"trades","params":{"business_date":"2026-11-20","desk":"\ud800"}}`,
		`null`, `[]`, `""`, `{`, `{"mapping":`, "\xff\xfe", ``,
	} {
		f.Add([]byte(seed))
	}
	e := newEnv(f, catalogtest.Open(f, dialect))
	f.Fuzz(func(t *testing.T, body []byte) {
		e.t = t // helpers report to the running input; inputs run one at a time per process
		r := e.do(request{Method: http.MethodPost, Path: "/api/v1/runs", Body: body})
		if r.Status >= 500 {
			t.Fatalf("body %q answered %d: %s", body, r.Status, r.Body)
		}
		switch r.Status {
		case http.StatusOK, http.StatusCreated:
			var v broker.RunView
			if err := json.Unmarshal(r.Body, &v); err != nil || v.ID == "" {
				t.Fatalf("body %q answered %d with no run: %s", body, r.Status, r.Body)
			}
			return
		}
		var eb broker.ErrorBody
		if err := json.Unmarshal(r.Body, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
			t.Fatalf("body %q answered %d without a JSON error: %s", body, r.Status, r.Body)
		}
		if r.Status < 400 || r.Status > 499 {
			t.Fatalf("body %q answered %d", body, r.Status)
		}
	})
}
