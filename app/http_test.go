package app

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"calculator/internal/testlog"
)

// start runs the app on loopback with a temporary data directory until the
// test ends, and returns its base URL once it is ready.
func start(t *testing.T, cfg Config) (*App, string) {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	base := "http://" + a.Addr()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return a, base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 10 s (last: %v)", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// do sends a request and returns the answer with its body read.
func do(t *testing.T, method, url string, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read the body: %v", method, url, err)
	}
	return resp, string(raw)
}

func TestAccessLog(t *testing.T) {
	for _, level := range []zerolog.Level{zerolog.DebugLevel, zerolog.InfoLevel} {
		t.Run(level.String(), func(t *testing.T) {
			var logs testlog.Buffer
			_, base := start(t, Config{Logger: zerolog.New(&logs).Level(level)})

			ok, _ := do(t, "GET", base+"/healthz", "", map[string]string{"X-Request-ID": "from-the-proxy-42"})
			if got := ok.Header.Get("X-Request-ID"); got != "from-the-proxy-42" {
				t.Errorf("X-Request-ID of the answer = %q, want the request's", got)
			}
			bad, badBody := do(t, "GET", base+"/values/nope", "", nil)
			if bad.StatusCode != http.StatusBadRequest {
				t.Fatalf("GET /values/nope: %d", bad.StatusCode)
			}
			made := bad.Header.Get("X-Request-ID")
			if len(made) != 20 {
				t.Errorf("a request without an id got %q, want a made one (an xid of 20 characters)", made)
			}
			spoofed, _ := do(t, "GET", base+"/healthz", "", map[string]string{"X-Request-ID": strings.Repeat("x", 200)})
			if got := spoofed.Header.Get("X-Request-ID"); len(got) != 20 {
				t.Errorf("a request id of 200 characters was kept (%q), want a made one", got)
			}

			want := []map[string]any{
				{"level": "info", "method": "GET", "path": "/values/nope", "status": 400.0, "bytes": float64(len(badBody)), "request_id": made},
			}
			if level == zerolog.DebugLevel {
				want = []map[string]any{
					{"level": "debug", "method": "GET", "path": "/healthz", "status": 200.0, "request_id": "from-the-proxy-42"},
					want[0],
					{"level": "debug", "method": "GET", "path": "/healthz", "status": 200.0, "request_id": spoofed.Header.Get("X-Request-ID")},
				}
			}
			var got []map[string]any
			for _, line := range logs.Lines(t) {
				if line["component"] == "http" && line["path"] != "/readyz" {
					got = append(got, line)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("access log lines: got %d, want %d: %v", len(got), len(want), got)
			}
			for i, w := range want {
				for k, v := range w {
					if got[i][k] != v {
						t.Errorf("line %d: %s = %v, want %v (%v)", i, k, got[i][k], v, got[i])
					}
				}
				if _, ok := got[i]["duration"].(float64); !ok {
					t.Errorf("line %d has no duration: %v", i, got[i])
				}
				if got[i]["message"] != "request" {
					t.Errorf("line %d: message %v", i, got[i]["message"])
				}
			}
		})
	}
}

func TestMethodNotAllowedSaysAllow(t *testing.T) {
	_, base := start(t, Config{Logger: zerolog.Nop()})
	for _, c := range []struct{ method, path, allow string }{
		{"DELETE", "/values", "GET, HEAD, POST"},
		{"PATCH", "/values", "GET, HEAD, POST"},
		{"POST", "/healthz", "GET, HEAD"},
		{"DELETE", "/values/0b5e3cbe-bd5a-4d6c-9a0b-5b8e6f6c9d21", "GET, HEAD, PUT"},
		{"PUT", "/session", "GET, HEAD, POST, DELETE"},
	} {
		resp, body := do(t, c.method, base+c.path, "", nil)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d, want 405", c.method, c.path, resp.StatusCode)
			continue
		}
		if got := resp.Header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
		if c.method != "HEAD" && !strings.Contains(body, `"status":405`) {
			t.Errorf("%s %s: body %s, want a 405 problem", c.method, c.path, body)
		}
	}
}

func TestHeadIsGetWithoutTheBody(t *testing.T) {
	_, base := start(t, Config{Logger: zerolog.Nop()})
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json", "/"} {
		get, body := do(t, "GET", base+path, "", nil)
		head, headBody := do(t, "HEAD", base+path, "", nil)
		if head.StatusCode != get.StatusCode || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
			t.Errorf("HEAD %s: %d %q, GET: %d %q", path, head.StatusCode, head.Header.Get("Content-Type"), get.StatusCode, get.Header.Get("Content-Type"))
		}
		if headBody != "" || body == "" {
			t.Errorf("HEAD %s has a body of %d bytes, GET %d", path, len(headBody), len(body))
		}
	}

	// A stream would never end: HEAD gets its header, and the answer ends.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "HEAD", base+"/subscriptions/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("HEAD /subscriptions/events: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// The connection is free for the next request: the stream's handler ended.
	req, _ = http.NewRequestWithContext(ctx, "GET", base+"/healthz", nil)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatalf("the request after a HEAD of a stream: %v", err)
	}
	resp.Body.Close()
}

func TestBearerSchemeInAnyCase(t *testing.T) {
	_, base := start(t, Config{Logger: zerolog.Nop(), AuthToken: "s3cret"})
	url := base + "/values/0b5e3cbe-bd5a-4d6c-9a0b-5b8e6f6c9d21"
	for _, c := range []struct {
		authorization string
		want          int
	}{
		{"Bearer s3cret", http.StatusNotFound},
		{"bearer s3cret", http.StatusNotFound},
		{"BEARER s3cret", http.StatusNotFound},
		{"Bearer S3CRET", http.StatusUnauthorized}, // the token is not a scheme
		{"Basic s3cret", http.StatusUnauthorized},
		{"Bearers3cret", http.StatusUnauthorized},
		{"", http.StatusUnauthorized},
	} {
		if resp, _ := do(t, "GET", url, "", map[string]string{"Authorization": c.authorization}); resp.StatusCode != c.want {
			t.Errorf("Authorization %q: %d, want %d", c.authorization, resp.StatusCode, c.want)
		}
	}
}
