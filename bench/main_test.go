package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// fakeCalculator answers like the calculator, applying every command at
// once: 202 without ?wait, 201/200 with it.
func fakeCalculator(t *testing.T) *httptest.Server {
	var mu sync.Mutex
	versions := map[string]int64{}
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, r *http.Request, id string, created bool) {
		w.Header().Set("Content-Type", "application/json")
		status := http.StatusAccepted
		if r.URL.Query().Get("wait") != "" {
			status = http.StatusOK
			if created {
				status = http.StatusCreated
			}
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"command_id": uuid.NewString(), "value_id": id, "status": "accepted"})
	}
	mux.HandleFunc("POST /values", func(w http.ResponseWriter, r *http.Request) {
		id := uuid.NewString()
		mu.Lock()
		versions[id] = 1
		mu.Unlock()
		answer(w, r, id, true)
	})
	mux.HandleFunc("PUT /values/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		mu.Lock()
		_, ok := versions[id]
		versions[id]++
		mu.Unlock()
		if !ok {
			http.Error(w, "unknown value", http.StatusNotFound)
			return
		}
		answer(w, r, id, false)
	})
	mux.HandleFunc("GET /values/{id}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		v, ok := versions[r.PathValue("id")]
		mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"value_id": r.PathValue("id"), "value": 1, "version": v})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func testConfig(t *testing.T, srv *httptest.Server, args ...string) config {
	t.Helper()
	cfg, err := parseFlags(append([]string{"-url", srv.URL, "-duration", "300ms", "-concurrency", "4", "-values", "8", "-quiet"}, args...))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestRunMeasuresAcceptedAndApplied(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"polling", []string{"-sample", "1"}},
		{"wait", []string{"-wait", "5s"}},
		{"rate", []string{"-rate", "200", "-sample", "1"}},
		{"requests", []string{"-requests", "50", "-sample", "1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, fakeCalculator(t), tt.args...)
			res, err := run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			summary := res.summary(cfg)
			if res.accepted == 0 || len(res.errors) != 0 {
				t.Fatalf("accepted %d, errors %v: %s", res.accepted, res.errors, summary)
			}
			if res.appliedLat.count() == 0 || res.sampleTimeouts != 0 {
				t.Errorf("no applied latency measured (%d sample timeouts): %s", res.sampleTimeouts, summary)
			}
			if cfg.wait > 0 && res.applied != res.accepted {
				t.Errorf("with -wait, %d of %d commands answered as applied: %s", res.applied, res.accepted, summary)
			}
			if cfg.requests > 0 && res.sent > cfg.requests {
				t.Errorf("sent %d commands, more than -requests %d", res.sent, cfg.requests)
			}
			for _, key := range []string{"accepted_rps=", "applied_rps=", "accept_p99_ms=", "errors=0"} {
				if !strings.Contains(summary, key) {
					t.Errorf("summary lacks %s: %s", key, summary)
				}
			}
			if strings.Contains(summary, "\n") {
				t.Errorf("summary is more than one line: %q", summary)
			}
		})
	}
}

func TestRunCountsErrorsByStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusAccepted)
			json.NewEncoder(w).Encode(map[string]any{"value_id": uuid.NewString()})
			return
		}
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	cfg := testConfig(t, srv, "-applied=false", "-mix", "create=0,update=1")
	res, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.errors[http.StatusServiceUnavailable] == 0 || res.accepted != 0 {
		t.Fatalf("errors %v, accepted %d; want only 503s", res.errors, res.accepted)
	}
	if s := res.summary(cfg); !strings.Contains(s, "errors_by_status=503:") {
		t.Errorf("summary: %s", s)
	}
}

func TestFlags(t *testing.T) {
	if pct, err := parseMix("create=1,update=3"); err != nil || pct != 25 {
		t.Errorf(`parseMix("create=1,update=3") = %d, %v; want 25`, pct, err)
	}
	for _, bad := range []string{"create=1,delete=2", "create=0,update=0", "update"} {
		if _, err := parseMix(bad); err == nil {
			t.Errorf("parseMix(%q) accepted it", bad)
		}
	}
	if _, err := parseFlags([]string{"-url", "http://192.0.2.1:3030"}); err == nil {
		t.Error("a non-loopback URL was accepted without -allow-remote")
	}
	if _, err := parseFlags([]string{"-url", "http://127.0.0.1:3030", "-values", "2", "-concurrency", "4"}); err == nil {
		t.Error("-values below -concurrency was accepted")
	}
	if _, err := parseFlags([]string{"-numbers", "roman"}); err == nil {
		t.Error("-numbers roman was accepted")
	}
	for name, p := range numberPayloads {
		cfg, err := parseFlags([]string{"-numbers", name})
		if err != nil || cfg.numbers.name != name {
			t.Errorf("-numbers %s: %v, %q", name, err, cfg.numbers.name)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		for _, n := range append(p.operands[:], p.value(rng), p.value(rng)) {
			if !json.Valid([]byte(n)) || strings.ContainsAny(n, `"[{`) {
				t.Errorf("-numbers %s sends %q: not a JSON number", name, n)
			}
		}
	}
	u, _ := url.Parse("http://127.0.0.1:1")
	if err := checkLoopback(u.Hostname()); err != nil {
		t.Errorf("checkLoopback(127.0.0.1) = %v", err)
	}
}

// At a low rate the dispatcher hands out due times early; the latency must
// still be the request's, not shortened by the time it waited to be due.
func TestRateLatencyIsNeverBelowTheRoundTrip(t *testing.T) {
	const delay = time.Millisecond
	fake := fakeCalculator(t)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		fake.Config.Handler.ServeHTTP(w, r)
	}))
	defer slow.Close()
	cfg := testConfig(t, slow, "-rate", "4000", "-applied=false", "-concurrency", "16", "-values", "16")
	res, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p50 := res.accept.quantile(0.5); p50 < delay {
		t.Errorf("accept p50 = %v, less than the server's %v delay: %s", p50, delay, res.summary(cfg))
	}
}

func TestJobStart(t *testing.T) {
	t0 := time.Now()
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	for _, tt := range []struct {
		name                string
		due, released, sent time.Time
		want                time.Time
	}{
		{"on time", ms(10), ms(10), ms(10), ms(10)},
		{"handed out early, sent early", ms(10), ms(9), ms(9), ms(9)},
		{"handed out early, sent late: the server's queue", ms(10), ms(9), ms(15), ms(10)},
		{"dispatcher late: its own delay does not count", ms(10), ms(12), ms(12), ms(12)},
		{"dispatcher late, then workers busy", ms(10), ms(12), ms(20), ms(12)},
	} {
		if got := (job{due: tt.due, released: tt.released}).start(tt.sent); !got.Equal(tt.want) {
			t.Errorf("%s: start = +%v, want +%v", tt.name, got.Sub(t0), tt.want.Sub(t0))
		}
	}
}
