package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/eventlog/filelog"
	"calculator/eventlog/logtest"
	"calculator/openapi/openapitest"
)

// TestWalkthrough is the README's curl walk-through, then a graceful restart
// and a kill -9 restart that must both give back the same state.
func TestWalkthrough(t *testing.T) {
	dir := t.TempDir()
	walkthrough(t, 5*time.Second, func() *server { return start(t, dir) })
}

// walkthrough is the README's curl walk-through on a server from start,
// then a graceful restart (within maxShutdown, when not 0) and a kill -9
// restart, each on a server from start again, which must give back the
// same state: the view's and the processor's.
func walkthrough(t *testing.T, maxShutdown time.Duration, start func() *server) {
	t.Helper()
	s := start()
	_, id := s.create(2)
	s.update(id, "ADD", 2)
	s.update(id, "multiply", 3) // operations are case-insensitive
	want := map[string]any{"value_id": id, "value": 12.0, "version": 3.0}
	if got := s.waitValue(id, 3); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("GET after the walk-through = %v, want %v", got, want)
	}

	took, err := s.stop()
	if err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, s.logText())
	}
	t.Logf("graceful shutdown took %s", took)
	if maxShutdown > 0 && took > maxShutdown {
		t.Errorf("graceful shutdown took %s, want %s at most", took, maxShutdown)
	}

	s = start()
	if got := s.must("GET", "/values/"+id, ""); fmt.Sprint(got.Body) != fmt.Sprint(want) {
		t.Fatalf("GET after restart = %v, want %v", got.Body, want)
	}
	s.kill()

	s = start()
	if got := s.must("GET", "/values/"+id, ""); fmt.Sprint(got.Body) != fmt.Sprint(want) {
		t.Fatalf("GET after kill -9 and restart = %v, want %v", got.Body, want)
	}
	// The processor's state came back too: creating the value again is a
	// rejection, and updates continue from 12.
	s.update(id, "SUBTRACT", 2)
	if got := s.waitValue(id, 4); got["value"] != 10.0 {
		t.Fatalf("after SUBTRACT 2: %v, want value 10", got)
	}
}

