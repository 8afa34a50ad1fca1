package app

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"

	"calculator/metrics"
)

// BenchmarkRequestOverhead is the cost that the request id, the access log
// (at info: a 202 writes no line) and the command counter add to a command
// request, around a handler that only answers 202: "bare" against
// "instrumented". See BENCHMARKS.md, Metrics and the access log.
func BenchmarkRequestOverhead(b *testing.B) {
	answer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
	})
	m := metrics.New()
	for _, c := range []struct {
		name    string
		handler http.Handler
	}{
		{"bare", answer},
		{"instrumented", withRequestID(accessLog(zerolog.Nop().Level(zerolog.InfoLevel))(m.CountCommands(answer)))},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest("POST", "/values", nil)
			b.ReportAllocs()
			for b.Loop() {
				// New headers each time, as net/http makes them.
				req.Header = http.Header{"Content-Type": {"application/json"}, "User-Agent": {"Go-http-client/1.1"},
					"Content-Length": {"12"}, "Accept-Encoding": {"gzip"}}
				c.handler.ServeHTTP(&answerWriter{header: http.Header{}}, req)
			}
		})
	}
}

// answerWriter is the least of a response writer.
type answerWriter struct {
	header http.Header
	status int
}

func (w *answerWriter) Header() http.Header         { return w.header }
func (w *answerWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *answerWriter) WriteHeader(code int)        { w.status = code }
