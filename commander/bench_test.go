package commander

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"calculator/eventlog"
	"calculator/eventlog/filelog"
	"calculator/idempotency"
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

// BenchmarkKeyedPOST is BenchmarkHandlers' POST with a new Idempotency-Key
// each time: what deriving the ids and reserving the key add.
func BenchmarkKeyedPOST(b *testing.B) {
	log, err := filelog.Open(b.TempDir(), zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	keys := idempotency.New(log, "commands", zerolog.Nop(), idempotency.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { keys.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for !keys.Ready() {
		time.Sleep(time.Millisecond)
	}
	c := New(nopLog{}, "commands", time.Second, zerolog.New(io.Discard).Level(zerolog.InfoLevel))
	c.SetKeys(keys)
	r := chi.NewRouter()
	c.Routes(r)
	b.ReportAllocs()
	body := strings.NewReader(`{"value":3}`)
	i := 0
	for b.Loop() {
		i++
		body.Reset(`{"value":3}`)
		req := httptest.NewRequest(http.MethodPost, "/values", body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "order-"+strconv.Itoa(i))
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Fatalf("POST = %d %s", w.Code, w.Body)
		}
	}
}
