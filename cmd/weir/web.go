package main

import (
	"log/slog"
	"net/http"

	"github.com/weirdata/weir/web"
)

// apiPaths are the paths the API keeps when the dashboard serves the rest.
var apiPaths = []string{"/api/", "/healthz", "/readyz", "/metrics", "/agent/"}

// withWeb serves the dashboard at / and everything under apiPaths with
// next. The dashboard reads and writes through api (the broker's handler),
// in process.
func withWeb(next, api http.Handler, log *slog.Logger) (http.Handler, error) {
	dash, err := web.New(web.Config{API: api, Logger: log})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	for _, p := range apiPaths {
		mux.Handle(p, next)
	}
	mux.Handle("/", dash)
	return mux, nil
}
