package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"calculator/internal/ssetest"
	"calculator/openapi"
)

// stream opens an event stream through the checking client (so each
// message is checked against the document as it is read) and returns its
// reader; the stream is closed when the test ends, or by calling stop.
func (s *server) stream(path string, header map[string]string) (r *ssetest.Reader, stop func()) {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := s.streams.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	stop = func() { cancel(); resp.Body.Close() }
	s.t.Cleanup(stop)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		body, _ := io.ReadAll(resp.Body)
		s.t.Fatalf("GET %s = %d %s %s, want a 200 event stream", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	return ssetest.NewReader(resp.Body), stop
}

// next reads n messages with a deadline.
func next(t *testing.T, r *ssetest.Reader, n int) []ssetest.Event {
	t.Helper()
	got := make(chan []ssetest.Event, 1)
	failed := make(chan error, 1)
	go func() {
		var evs []ssetest.Event
		for len(evs) < n {
			ev, err := r.Next()
			if err != nil {
				failed <- err
				return
			}
			evs = append(evs, ev)
		}
		got <- evs
	}()
	select {
	case evs := <-got:
		return evs
	case err := <-failed:
		t.Fatalf("stream ended before %d messages: %v", n, err)
	case <-deadlineTimer(t):
		t.Fatalf("no %d messages within %s", n, deadline)
	}
	return nil
}

func deadlineTimer(t *testing.T) <-chan struct{} {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx.Done()
}

func types(evs []ssetest.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// TestEveryAnswerMatchesTheDocument drives each operation of the API to
// each of its kinds of answer (every ?wait outcome, every stream and its
// messages, the session endpoints, this document) so that the checking
// client holds them all to the OpenAPI document, and checks what they say.
func TestEveryAnswerMatchesTheDocument(t *testing.T) {
	s := start(t, t.TempDir())

	if r := s.must("GET", "/openapi.json", ""); r.Status != 200 || !bytes.Equal([]byte(r.Raw), openapi.Document) {
		t.Errorf("GET /openapi.json = %d, %d bytes: want the embedded document (%d bytes)", r.Status, len(r.Raw), len(openapi.Document))
	}
	if r := s.must("GET", "/session", ""); r.Status != 200 || r.Body["auth_required"] != false {
		t.Errorf("GET /session without -auth-token = %d %s", r.Status, r.Raw)
	}
	if r := s.must("GET", "/healthz", ""); r.Status != 200 {
		t.Errorf("GET /healthz = %d", r.Status)
	}

	// ?wait= answers: created, updated, rejected, a bad wait.
	r := s.must("POST", "/values?wait=5s", `{"value": 6}`)
	if r.Status != http.StatusCreated || r.Body["value"] != 6.0 {
		t.Fatalf("POST ?wait = %d %s, want 201 with the value", r.Status, r.Raw)
	}
	id, created := r.Body["value_id"].(string), r.Body["command_id"].(string)
	if r := s.must("PUT", "/values/"+id+"?wait=5s", `{"operation":"multiply","value":7}`); r.Status != http.StatusOK || r.Body["value"] != 42.0 {
		t.Fatalf("PUT ?wait = %d %s, want 200 with 42", r.Status, r.Raw)
	}
	r = s.must("PUT", "/values/"+id+"?wait=5s", `{"operation":"DIVIDE","value":0}`)
	if r.Status != http.StatusUnprocessableEntity || r.Body["reason"] != "division_by_zero" {
		t.Fatalf("PUT DIVIDE 0 ?wait = %d %s, want 422 division_by_zero", r.Status, r.Raw)
	}
	rejected := r.Body["command_id"].(string)
	if r := s.must("PUT", "/values/"+uuid.NewString()+"?wait=5s", `{"operation":"ADD","value":1}`); r.Status != 422 || r.Body["reason"] != "value_not_found" {
		t.Fatalf("PUT on a missing value ?wait = %d %s, want 422 value_not_found", r.Status, r.Raw)
	}
	if r := s.must("POST", "/values?wait=forever", `{"value": 1}`); r.Status != 400 {
		t.Fatalf("POST ?wait=forever = %d, want 400", r.Status)
	}

	// Command statuses.
	if r := s.must("GET", "/commands/"+rejected, ""); r.Status != 200 || r.Body["status"] != "rejected" {
		t.Errorf("GET /commands/%s = %d %s, want rejected", rejected, r.Status, r.Raw)
	}
	if r := s.must("GET", "/commands/"+uuid.NewString(), ""); r.Status != 404 {
		t.Errorf("GET /commands/<unknown> = %d, want 404", r.Status)
	}

	// A command's stream, then the reconnection that has seen it all.
	cs, _ := s.stream("/subscriptions/commands/"+rejected, nil)
	evs := next(t, cs, 3)
	if want := []string{"accepted", "rejected", "applied"}; !slices.Equal(types(evs), want) {
		t.Errorf("command stream: %v, want %v", types(evs), want)
	}
	req, _ := http.NewRequest("GET", s.URL+"/subscriptions/commands/"+rejected, nil)
	req.Header.Set("Last-Event-ID", evs[2].LastEventID)
	if resp, err := s.client.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Errorf("reconnecting after the last message: %v %v, want 204", resp, err)
	} else {
		resp.Body.Close()
	}

	// The stream of an older command shows the value right after it, not
	// the value now (42): the statuses do not keep it, the view reads it
	// back from the events log.
	cs, _ = s.stream("/subscriptions/commands/"+created, nil)
	evs = next(t, cs, 3)
	var applied struct {
		Value   float64 `json:"value"`
		Version int64   `json:"version"`
	}
	if err := json.Unmarshal([]byte(evs[2].Data), &applied); err != nil || evs[2].Type != "applied" || applied.Value != 6 || applied.Version != 1 {
		t.Errorf("the created command's stream ends with %s %s (%v), want applied with 6 at version 1", evs[2].Type, evs[2].Data, err)
	}

	// The events stream, from the start and after a Last-Event-ID.
	es, _ := s.stream("/subscriptions/events?from=0", nil)
	evs = next(t, es, 4)
	if want := []string{"ValueCreated", "ValueUpdated", "CommandRejected", "CommandRejected"}; !slices.Equal(types(evs), want) {
		t.Errorf("events stream: %v, want %v", types(evs), want)
	}
	es, _ = s.stream("/subscriptions/events", map[string]string{"Last-Event-ID": "1"})
	if evs := next(t, es, 2); evs[0].LastEventID != "2" || evs[1].LastEventID != "3" {
		t.Errorf("after Last-Event-ID 1: ids %s, %s, want 2, 3", evs[0].LastEventID, evs[1].LastEventID)
	}
	if r := s.must("GET", "/subscriptions/events?from=yesterday", ""); r.Status != 400 {
		t.Errorf("events from=yesterday = %d, want 400", r.Status)
	}

	// A value's stream: now, then each change.
	vs, _ := s.stream("/subscriptions/values/"+id, nil)
	if ev := next(t, vs, 1)[0]; ev.Type != "value" || !bytes.Contains([]byte(ev.Data), []byte(`"value":42,"version":2`)) {
		t.Errorf("values stream first message: %+v", ev)
	}
	s.update(id, "ADD", 1)
	if ev := next(t, vs, 1)[0]; !bytes.Contains([]byte(ev.Data), []byte(`"value":43,"version":3`)) {
		t.Errorf("values stream after ADD 1: %+v", ev)
	}
	if r := s.must("GET", "/subscriptions/values/"+uuid.NewString(), ""); r.Status != 404 {
		t.Errorf("stream of a missing value = %d, want 404", r.Status)
	}
}

// TestTokenCookie logs in as the dashboard does and uses the cookie where
// the API wants the bearer header, streams included.
func TestTokenCookie(t *testing.T) {
	s := start(t, t.TempDir(), "-auth-token", "s3cret")
	if r := s.must("GET", "/session", ""); r.Status != http.StatusUnauthorized {
		t.Fatalf("GET /session without credentials = %d, want 401", r.Status)
	}
	if r := s.must("POST", "/session", `{"token":"nope"}`); r.Status != http.StatusUnauthorized {
		t.Fatalf("login with a wrong token = %d, want 401", r.Status)
	}
	r := s.must("POST", "/session", `{"token":"s3cret"}`)
	cookies := (&http.Response{Header: r.Header}).Cookies()
	if r.Status != http.StatusNoContent || len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("login = %d, Set-Cookie %q: want 204 and one HttpOnly, SameSite=Strict cookie", r.Status, r.Header.Values("Set-Cookie"))
	}
	cookie := cookies[0].Name + "=" + cookies[0].Value
	withCookie := func(method, path, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
		req.Header.Set("Cookie", cookie)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := withCookie("POST", "/values", `{"value":1}`); resp.StatusCode != http.StatusAccepted {
		t.Errorf("POST /values with the cookie = %d, want 202", resp.StatusCode)
	}
	if resp := withCookie("GET", "/session", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /session with the cookie = %d, want 200", resp.StatusCode)
	}
	es, _ := s.stream("/subscriptions/events?from=0", map[string]string{"Cookie": cookie})
	if ev := next(t, es, 1)[0]; ev.Type != "ValueCreated" {
		t.Errorf("events stream with the cookie: %+v", ev)
	}
	if r := s.must("DELETE", "/session", ""); r.Status != http.StatusNoContent {
		t.Errorf("logout = %d, want 204", r.Status)
	}
}
