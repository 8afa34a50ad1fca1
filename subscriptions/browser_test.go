package subscriptions_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"calculator/internal/browsertest"
	"calculator/internal/testlog"
	"calculator/subscriptions"
)

// page runs in the browser. It reports to the test (POST /report, same
// origin) what its EventSources saw: a finished command's stream, and the
// events stream from position 0, which lives through a server restart.
const page = `<!doctype html>
<title>calculator EventSource test</title>
<script>
const q = new URLSearchParams(location.search);
const app = q.get('app');
const report = body => fetch('/report', {method: 'POST', body: JSON.stringify(body)});

const command = {types: [], reconnects: 0};
const cs = new EventSource(app + '/subscriptions/commands/' + q.get('command'));
for (const t of ['accepted', 'succeeded', 'rejected', 'applied']) {
  cs.addEventListener(t, e => { command.types.push(t); if (t === 'applied') command.applied = JSON.parse(e.data); });
}
cs.onerror = () => {
  if (cs.readyState === EventSource.CLOSED) { report({kind: 'command', ...command}); } else { command.reconnects++; }
};

const events = {ids: [], types: [], opens: 0};
const es = new EventSource(app + '/subscriptions/events?from=0');
es.onopen = () => { events.opens++; };
for (const t of ['ValueCreated', 'ValueUpdated', 'CommandRejected']) {
  es.addEventListener(t, e => {
    events.ids.push(e.lastEventId);
    events.types.push(e.type);
    report({kind: 'events', ...events});
  });
}
</script>`

type browserReport struct {
	Kind       string         `json:"kind"`
	Types      []string       `json:"types"`
	IDs        []string       `json:"ids"`
	Opens      int            `json:"opens"`
	Reconnects int            `json:"reconnects"`
	Applied    map[string]any `json:"applied"`
}

// The browser's EventSource is the reference client: it reads a command's
// stream to the end and stops at the 204, and it resumes the events stream
// after a server restart with Last-Event-ID, without a gap or a repeat.
func TestBrowserEventSource(t *testing.T) {
	browser := browsertest.Chromium(t, "the EventSource test")
	dir := t.TempDir()
	opt := subscriptions.Options{Retry: 100 * time.Millisecond}
	s := start(t, dir, opt)
	commandID, valueID := s.create(2)
	for range 3 {
		s.update(valueID, "add", 1)
	}
	s.waitVersion(valueID, 4)

	reports := make(chan browserReport, 100)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /page.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})
	mux.HandleFunc("POST /report", func(w http.ResponseWriter, r *http.Request) {
		var rep browserReport
		if err := json.NewDecoder(r.Body).Decode(&rep); err == nil {
			reports <- rep
		}
	})
	pages := httptest.NewServer(mux)
	defer pages.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-web-security", // the page and the API are on two loopback ports
		"--user-data-dir="+t.TempDir(),
		pages.URL+"/page.html?app="+s.URL+"&command="+commandID)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its helpers go with it
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stderr testlog.Buffer // written by exec's copying goroutine, read when the test gives up
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}()

	var command, events browserReport
	await := func(what string, done func() bool) {
		t.Helper()
		timeout := time.After(deadline)
		for !done() {
			select {
			case rep := <-reports:
				switch {
				case rep.Kind == "command":
					command = rep
				case rep.Kind == "events" && len(rep.IDs) > len(events.IDs):
					events = rep
				}
			case <-timeout:
				t.Fatalf("gave up waiting for %s; the browser said: command %+v, events %+v; stderr:\n%s", what, command, events, stderr.String())
			}
		}
	}
	await("the command stream and the first events", func() bool { return command.Kind != "" && len(events.IDs) >= 4 })
	if want := []string{"accepted", "succeeded", "applied"}; !slices.Equal(command.Types, want) {
		t.Errorf("command stream: %v, want %v", command.Types, want)
	}
	if command.Applied["value"] != 2.0 {
		t.Errorf("applied: %v, want the value 2", command.Applied)
	}

	// Restart the server on the same address; the browser reconnects.
	addr := strings.TrimPrefix(s.URL, "http://")
	s.stop()
	s = startAt(t, dir, addr, opt)
	s.update(valueID, "multiply", 10)
	s.update(valueID, "divide", 0)
	await("the events after the restart", func() bool { return len(events.IDs) >= 6 })

	var want []string
	for i := range 6 {
		want = append(want, strconv.Itoa(i))
	}
	if !slices.Equal(events.IDs, want) {
		t.Errorf("event ids %v, want %v (no gap, no repeat across the restart)", events.IDs, want)
	}
	t.Logf("browser: command %+v; events %+v", command, events)
	if events.Opens < 2 {
		t.Errorf("the EventSource opened %d times, want a reconnection", events.Opens)
	}
	if got := events.Types[len(events.Types)-1]; got != "CommandRejected" {
		t.Errorf("last event %s, want CommandRejected", got)
	}
}
