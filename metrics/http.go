package metrics

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// CountCommands is a middleware for the command routes: it counts each
// answer by method and status (calculator_command_requests_total). A
// request whose client went away before an answer counts as the 200 that
// net/http then sends.
//
// When w already tells its status (Status() int, as the access log's
// writer of zerolog/hlog does), that is used rather than a writer of its
// own: one allocation less per command.
func (m *Metrics) CountCommands(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, ok := w.(statusTeller)
		if !ok {
			sw = &statusWriter{ResponseWriter: w}
		}
		next.ServeHTTP(sw, r)
		code := sw.Status()
		if code == 0 {
			code = http.StatusOK
		}
		m.commandRequests.WithLabelValues(r.Method, statusText(code)).Inc()
	})
}

// statusText is strconv.Itoa without an allocation for the usual statuses.
func statusText(code int) string {
	switch code {
	case http.StatusOK:
		return "200"
	case http.StatusCreated:
		return "201"
	case http.StatusAccepted:
		return "202"
	case http.StatusBadRequest:
		return "400"
	case http.StatusServiceUnavailable:
		return "503"
	}
	return strconv.Itoa(code)
}

// CountStreams is a middleware for the subscription routes: it counts the
// Server-Sent Events streams open (calculator_sse_subscribers), by stream:
// the path segment after /subscriptions/ of the route (commands, events,
// values). A request counts from the moment it is answered with a stream
// until its handler returns; one answered otherwise (404, 503) does not
// count.
func (m *Metrics) CountStreams(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		sw.onHeader = func(code int) {
			if code == http.StatusOK && strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream") {
				sw.gauge = m.subscribers.WithLabelValues(streamName(r))
				sw.gauge.Inc()
			}
		}
		defer func() {
			if sw.gauge != nil {
				sw.gauge.Dec()
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// streamName is the stream a subscription route serves: "events" for
// /subscriptions/events, "values" for /subscriptions/values/{value_id}.
func streamName(r *http.Request) string {
	pattern := r.URL.Path
	if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePattern() != "" {
		pattern = rctx.RoutePattern()
	}
	rest := strings.TrimPrefix(pattern, "/subscriptions/")
	name, _, _ := strings.Cut(rest, "/")
	return name
}

// statusTeller is a response writer that tells the status it sent (0 for
// none yet).
type statusTeller interface {
	http.ResponseWriter
	Status() int
}

// statusWriter notes the status of an answer. It lets
// http.ResponseController reach the writer below (Unwrap) for deadlines,
// and flushes through it.
type statusWriter struct {
	http.ResponseWriter
	status   int
	onHeader func(code int)
	gauge    prometheus.Gauge // the stream's, once it is counted
}

func (w *statusWriter) WriteHeader(code int) {
	w.noteStatus(code)
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.noteStatus(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// FlushError flushes the answer (http.ResponseController's Flush), which
// sends the header if it is not sent yet.
func (w *statusWriter) FlushError() error {
	w.noteStatus(http.StatusOK)
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush is http.Flusher's, for writers that look for it.
func (w *statusWriter) Flush() { _ = w.FlushError() }

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Status is the status sent, 0 before.
func (w *statusWriter) Status() int { return w.status }

func (w *statusWriter) noteStatus(code int) {
	if w.status != 0 || code < 200 { // informational answers come before the real one
		return
	}
	w.status = code
	if w.onHeader != nil {
		w.onHeader(code)
	}
}
