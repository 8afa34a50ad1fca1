package commander

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"calculator/eventlog"
)

// nopLog takes every append at once: the benchmarks measure the handler.
type nopLog struct{}

func (nopLog) Append(context.Context, string, ...eventlog.Message) error { return nil }

// BenchmarkHandlers runs the command handlers through the router with
// logging at info, as in production: allocs/op shows what a request costs
// besides the log (and that the debug lines cost nothing at info).
func BenchmarkHandlers(b *testing.B) {
	c := New(nopLog{}, "commands", time.Second, zerolog.New(io.Discard).Level(zerolog.InfoLevel))
	r := chi.NewRouter()
	c.Routes(r)
	for _, tt := range []struct{ name, method, path, body string }{
		{"POST", http.MethodPost, "/values", `{"value":3}`},
		{"PUT", http.MethodPut, "/values/11111111-1111-1111-1111-111111111111", `{"operation":"MULTIPLY","value":3}`},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			body := strings.NewReader(tt.body)
			for b.Loop() {
				body.Reset(tt.body)
				req := httptest.NewRequest(tt.method, tt.path, body)
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				r.ServeHTTP(w, req)
				if w.Code != http.StatusAccepted {
					b.Fatalf("%s %s = %d %s", tt.method, tt.path, w.Code, w.Body)
				}
			}
		})
	}
}
