package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"calculator/internal/await"
	"calculator/openapi"
	"calculator/openapi/openapitest"
)

// binary is the calculator built once for the whole package.
var binary string

// contract is the OpenAPI document that every request and response of the
// tests is held to (see checkedClient).
var contract *openapitest.Contract

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "calculator-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "calculator")
	build := exec.Command("go", "build", "-o", binary, "..")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build calculator:", err)
		os.Exit(1)
	}
	if contract, err = openapitest.Load(openapi.Document); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// deadline bounds every wait of the tests.
const deadline = 30 * time.Second

// server is one running calculator process.
type server struct {
	t       testing.TB
	cmd     *exec.Cmd
	URL     string
	dataDir string
	exited  chan struct{}
	exitErr error
	// client sends the test's requests, holding each exchange to the
	// OpenAPI document; streams has no overall timeout, for SSE.
	client, streams *http.Client

	mu   sync.Mutex
	logs []map[string]any // the JSON log lines it wrote
}

// start runs the binary on a free loopback port with dataDir and waits until
// /readyz answers 200.
func start(t testing.TB, dataDir string, args ...string) *server {
	t.Helper()
	s := launch(t, dataDir, args...)
	s.waitReady()
	return s
}

// launch runs the binary and waits until it listens.
func launch(t testing.TB, dataDir string, args ...string) *server {
	t.Helper()
	args = append([]string{"-addr", "127.0.0.1:0", "-data-dir", dataDir}, args...)
	cmd := exec.Command(binary, args...)
	cmd.Env = childEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, dataDir: dataDir, exited: make(chan struct{})}
	s.client, s.streams = checkedClient(t, deadline), checkedClient(t, 0)
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				line = map[string]any{"message": sc.Text()}
			}
			s.mu.Lock()
			s.logs = append(s.logs, line)
			s.mu.Unlock()
			if line["message"] == "listening" {
				listening <- line["addr"].(string)
			}
		}
		s.exitErr = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() { s.kill() })
	select {
	case addr := <-listening:
		s.URL = "http://" + addr
	case <-s.exited:
		t.Fatalf("calculator exited before listening: %v\n%s", s.exitErr, s.logText())
	case <-time.After(deadline):
		t.Fatalf("calculator did not listen within %s\n%s", deadline, s.logText())
	}
	return s
}

// childEnv is the tests' environment without the calculator's own
// variables: the KAFKA_BROKERS that the Kafka tests read must not turn the
// embedded-log tests into Kafka tests. Each test says what it wants with
// flags.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KAFKA_BROKERS=") || strings.HasPrefix(kv, "CALC_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (s *server) waitReady() {
	s.t.Helper()
	eventually(s.t, "readyz is 200", func() bool {
		resp, err := s.client.Get(s.URL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// waitCaughtUp waits until the processor has an outcome for every command
// in the commands log (readyz reports commands_behind 0).
func (s *server) waitCaughtUp() {
	s.t.Helper()
	eventually(s.t, "the processor has handled every command", func() bool {
		r := s.must("GET", "/readyz", "")
		proc, _ := r.Body["processor"].(map[string]any)
		return r.Status == http.StatusOK && proc["commands_behind"] == 0.0
	})
}

// kill ends the process with SIGKILL and waits for it.
func (s *server) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// stop sends SIGTERM and returns how long the process took to exit and its
// exit error (nil for status 0).
func (s *server) stop() (time.Duration, error) {
	s.t.Helper()
	begin := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(deadline):
		s.t.Fatalf("calculator did not exit within %s of SIGTERM", deadline)
	}
	return time.Since(begin), s.exitErr
}

// logText is everything the process logged, for failure messages.
func (s *server) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, l := range s.logs {
		j, _ := json.Marshal(l)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// logged returns the log lines with the given message.
func (s *server) logged(message string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range s.logs {
		if l["message"] == message {
			out = append(out, l)
		}
	}
	return out
}

// response is a decoded HTTP answer.
type response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

// checkedClient returns a client whose every request and response (and
// every message of an event stream, as it is read) is checked against the
// OpenAPI document: a violation fails the test, even where the test
// tolerates transport errors. timeout 0 means none.
func checkedClient(t testing.TB, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		// A transport of its own: connections kept alive by one server's
		// client are not another's, and CloseIdleConnections reaches them.
		Transport: contract.Transport(http.DefaultTransport.(*http.Transport).Clone(), func(err error) {
			t.Errorf("OpenAPI contract violated: %v", err)
		}),
	}
}

func (s *server) do(method, path, contentType, body string) (response, error) {
	return s.doContext(context.Background(), method, path, contentType, body)
}

// doContext is do with a context (for example openapitest.Departing).
func (s *server) doContext(ctx context.Context, method, path, contentType, body string) (response, error) {
	header := http.Header{}
	if contentType != "" {
		header.Set("Content-Type", contentType)
	}
	return s.doHeaderContext(ctx, method, path, body, header)
}

// doHeader sends a request with the given header.
func (s *server) doHeader(method, path, body string, header http.Header) (response, error) {
	return s.doHeaderContext(context.Background(), method, path, body, header)
}

func (s *server) doHeaderContext(ctx context.Context, method, path, body string, header http.Header) (response, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	req.Header = header
	resp, err := s.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	r := response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			return r, fmt.Errorf("%s %s: body is not a JSON object: %q", method, path, raw)
		}
	}
	return r, nil
}

// must is do for requests that must succeed at the HTTP level.
func (s *server) must(method, path, body string) response {
	s.t.Helper()
	r, err := s.do(method, path, "application/json", body)
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// create and update send value as fmt's %v writes it: a number, or a
// string that holds a JSON number's text (for numbers beyond a float64).
func (s *server) create(value any) (commandID, valueID string) {
	s.t.Helper()
	r := s.must("POST", "/values", fmt.Sprintf(`{"value":%v}`, value))
	if r.Status != http.StatusAccepted {
		s.t.Fatalf("POST /values = %d %s", r.Status, r.Raw)
	}
	return r.Body["command_id"].(string), r.Body["value_id"].(string)
}

func (s *server) update(valueID, op string, value any) string {
	s.t.Helper()
	r := s.must("PUT", "/values/"+valueID, fmt.Sprintf(`{"operation":%q,"value":%v}`, op, value))
	if r.Status != http.StatusAccepted {
		s.t.Fatalf("PUT /values/%s = %d %s", valueID, r.Status, r.Raw)
	}
	return r.Body["command_id"].(string)
}

// waitValue polls GET /values/{id} until it reaches version and returns it.
func (s *server) waitValue(valueID string, version float64) map[string]any {
	s.t.Helper()
	var last response
	eventually(s.t, fmt.Sprintf("value %s reaches version %v (last: %d %s)", valueID, version, last.Status, last.Raw), func() bool {
		last = s.must("GET", "/values/"+valueID, "")
		return last.Status == http.StatusOK && last.Body["version"].(float64) >= version
	})
	return last.Body
}

// eventually polls cond every few milliseconds until it holds or the
// deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, deadline, what, cond)
}

// eventuallyWithin is eventually with its own deadline.
func eventuallyWithin(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	await.Until(t, within, what, cond)
}
