package app

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"calculator/commander"
	"calculator/dashboard"
	"calculator/httpapi"
	"calculator/metrics"
	"calculator/openapi"
)

// routes is the HTTP API: every route of openapi/openapi.json
// (TestRoutesMatchTheDocument holds them together), behind the request id,
// the access log and the panic recovery; HEAD wherever GET is, 405 with
// Allow.
//
// Open: the probes, /metrics, the document, the dashboard and its login.
// Behind -auth-token: the commands, the queries and the streams. /metrics
// is open as /readyz is: it shows counts, latencies and lags, never a value,
// an id or a token, and a scraper then needs no secret (see README,
// Metrics).
func (a *App) routes(cmd *commander.Commander, m *metrics.Metrics) chi.Router {
	r := chi.NewRouter()
	r.Use(withRequestID, accessLog(a.logger), middleware.Recoverer, httpapi.LimitHeaders(httpapi.MaxHeaderBytes), headAsGet)
	r.NotFound(httpapi.NotFound)
	r.MethodNotAllowed(methodNotAllowed(r))
	r.Get("/healthz", a.healthz)
	r.Get("/readyz", a.readyz)
	r.Method(http.MethodGet, "/metrics", m.Handler())
	r.Get("/openapi.json", openapi.Serve)
	dashboard.Routes(r, a.cfg.AuthToken)
	r.Group(func(r chi.Router) {
		if a.cfg.AuthToken != "" {
			r.Use(dashboard.RequireToken(a.cfg.AuthToken)) // the bearer header, or the dashboard's cookie
		}
		cmd.Routes(r.With(m.CountCommands))
		a.view.Routes(r)
		a.subs.Routes(r.With(m.CountStreams))
	})
	return r
}