func TestAcceptedAnswer(t *testing.T) {
	s := start(t, t.TempDir())
	r := s.must("POST", "/values", `{"value": 3}`)
	if r.Status != http.StatusAccepted || r.Body["status"] != "accepted" {
		t.Fatalf("POST = %d %s", r.Status, r.Raw)
	}
	commandID, valueID := r.Body["command_id"].(string), r.Body["value_id"].(string)
	for _, id := range []string{commandID, valueID} {
		if _, err := uuid.Parse(id); err != nil {
			t.Errorf("%q is not a UUID", id)
		}
	}
	if loc := r.Header.Get("Location"); loc != "/commands/"+commandID {
		t.Errorf("Location = %q, want /commands/%s", loc, commandID)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	// curl -d without -H sends application/x-www-form-urlencoded: accepted as
	// JSON, a leniency the OpenAPI document does not promise.
	curl := openapitest.Departing(context.Background(), "curl -d's default Content-Type, read as JSON")
	r, err := s.doContext(curl, "POST", "/values", "application/x-www-form-urlencoded", `{"value": 3}`)
	if err != nil || r.Status != http.StatusAccepted {
		t.Fatalf("POST with curl's default content type = %d %s %v", r.Status, r.Raw, err)
	}
}

// TestRejections checks that the processor's rejections reach the view as
// no change, and that the value goes on afterwards.
func TestRejections(t *testing.T) {
	s := start(t, t.TempDir())
	_, id := s.create(8)
	s.update(id, "DIVIDE", 0)            // division_by_zero
	s.update(id, "MULTIPLY", "2e6144")   // overflow: 1.6e6145
	s.update(uuid.NewString(), "ADD", 1) // value_not_found
	s.update(id, "DIVIDE", 2)
	if got := s.waitValue(id, 2); got["value"] != 4.0 || got["version"] != 2.0 {
		t.Fatalf("after two rejections and DIVIDE 2: %v, want value 4 version 2", got)
	}
}

func TestBadRequests(t *testing.T) {
	s := start(t, t.TempDir())
	_, id := s.create(1)
	big := `{"value": 1, "pad": "` + strings.Repeat("x", 70<<10) + `"}`
	tests := []struct {
		name, method, path, contentType, body string
		status                                int
		detail                                string
	}{
		{"malformed JSON", "POST", "/values", "application/json", `{"value": `, 400, "malformed JSON"},
		{"empty body", "POST", "/values", "application/json", ``, 400, "empty"},
		{"unknown field", "POST", "/values", "application/json", `{"value": 1, "colour": "red"}`, 400, "colour"},
		{"missing value", "POST", "/values", "application/json", `{}`, 400, "required"},
		{"null value", "POST", "/values", "application/json", `{"value": null}`, 400, "required"},
		{"string value", "POST", "/values", "application/json", `{"value": "3"}`, 400, "number"},
		{"value beyond the range", "POST", "/values", "application/json", `{"value": 1e6145}`, 400, "too large"},
		{"value beyond the precision", "POST", "/values", "application/json", `{"value": 0.12345678901234567890123456789012345}`, 400, "34 significant digits"},
		{"two objects", "POST", "/values", "application/json", `{"value": 1}{"value": 2}`, 400, "after the JSON"},
		{"array", "POST", "/values", "application/json", `[1]`, 400, "JSON object"},
		{"body over 64 KiB", "POST", "/values", "application/json", big, 413, "larger than"},
		{"wrong content type", "POST", "/values", "text/plain", `{"value": 1}`, 415, "application/json"},
		{"unknown operation", "PUT", "/values/" + id, "application/json", `{"operation": "POW", "value": 2}`, 400, "unknown operation"},
		{"missing operation", "PUT", "/values/" + id, "application/json", `{"value": 2}`, 400, "required"},
		{"invalid value id", "PUT", "/values/not-a-uuid", "application/json", `{"operation": "ADD", "value": 2}`, 400, "not a UUID"},
		{"member in another case", "POST", "/values", "application/json", `{"Value": 1}`, 400, `did you mean "value"?`},
		{"duplicate member", "POST", "/values", "application/json", `{"value": 1, "value": 2}`, 400, `"value" appears twice`},
		{"braced id", "PUT", "/values/{" + id + "}", "application/json", `{"operation": "ADD", "value": 2}`, 400, "canonical form"},
		{"URN id", "GET", "/values/urn:uuid:" + id, "", ``, 400, "canonical form"},
		{"id without dashes", "GET", "/values/" + strings.ReplaceAll(id, "-", ""), "", ``, 400, "canonical form"},
		{"query invalid id", "GET", "/values/42", "", ``, 400, "not a UUID"},
		{"query unknown id", "GET", "/values/" + uuid.NewString(), "", ``, 404, "does not exist"},
		{"unknown route", "GET", "/nothing", "", ``, 404, "no route"},
		{"wrong method", "DELETE", "/values/" + id, "", ``, 405, "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := s.do(tt.method, tt.path, tt.contentType, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != tt.status {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, r.Status, r.Raw, tt.status)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q, want application/problem+json", ct)
			}
			if r.Body["status"] != float64(tt.status) || r.Body["title"] == "" || r.Body["type"] == "" {
				t.Errorf("problem body %s lacks type, title or status", r.Raw)
			}
			if detail, _ := r.Body["detail"].(string); !strings.Contains(detail, tt.detail) {
				t.Errorf("detail %q does not mention %q", detail, tt.detail)
			}
		})
	}
	// None of them reached the log: only the one create has an outcome.
	if got := s.waitValue(id, 1); got["version"] != 1.0 {
		t.Fatalf("value changed by a bad request: %v", got)
	}
	// An id in upper case is the same id; answers spell it in lower case.
	upper := strings.ToUpper(id)
	if r := s.must("PUT", "/values/"+upper, `{"operation":"ADD","value":1}`); r.Status != http.StatusAccepted || r.Body["value_id"] != id {
		t.Errorf("PUT /values/%s = %d %s, want 202 with the value id %s", upper, r.Status, r.Raw, id)
	}
	if r := s.must("GET", "/values/"+upper, ""); r.Status != http.StatusOK || r.Body["value_id"] != id {
		t.Errorf("GET /values/%s = %d %s, want 200 with the value id %s", upper, r.Status, r.Raw, id)
	}
}

// TestErrorsOfTheHTTPServer checks the answers to requests that are wrong
// below the API. A header over the API's limit gets a problem; what net/http
// refuses before any handler runs (a header past the server's own limit, a
// missing Host, an HTTP version it does not speak) it answers itself, in
// text/plain: the server has no hook to shape those.
func TestErrorsOfTheHTTPServer(t *testing.T) {
	s := start(t, t.TempDir())
	big := func(n int) http.Header { return http.Header{"Cookie": {strings.Repeat("c", n)}} }
	r, err := s.doHeader("GET", "/values", "", big(40<<10))
	if err != nil || r.Status != http.StatusRequestHeaderFieldsTooLarge || r.Header.Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(r.Body["detail"].(string), "at most 32768") {
		t.Errorf("a 40 KiB header = %d %q %s (%v), want a 431 problem", r.Status, r.Header.Get("Content-Type"), r.Raw, err)
	}
	for _, tt := range []struct {
		name, request string
		want          string
	}{
		{"a header past the server's limit", "GET /values HTTP/1.1\r\nHost: x\r\nCookie: " + strings.Repeat("c", 100<<10) + "\r\n\r\n", "HTTP/1.1 431 "},
		{"no Host", "GET /values HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request: missing required Host header"},
		{"HTTP/2.0 without an upgrade", "GET /values HTTP/2.0\r\nHost: x\r\n\r\n", "HTTP/1.1 505 "},
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(deadline))
		conn.Write([]byte(tt.request))
		answer, _ := io.ReadAll(conn)
		conn.Close()
		if !strings.HasPrefix(string(answer), tt.want) || !strings.Contains(string(answer), "Content-Type: text/plain") {
			t.Errorf("%s: %.120q, want net/http's own %q in text/plain", tt.name, answer, tt.want)
		}
	}
}

