package subscriptions_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"calculator/internal/ssetest"
	"calculator/subscriptions"
)

func TestCommandStatus(t *testing.T) {
	s := start(t, t.TempDir(), subscriptions.Options{})

	if status, _, _ := s.do("GET", "/commands/not-a-uuid", ""); status != http.StatusBadRequest {
		t.Errorf("invalid id: %d, want 400", status)
	}
	status, header, body := s.do("GET", "/commands/"+uuid.NewString(), "")
	if status != http.StatusNotFound || header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("unknown id: %d %s %v, want a 404 problem", status, header.Get("Content-Type"), body)
	}

	created, valueID := s.create(6)
	// The command is known as soon as its 202 is sent: no 404 in between.
	if status, _, body := s.do("GET", "/commands/"+created, ""); status != http.StatusOK ||
		(body["status"] != "accepted" && body["status"] != "succeeded") {
		t.Errorf("right after the 202: %d %v", status, body)
	}
	got := s.waitStatus(created, "succeeded")
	if got["command_id"] != created || got["value_id"] != valueID || got["event_id"] == nil {
		t.Errorf("succeeded: %v", got)
	}

	divided := s.update(valueID, "divide", 0)
	got = s.waitStatus(divided, "rejected")
	if got["reason"] != "division_by_zero" || !strings.Contains(got["message"].(string), "zero") || got["event_id"] == nil {
		t.Errorf("rejected: %v", got)
	}

	missing := s.update(uuid.NewString(), "add", 1)
	if got := s.waitStatus(missing, "rejected"); got["reason"] != "value_not_found" {
		t.Errorf("update of a missing value: %v", got)
	}

	// After a restart the statuses are rebuilt from the logs.
	dir := s.dir
	s.stop()
	s = start(t, dir, subscriptions.Options{})
	for id, want := range map[string]string{created: "succeeded", divided: "rejected", missing: "rejected"} {
		if status, _, body := s.do("GET", "/commands/"+id, ""); status != http.StatusOK || body["status"] != want {
			t.Errorf("after the restart, command %s: %d %v, want %s", id, status, body, want)
		}
	}
}

func TestCommandStream(t *testing.T) {
	s := start(t, t.TempDir(), subscriptions.Options{})
	commandID, valueID := s.create(3)
	s.waitStatus(commandID, "succeeded")

	// A finished command: its whole story at once, then the end.
	stream := s.dial("/subscriptions/commands/"+commandID, "")
	if stream.Response.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("Cache-Control = %q", stream.Response.Header.Get("Cache-Control"))
	}
	types, applied, lastID := readCommandStream(t, stream)
	if types != "accepted,succeeded,applied" {
		t.Fatalf("messages %v, want accepted, succeeded, applied, then the end", types)
	}
	if applied["value"] != 3.0 || applied["value_id"] != valueID || applied["status"] != "succeeded" {
		t.Errorf("applied: %v", applied)
	}
	if stream.Retry <= 0 {
		t.Error("no retry hint")
	}

	// EventSource reconnects after the end, with the last id: 204 tells it
	// to stop.
	req, _ := http.NewRequest("GET", s.URL+"/subscriptions/commands/"+commandID, nil)
	req.Header.Set("Last-Event-ID", lastID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("reconnection after the end: %d, want 204", resp.StatusCode)
	}

	// A command in flight: accepted, then its outcome as it comes.
	rejected := s.update(valueID, "DIVIDE", 0)
	stream = s.dial("/subscriptions/commands/"+rejected, "")
	want := []string{"accepted", "rejected", "applied"}
	for i, w := range want {
		ev := next(t, stream)
		if ev.Type != w {
			t.Fatalf("message %d: %s, want %s", i, ev.Type, w)
		}
		if w == "rejected" && data(t, ev)["reason"] != "division_by_zero" {
			t.Errorf("rejected: %s", ev.Data)
		}
		if w == "applied" && data(t, ev)["value"] != 3.0 {
			t.Errorf("applied after a rejection shows the unchanged value: %s", ev.Data)
		}
	}

	if status, _, _ := s.do("GET", "/subscriptions/commands/nope", ""); status != http.StatusBadRequest {
		t.Errorf("invalid id: %d", status)
	}
}

