package commander_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"calculator/commander"
	"calculator/eventlog"
	"calculator/eventlog/filelog"
)

// stuckLog never stores anything: it waits until the caller gives up.
type stuckLog struct{}

func (stuckLog) Append(ctx context.Context, _ string, _ ...eventlog.Message) error {
	<-ctx.Done()
	return ctx.Err()
}

func serve(t *testing.T, log commander.Log, timeout time.Duration) *httptest.Server {
	r := chi.NewRouter()
	commander.New(log, "commands", timeout, zerolog.Nop()).Routes(r)
	s := httptest.NewServer(r)
	t.Cleanup(s.Close)
	return s
}

func post(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Post(url+"/values", "application/json", strings.NewReader(`{"value": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func check503(t *testing.T, resp *http.Response) {
	t.Helper()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", resp.StatusCode)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q", ct)
	}
}

// A log that does not answer gets a 503 once the append timeout has passed,
// never a 202.
func TestStuckLogGets503(t *testing.T) {
	s := serve(t, stuckLog{}, 50*time.Millisecond)
	check503(t, post(t, s.URL))
}

// A closed file log (what a failed disk amounts to) gets a 503 at once.
func TestClosedLogGets503(t *testing.T) {
	l, err := filelog.Open(t.TempDir(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), "commands", eventlog.Message{}); !errors.Is(err, eventlog.ErrClosed) {
		t.Fatalf("Append on a closed log = %v", err)
	}
	s := serve(t, l, time.Second)
	check503(t, post(t, s.URL))
}