func TestSecondInstanceOnTheSameDataDirFails(t *testing.T) {
	dir := t.TempDir()
	start(t, dir)
	secondInstanceFails(t, dir, "in use by another process")
}

// secondInstanceFails starts the binary on dir, which a running instance
// uses, with args, and checks that it exits with an error that says want.
func secondInstanceFails(t *testing.T, dir, want string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), deadline) // one that starts would serve until killed
	defer cancel()
	second := exec.CommandContext(ctx, binary, append([]string{"-addr", "127.0.0.1:0", "-data-dir", dir}, args...)...)
	second.Env = childEnv()
	out, err := second.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("second instance: err %v, want a non-zero exit\n%s", err, out)
	}
	if !strings.Contains(string(out), want) {
		t.Fatalf("second instance said %s, want a clear 'in use' message (%q)", out, want)
	}
}

// readLog opens a stopped server's data directory and returns every record
// of a topic.
func readLog(t *testing.T, dir, topic string) []eventlog.Record {
	t.Helper()
	l, err := filelog.Open(dir, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return logtest.ReadAll(t, l, topic)
}

// TestUndecodableAndRepeatedCommands writes, beside the product, records it
// must survive: garbage, a valid command in the wire format written by
// another client, and that same command twice.
func TestUndecodableAndRepeatedCommands(t *testing.T) {
	dir := t.TempDir()
	l, err := filelog.Open(dir, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	valueID := uuid.New()
	create := domain.Command{ID: uuid.New(), Action: domain.CreateValue, ValueID: valueID, Value: domain.DecimalFromInt(5), Timestamp: time.Now()}
	add := domain.Command{ID: uuid.New(), Action: domain.UpdateValue, ValueID: valueID, Operation: domain.Add, Value: domain.DecimalFromInt(1), Timestamp: time.Now()}
	key := []byte(valueID.String())
	err = l.Append(context.Background(), "commands",
		eventlog.Message{Key: key, Value: []byte("this is not JSON")},
		eventlog.Message{Key: key, Value: create.AppendJSON(nil)},
		eventlog.Message{Key: key, Value: []byte(`{"id":"` + uuid.NewString() + `","action":"UpdateValue","data":{"value-id":"` + valueID.String() + `","operation":"POW","value":2}}`)},
		eventlog.Message{Key: key, Value: add.AppendJSON(nil)},
		eventlog.Message{Key: key, Value: add.AppendJSON(nil)}, // the same command id again
	)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()

	s := start(t, dir)
	if got := s.waitValue(valueID.String(), 2); got["value"] != 6.0 || got["version"] != 2.0 {
		t.Fatalf("value = %v, want 6 at version 2 (the repeated ADD applied once)", got)
	}
	skipped := s.logged("skipping undecodable command")
	if len(skipped) != 2 {
		t.Fatalf("logged %d undecodable commands, want 2\n%s", len(skipped), s.logText())
	}
	if skipped[0]["offset"] != 0.0 || skipped[1]["offset"] != 2.0 {
		t.Errorf("undecodable commands logged at offsets %v and %v, want 0 and 2", skipped[0]["offset"], skipped[1]["offset"])
	}
	// Still alive and serving.
	_, id := s.create(1)
	s.waitValue(id, 1)
	s.waitCaughtUp()
	s.stop()
	checkExactlyOnce(t, dir, nil)
}

// checkExactlyOnce reads a stopped server's logs and checks SPEC §5.1–§5.2:
// every acknowledged command is in the commands log, and every decodable
// command id in the commands log has exactly one outcome in the events log.
func checkExactlyOnce(t *testing.T, dir string, acknowledged map[string]bool) {
	t.Helper()
	commands, outcomes := checkOutcomes(t, valuesOf(readLog(t, dir, "commands")), valuesOf(readLog(t, dir, "events")), acknowledged)
	t.Logf("%d acknowledged, %d commands in the log, %d outcomes", len(acknowledged), commands, outcomes)
}

// checkOutcomes checks SPEC §5.1–§5.2 on the record values of a commands log
// and an events log, whatever the backend: every acknowledged command is in
// the commands log, and every decodable command id there has exactly one
// outcome. It returns how many commands and outcomes it saw.
func checkOutcomes(t *testing.T, commandRecords, eventRecords [][]byte, acknowledged map[string]bool) (commands, outcomes int) {
	t.Helper()
	commandIDs := map[string]bool{}
	for _, v := range commandRecords {
		if c, err := domain.DecodeCommand(v); err == nil {
			commandIDs[c.ID.String()] = true
		}
	}
	outcomesOf := map[string]int{}
	for i, v := range eventRecords {
		e, err := domain.DecodeEvent(v)
		if err != nil {
			t.Fatalf("the events log holds an undecodable record (#%d): %v", i, err)
		}
		outcomesOf[e.ParentID.String()]++
	}
	for id := range acknowledged {
		if !commandIDs[id] {
			t.Errorf("acknowledged command %s is not in the commands log", id)
		}
	}
	for id := range commandIDs {
		if n := outcomesOf[id]; n != 1 {
			t.Errorf("command %s has %d outcomes, want exactly 1", id, n)
		}
	}
	for id, n := range outcomesOf {
		if !commandIDs[id] {
			t.Errorf("outcome for unknown command %s (%d times)", id, n)
		}
	}
	return len(commandIDs), len(outcomesOf)
}

// TestCrashUnderLoad kills the real binary with SIGKILL several times while
// clients send commands concurrently. After each restart nothing
// acknowledged is lost, and at the end every command has exactly one outcome.
func TestCrashUnderLoad(t *testing.T) {
	const rounds, clients, acksPerRound = 4, 16, 300
	dir := t.TempDir()
	var (
		mu           sync.Mutex
		acknowledged = map[string]bool{}
		values       []string
	)
	for round := range rounds {
		s := start(t, dir)
		// Ready means replayed; the commands accepted just before the
		// crash may still wait for their outcome. Then everything
		// acknowledged before the crash is there.
		s.waitCaughtUp()
		mu.Lock()
		for _, id := range values {
			// The view follows the processor's last events a moment later.
			eventually(t, fmt.Sprintf("round %d: value %s, acknowledged before the crash, is in the view", round, id), func() bool {
				return s.must("GET", "/values/"+id, "").Status == http.StatusOK
			})
		}
		mu.Unlock()

		ctx, cancel := context.WithCancel(context.Background())
		var acks atomic.Int64
		var wg sync.WaitGroup
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					var r response
					var err error
					mu.Lock()
					update := len(values) > 0 && i%4 != 0
					target := ""
					if update {
						target = values[(c*31+i)%len(values)]
					}
					mu.Unlock()
					if update {
						r, err = s.do("PUT", "/values/"+target, "application/json", `{"operation":"ADD","value":1}`)
					} else {
						r, err = s.do("POST", "/values", "application/json", `{"value":1}`)
					}
					if err != nil || r.Status != http.StatusAccepted {
						continue // the process died under us: not acknowledged
					}
					mu.Lock()
					acknowledged[r.Body["command_id"].(string)] = true
					if !update {
						values = append(values, r.Body["value_id"].(string))
					}
					mu.Unlock()
					acks.Add(1)
				}
			}()
		}
		eventually(t, fmt.Sprintf("round %d: %d commands acknowledged", round, acksPerRound), func() bool {
			return acks.Load() >= acksPerRound
		})
		s.kill()
		cancel()
		wg.Wait()
	}
	s := start(t, dir)
	s.waitCaughtUp()
	for _, id := range values {
		eventually(t, "value "+id+", acknowledged before the last crash, is in the view", func() bool {
			return s.must("GET", "/values/"+id, "").Status == http.StatusOK
		})
	}
	s.stop()
	checkExactlyOnce(t, dir, acknowledged)
}

func TestAuthToken(t *testing.T) {
	s := start(t, t.TempDir(), "-auth-token", "s3cret")
	tests := []struct {
		name, header string
		want         int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized},
		{"right token", "Bearer s3cret", http.StatusAccepted},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("POST", s.URL+"/values", strings.NewReader(`{"value":1}`))
		req.Header.Set("Content-Type", "application/json")
		if tt.header != "" {
			req.Header.Set("Authorization", tt.header)
		}
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
	// Health and readiness stay open for probes.
	if r := s.must("GET", "/readyz", ""); r.Status != http.StatusOK {
		t.Errorf("readyz with auth on = %d", r.Status)
	}
}
