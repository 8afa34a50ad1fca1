package app

import (
	"net/http"

	"calculator/subscriptions"
)

// newServer is the HTTP server of the API with its limits (see Config): a
// request must arrive within ReadTimeout (its headers within
// ReadHeaderTimeout, at most MaxHeaderBytes of them), and a keep-alive
// connection may wait IdleTimeout for its next one.
//
// These bound the reading of a request only: net/http lifts the read
// deadline once the request is read, so SSE streams and ?wait answers last
// as long as they need (TestStreamsOutliveTheTimeouts). There is no
// WriteTimeout: an answer is small, an SSE stream bounds each of its writes
// itself (subscriptions.Options.WriteTimeout), and a ?wait answer may take
// up to 30 s.
func (a *App) newServer(handler http.Handler) *http.Server {
	return &http.Server{
		Handler:           a.drainer.closeWhenDraining(handler),
		ReadTimeout:       a.cfg.ReadTimeout,
		ReadHeaderTimeout: a.cfg.ReadHeaderTimeout,
		IdleTimeout:       a.cfg.IdleTimeout,
		MaxHeaderBytes:    a.cfg.MaxHeaderBytes,
		ConnContext:       subscriptions.ConnContext,
		ConnState:         a.drainer.track,
	}
}