// The statuses do not keep the value after each outcome: the Hub reads it
// when asked, from the view when the value is still at that version, or
// else back from the events log. A command's stream and a repeat of a
// keyed ?wait= show the value right after that command, however far the
// value has moved on since, before and after a restart.
func TestOlderCommandsKeepTheirValue(t *testing.T) {
	s := start(t, t.TempDir(), subscriptions.Options{})
	keyed := func() (int, map[string]any) {
		req, _ := http.NewRequest("POST", s.URL+"/values?wait=10s", strings.NewReader(`{"value": 3}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "older-commands")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	status, body := keyed()
	if status != http.StatusCreated || body["value"] != 3.0 {
		t.Fatalf("keyed POST ?wait: %d %v, want 201 with 3", status, body)
	}
	created, valueID := body["command_id"].(string), body["value_id"].(string)
	added := s.update(valueID, "add", 4)
	s.waitStatus(added, "succeeded")
	rejected := s.update(valueID, "divide", 0)
	s.waitStatus(rejected, "rejected")
	multiplied := s.update(valueID, "multiply", 10)
	s.waitStatus(multiplied, "succeeded")

	want := []struct {
		command string
		final   string
		value   float64
		version float64
	}{
		{created, "succeeded", 3, 1},
		{added, "succeeded", 7, 2},
		{rejected, "rejected", 7, 2}, // a rejection leaves the value as it was
		{multiplied, "succeeded", 70, 3},
	}
	check := func(when string) {
		t.Helper()
		for _, w := range want {
			got, applied, _ := readCommandStream(t, s.dial("/subscriptions/commands/"+w.command, ""))
			if got != "accepted,"+w.final+",applied" {
				t.Errorf("%s, command %s: messages %s", when, w.command, got)
			}
			if applied["status"] != w.final || applied["value"] != w.value || applied["version"] != w.version {
				t.Errorf("%s, command %s: applied %v, want %s with value %v at version %v", when, w.command, applied, w.final, w.value, w.version)
			}
		}
		// The repeat is not appended again: ?wait= answers with the
		// outcome of the first, the value as that command left it.
		if status, body := keyed(); status != http.StatusCreated || body["command_id"] != created || body["value"] != 3.0 || body["version"] != 1.0 {
			t.Errorf("%s, a repeat of the keyed POST ?wait: %d %v, want 201 with 3 at version 1", when, status, body)
		}
	}
	check("live")
	dir := s.dir
	s.stop()
	s = start(t, dir, subscriptions.Options{})
	check("after a restart")
}

// A command stream for an id nobody has sent waits, with comment lines, and
// says "unknown" when the wait is over.
func TestCommandStreamForAnUnknownCommand(t *testing.T) {
	s := start(t, t.TempDir(), subscriptions.Options{CommandWait: 300 * time.Millisecond, Heartbeat: 20 * time.Millisecond})
	stream := s.dial("/subscriptions/commands/"+uuid.NewString(), "")
	ev := next(t, stream)
	if ev.Type != "unknown" {
		t.Errorf("message %s %s, want unknown", ev.Type, ev.Data)
	}
	if len(stream.Comments) == 0 {
		t.Error("no keep-alive comment while waiting")
	}
	if _, err := stream.Next(); err == nil {
		t.Error("the stream did not end after unknown")
	}
}

func TestEventsStream(t *testing.T) {
	s := start(t, t.TempDir(), subscriptions.Options{Heartbeat: 50 * time.Millisecond})
	_, valueID := s.create(1)
	for i := range 4 {
		s.update(valueID, "add", float64(i))
	}
	rejected := s.update(valueID, "divide", 0)
	s.waitStatus(rejected, "rejected")

	// Catch-up from 0: the six events, with their positions as ids.
	stream := s.dial("/subscriptions/events?from=0", "")
	wantTypes := []string{"ValueCreated", "ValueUpdated", "ValueUpdated", "ValueUpdated", "ValueUpdated", "CommandRejected"}
	for i, w := range wantTypes {
		ev := next(t, stream)
		if ev.Type != w || ev.LastEventID != strconv.Itoa(i) {
			t.Fatalf("message %d: %s id %q, want %s id %d", i, ev.Type, ev.LastEventID, w, i)
		}
		d := data(t, ev)
		if d["action"] != w || d["data"].(map[string]any)["value-id"] != valueID || d["parent-id"] == nil {
			t.Errorf("message %d: data %s is not the event's wire form", i, ev.Data)
		}
	}
	// Then live.
	s.update(valueID, "multiply", 2)
	if ev := next(t, stream); ev.Type != "ValueUpdated" || ev.LastEventID != "6" || data(t, ev)["data"].(map[string]any)["result"] != 14.0 {
		t.Errorf("live message: %s id %s %s", ev.Type, ev.LastEventID, ev.Data)
	}
	// Idle: comment lines.
	eventually(t, "a keep-alive comment", func() bool {
		// Comments are only parsed while reading; a second update
		// makes the reader pass the comments sent in between.
		s.update(valueID, "add", 0)
		next(t, stream)
		return len(stream.Comments) > 0
	})

	// From a later position, and resuming after an id.
	stream = s.dial("/subscriptions/events?from=4", "")
	if ev := next(t, stream); ev.LastEventID != "4" {
		t.Errorf("from=4 starts with id %s", ev.LastEventID)
	}
	stream = s.dial("/subscriptions/events?from=0", "2") // Last-Event-ID wins over from
	if ev := next(t, stream); ev.LastEventID != "3" {
		t.Errorf("Last-Event-ID: 2 resumes with id %s, want 3", ev.LastEventID)
	}

	// Without a start: live only.
	stream = s.dial("/subscriptions/events", "")
	cmd := s.update(valueID, "subtract", 1)
	ev := next(t, stream)
	if d := data(t, ev); d["parent-id"] != cmd {
		t.Errorf("live-only stream starts with %s, want the event of %s", ev.Data, cmd)
	}

	for _, bad := range []string{"?from=x", "?from=-1", "?from=1:2:3"} {
		if status, _, _ := s.do("GET", "/subscriptions/events"+bad, ""); status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, status)
		}
	}
}

// A subscriber that catches up while commands keep coming switches from the
// log to the live feed without a gap or a repeat; so does one that resumes.
func TestEventsStreamHandoverUnderLoad(t *testing.T) {
	s := start(t, t.TempDir(), subscriptions.Options{})
	_, valueID := s.create(0)
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			req, _ := http.NewRequest("PUT", s.URL+"/values/"+valueID, strings.NewReader(`{"operation":"add","value":1}`))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
		}
	}()
	defer func() { close(stop); <-writerDone }()

	// Read a little, drop the connection, resume from the last id, read on.
	const total = 300
	seen := 0
	lastID := ""
	for round := 0; seen < total; round++ {
		path := "/subscriptions/events?from=0"
		stream := s.dial(path, lastID)
		for n := 0; n < 50+round && seen < total; n++ {
			ev := next(t, stream)
			if ev.LastEventID != strconv.Itoa(seen) {
				t.Fatalf("round %d: message with id %s, want %d (a gap or a repeat)", round, ev.LastEventID, seen)
			}
			seen++
			lastID = ev.LastEventID
		}
		stream.Close()
	}
}

func TestValuesStream(t *testing.T) {
	s := start(t, t.TempDir(), subscriptions.Options{})
	commandID, valueID := s.create(2)
	s.waitStatus(commandID, "succeeded")
	stream := s.dial("/subscriptions/values/"+valueID, "")
	first := data(t, next(t, stream))
	if first["value"] != 2.0 || first["version"] != 1.0 || first["value_id"] != valueID {
		t.Errorf("first message: %v", first)
	}
	s.update(valueID, "multiply", 5)
	s.update(valueID, "divide", 0) // rejected: no change, no message
	s.update(valueID, "add", 1)
	for _, want := range []struct{ value, version float64 }{{10, 2}, {11, 3}} {
		ev := next(t, stream)
		d := data(t, ev)
		if ev.Type != "value" || d["value"] != want.value || d["version"] != want.version || ev.LastEventID == "" {
			t.Errorf("change: %s %v id %q, want value %v version %v", ev.Type, d, ev.LastEventID, want.value, want.version)
		}
	}
	if status, _, _ := s.do("GET", "/subscriptions/values/"+uuid.NewString(), ""); status != http.StatusNotFound {
		t.Errorf("unknown value: %d, want 404", status)
	}
}

func TestWait(t *testing.T) {
	s := start(t, t.TempDir(), subscriptions.Options{})
	status, header, body := s.do("POST", "/values?wait=10s", `{"value": 4}`)
	if status != http.StatusCreated || body["status"] != "succeeded" || body["value"] != 4.0 {
		t.Fatalf("POST ?wait: %d %v", status, body)
	}
	valueID := body["value_id"].(string)
	if header.Get("Location") != "/values/"+valueID {
		t.Errorf("Location = %q", header.Get("Location"))
	}
	// The outcome is applied to the view when ?wait answers.
	if status, _, v := s.do("GET", "/values/"+valueID, ""); status != http.StatusOK || v["value"] != 4.0 {
		t.Errorf("GET right after ?wait: %d %v", status, v)
	}

	status, _, body = s.do("PUT", "/values/"+valueID+"?wait=10s", `{"operation":"multiply","value":3}`)
	if status != http.StatusOK || body["status"] != "succeeded" || body["value"] != 12.0 {
		t.Errorf("PUT ?wait: %d %v", status, body)
	}
	status, header, body = s.do("PUT", "/values/"+valueID+"?wait=10s", `{"operation":"divide","value":0}`)
	if status != http.StatusUnprocessableEntity || body["status"] != "rejected" || body["reason"] != "division_by_zero" {
		t.Errorf("rejected PUT ?wait: %d %v", status, body)
	}
	if _, ok := body["value"]; ok {
		t.Errorf("rejected PUT ?wait: %v, want no value", body)
	}
	// Content-Location names the command, whose status is the same body.
	if status, _, got := s.do("GET", header.Get("Content-Location"), ""); status != http.StatusOK || !maps.Equal(got, body) {
		t.Errorf("GET Content-Location %q: %d %v, want 200 %v", header.Get("Content-Location"), status, got, body)
	}
	status, _, body = s.do("PUT", "/values/"+uuid.NewString()+"?wait=2500ms", `{"operation":"add","value":1}`)
	if status != http.StatusUnprocessableEntity || body["reason"] != "value_not_found" {
		t.Errorf("PUT ?wait on a missing value: %d %v", status, body)
	}
	for _, bad := range []string{"x", "-1s", "31s", "1h", "NaN"} {
		if status, _, _ := s.do("POST", "/values?wait="+bad, `{"value": 1}`); status != http.StatusBadRequest {
			t.Errorf("wait=%s: %d, want 400", bad, status)
		}
	}
	if status, _, body := s.do("POST", "/values?wait=0s", `{"value": 1}`); status != http.StatusAccepted {
		t.Errorf("wait=0s: %d %v, want 202", status, body)
	}
}

// The streams need the statuses: until they are rebuilt, GET /commands/{id}
// answers 503, and a stream does once it has waited ReadyWait.
func TestNotReadyYet(t *testing.T) {
	// A Hub whose Run has not caught up is not ready.
	h := subscriptions.New(subscriptions.Config{ViewReady: func() bool { return true }, Options: subscriptions.Options{ReadyWait: 50 * time.Millisecond}})
	if h.Ready() {
		t.Fatal("ready before reading the commands topic")
	}
	srv := newRouter(h)
	for _, path := range []string{"/commands/" + uuid.NewString(), "/subscriptions/events", "/subscriptions/values/" + uuid.NewString(),
		"/subscriptions/commands/" + uuid.NewString()} {
		rec := serveRecorded(srv, path)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s: %d, Retry-After %q; want 503 with Retry-After", path, rec.Code, rec.Header().Get("Retry-After"))
		}
	}
}

// Catch-ups take turns reading the log; each still gets every event.
func TestCatchUpsTakeTurns(t *testing.T) {
	s := start(t, t.TempDir(), subscriptions.Options{MaxCatchUps: 1})
	_, valueID := s.create(0)
	for range 5 {
		s.update(valueID, "add", 1)
	}
	s.waitVersion(valueID, 6)
	var streams []*ssetest.Stream
	for range 3 {
		streams = append(streams, s.dial("/subscriptions/events?from=0", ""))
	}
	for i, stream := range streams {
		for want := range 6 {
			if ev := next(t, stream); ev.LastEventID != strconv.Itoa(want) {
				t.Fatalf("stream %d: id %s, want %d", i, ev.LastEventID, want)
			}
		}
	}
}
