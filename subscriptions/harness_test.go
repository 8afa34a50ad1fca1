package subscriptions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"calculator/app"
	"calculator/internal/await"
	"calculator/internal/ssetest"
	"calculator/subscriptions"
)

// newRouter serves the Hub's endpoints alone.
func newRouter(h *subscriptions.Hub) http.Handler {
	r := chi.NewRouter()
	h.Routes(r)
	return r
}

// serveRecorded sends a GET to h and records the answer.
func serveRecorded(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec
}

// deadline bounds every wait of the tests.
const deadline = 30 * time.Second

// server is the whole calculator, running in-process on loopback.
type server struct {
	*app.App
	t        testing.TB
	URL      string
	dir      string
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

// start runs the calculator on 127.0.0.1:0 with the data directory dir and
// waits until it is ready.
func start(t testing.TB, dir string, opt subscriptions.Options) *server {
	t.Helper()
	return startAt(t, dir, "127.0.0.1:0", opt)
}

func startAt(t testing.TB, dir, addr string, opt subscriptions.Options) *server {
	t.Helper()
	a, err := app.New(app.Config{Addr: addr, DataDir: dir, Logger: zerolog.Nop(), Subscriptions: opt, ShutdownTimeout: 2 * deadline})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{App: a, t: t, URL: "http://" + a.Addr(), dir: dir, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- a.Run(ctx) }()
	t.Cleanup(s.stop)
	eventually(t, "the server is ready", func() bool {
		resp, err := http.Get(s.URL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s
}

// stop shuts the server down and waits for it. It may be called twice.
func (s *server) stop() {
	s.t.Helper()
	s.stopOnce.Do(func() {
		s.cancel()
		select {
		case err := <-s.done:
			if err != nil {
				s.t.Errorf("server stopped with %v", err)
			}
		case <-time.After(deadline):
			s.t.Error("the server did not stop")
		}
	})
}

// do sends a request and decodes the JSON answer, if any.
func (s *server) do(method, path, body string) (int, http.Header, map[string]any) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.URL+path, bytes.NewBufferString(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	var out map[string]any
	if len(raw) > 0 && json.Unmarshal(raw, &out) != nil {
		s.t.Fatalf("%s %s: %d with a body that is not a JSON object: %q", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, resp.Header, out
}

// create posts a new value and returns the command and value ids.
func (s *server) create(value float64) (commandID, valueID string) {
	s.t.Helper()
	status, _, body := s.do("POST", "/values", `{"value": `+jsonNumber(value)+`}`)
	if status != http.StatusAccepted {
		s.t.Fatalf("POST /values: %d %v", status, body)
	}
	return body["command_id"].(string), body["value_id"].(string)
}

// update sends an operation and returns the command id.
func (s *server) update(valueID, op string, value float64) string {
	s.t.Helper()
	status, _, body := s.do("PUT", "/values/"+valueID, `{"operation":"`+op+`","value": `+jsonNumber(value)+`}`)
	if status != http.StatusAccepted {
		s.t.Fatalf("PUT /values/%s: %d %v", valueID, status, body)
	}
	return body["command_id"].(string)
}

// commandStatus polls GET /commands/{id} until its status is want.
func (s *server) waitStatus(commandID, want string) map[string]any {
	s.t.Helper()
	var body map[string]any
	eventually(s.t, "command "+commandID+" is "+want, func() bool {
		var status int
		status, _, body = s.do("GET", "/commands/"+commandID, "")
		return status == http.StatusOK && body["status"] == want
	})
	return body
}

// dial opens an event stream that ends with the test.
func (s *server) dial(path, lastEventID string) *ssetest.Stream {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	stream, err := ssetest.Dial(ctx, nil, s.URL+path, lastEventID)
	if err != nil {
		cancel()
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { stream.Close(); cancel() })
	return stream
}

// next reads the next message of a stream.
func next(t testing.TB, s *ssetest.Stream) ssetest.Event {
	t.Helper()
	ev, err := s.Next()
	if err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	return ev
}

// readCommandStream reads a command stream to its end and returns the types
// of its messages, joined with commas, and the data and id of its
// "applied" message.
func readCommandStream(t testing.TB, stream *ssetest.Stream) (types string, applied map[string]any, appliedID string) {
	t.Helper()
	var seen []string
	for {
		ev, err := stream.Next()
		if err != nil {
			return strings.Join(seen, ","), applied, appliedID
		}
		seen = append(seen, ev.Type)
		if ev.Type == "applied" {
			applied, appliedID = data(t, ev), ev.LastEventID
		}
	}
}

// data decodes a message's JSON data.
func data(t testing.TB, ev ssetest.Event) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal([]byte(ev.Data), &out); err != nil {
		t.Fatalf("message %s: data %q is not a JSON object: %v", ev.Type, ev.Data, err)
	}
	return out
}

func jsonNumber(x float64) string {
	b, _ := json.Marshal(x)
	return string(b)
}

// eventually polls cond until it holds, or fails the test after deadline.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	await.Until(t, deadline, what, cond)
}
