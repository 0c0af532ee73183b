package dispatcher_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/weirdata/weir/catalog"
	"github.com/weirdata/weir/catalog/catalogtest"
	"github.com/weirdata/weir/dispatcher"
)

// FuzzCommandRequest sends arbitrary command names and bodies from an
// admin: the agent never panics, never fails on its side (5xx), always
// answers JSON, and refuses anything but a well-formed call with a 4xx.
func FuzzCommandRequest(f *testing.F) {
	for _, seed := range []struct{ name, body string }{
		{"count", `{"system":"src","args":{"path":"in"}}`},
		{"count", `{"system":"src","args":{"path":"../etc"}}`},
		{"count", `{"system":"nul","args":{"table":"t"}}`},
		{"ls", `{"system":"src","args":{"limit":3,"after":"a"}}`},
		{"ls", `{"system":"src","args":{"limit":1e9}}`},
		{"probe", `{"system":"src","args":{"count_files":true}}`},
		{"verify", `{"args":{"run_id":"000000000000000000000001","manifest":"target"}}`},
		{"verify", `{"system":null,"args":null}`},
		{"rm", `{"system":"src"}`},
		{"count", `{"system":"src","args":{"path":"\u0000"}}`},
		{"count", `[]`},
		{"count", `{"args":{"path":{"$ne":1}}}`},
		{"", ``},
	} {
		f.Add(seed.name, seed.body)
	}
	s := catalogtest.Open(f, catalog.DialectSQLite)
	e := newFuzzEnv(f, s)
	f.Fuzz(func(t *testing.T, name, body string) {
		if strings.ContainsAny(name, "/?#%") || name == "" {
			name = "x" + strings.NewReplacer("/", "", "?", "", "#", "", "%", "").Replace(name)
		}
		req := httptest.NewRequest(http.MethodPost, "http://agent"+dispatcher.CommandsPath+"/x", strings.NewReader(body))
		req.URL.Path = dispatcher.CommandsPath + "/" + name
		req.Header.Set("Authorization", "Bearer "+e.token)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		e.agent.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: the agent failed on its side: %d %s", name, body, rec.Code, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %q: the answer is not JSON: %s", name, body, rec.Body)
		}
		if rec.Code != http.StatusOK && rec.Code/100 != 4 {
			t.Fatalf("%s %q: unexpected status %d", name, body, rec.Code)
		}
	})
}

type fuzzEnv struct {
	agent *dispatcher.Agent
	token string
}

func newFuzzEnv(f *testing.F, s *catalog.Store) *fuzzEnv {
	ctx := f.Context()
	root := f.TempDir()
	for _, sys := range []*catalog.System{
		{Name: "src", Kind: catalog.KindFS, Region: testRegion, Settings: catalog.NewJSON(map[string]string{"root": root})},
		{Name: "nul", Kind: catalog.KindNull, Region: testRegion},
	} {
		if err := s.CreateSystem(ctx, sys); err != nil {
			f.Fatal(err)
		}
	}
	u := &catalog.User{Name: "admin", Role: catalog.RoleAdmin}
	if err := s.CreateUser(ctx, u); err != nil {
		f.Fatal(err)
	}
	tok, _, err := s.CreateToken(ctx, catalog.CreateTokenParams{UserID: u.ID, Name: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	a, err := dispatcher.NewAgent(dispatcher.AgentConfig{NodeID: testNode}, s, nil)
	if err != nil {
		f.Fatal(err)
	}
	return &fuzzEnv{agent: a, token: tok}
}
