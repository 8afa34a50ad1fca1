package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests of slow, idle and too many clients (issue 13.5): each runs the
// binary with short timeouts or a small connection cap and talks to it over
// raw TCP, to see exactly when the server closes a connection.

// slack is what the tests allow beyond a timeout for the server to notice
// it and close the connection, on a busy 2-core machine.
const slack = 3 * time.Second

// rawConn is a TCP connection to the server written and read by hand, so
// that a test sees exactly what the server sends, and when it closes.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

// dial opens a raw connection to s, closed when the test ends.
func (s *server) dial() *rawConn {
	s.t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, r: bufio.NewReader(c)}
}

// Requests as written on the wire.
const (
	getHealthz = "GET /healthz HTTP/1.1\r\nHost: calc\r\n\r\n"
	getEvents  = "GET /subscriptions/events HTTP/1.1\r\nHost: calc\r\n\r\n"
	postValue  = "POST /values HTTP/1.1\r\nHost: calc\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"value\":1}"
)

// response reads the next answer's header; its body is left to read.
func (c *rawConn) response() (*http.Response, error) { return http.ReadResponse(c.r, nil) }

// roundTrip sends request and reads the answer's header, which must have
// status want. A stream's body is left to read; other bodies are read
// whole, so that the next answer can be read.
func (c *rawConn) roundTrip(t *testing.T, request string, want int) *http.Response {
	t.Helper()
	c.SetDeadline(time.Now().Add(deadline))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := c.response()
	if err != nil {
		t.Fatalf("%s: %v", strings.Fields(request)[:2], err)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s: %d, want %d", strings.Fields(request)[:2], resp.StatusCode, want)
	}
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		io.Copy(io.Discard, resp.Body)
	}
	return resp
}

// closedByServer reads c until the server closes it (io.EOF or a reset),
// discarding what it sends, and reports whether that happened before limit.
func closedByServer(c net.Conn, limit time.Time) error {
	c.SetReadDeadline(limit)
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("still open")
	}
	return nil // io.Copy returns nil at EOF; any other error is the server's reset
}

// TestSlowClientsAreCut: connections that send their headers or their body a
// byte at a time are closed once the read timeout has passed, however
// steadily they trickle.
func TestSlowClientsAreCut(t *testing.T) {
	const readTimeout = time.Second
	s := start(t, t.TempDir(), "-read-timeout", readTimeout.String())

	const perKind = 20
	kinds := []struct{ name, prefix string }{
		{"slow headers", "POST /values HTTP/1.1\r\nHost: calc\r\nX-Slow: "},
		{"slow body", "POST /values HTTP/1.1\r\nHost: calc\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"value\":"},
	}
	var wg sync.WaitGroup
	errs := make(chan error, perKind*len(kinds))
	for _, kind := range kinds {
		for range perKind {
			c := s.dial()
			wg.Go(func() {
				begin := time.Now()
				limit := begin.Add(readTimeout + slack)
				if _, err := io.WriteString(c, kind.prefix); err != nil {
					errs <- fmt.Errorf("%s: write the request's start: %w", kind.name, err)
					return
				}
				// One byte every 100 ms: far too slow for the read timeout,
				// but never silent for long.
				for time.Now().Before(limit) {
					if _, err := io.WriteString(c, " "); err != nil {
						return // closed by the server
					}
					if closedByServer(c, time.Now().Add(100*time.Millisecond)) == nil {
						return
					}
				}
				errs <- fmt.Errorf("%s: connection still open %s after it began", kind.name, time.Since(begin).Round(time.Millisecond))
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The server still serves everyone else.
	s.create(1)
}

// TestIdleConnectionsAreClosed: keep-alive connections that have had their
// answer and send nothing more are closed once the idle timeout has passed.
func TestIdleConnectionsAreClosed(t *testing.T) {
	const idleTimeout = time.Second
	s := start(t, t.TempDir(), "-idle-timeout", idleTimeout.String())

	const n = 200
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = s.dial()
		if resp := conns[i].roundTrip(t, getHealthz, http.StatusOK); resp.Close {
			t.Fatalf("connection %d: GET /healthz answered with Connection: close, want the connection kept alive", i)
		}
	}
	begin := time.Now()
	limit := begin.Add(idleTimeout + slack)
	var wg sync.WaitGroup
	open := make(chan int, n)
	for i, c := range conns {
		wg.Go(func() {
			if closedByServer(c, limit) != nil {
				open <- i
			}
		})
	}
	wg.Wait()
	close(open)
	if len(open) > 0 {
		t.Fatalf("%d of %d idle connections still open %s after their last answer (idle timeout %s)",
			len(open), n, time.Since(begin).Round(time.Millisecond), idleTimeout)
	}
	t.Logf("%d idle connections closed within %s", n, time.Since(begin).Round(time.Millisecond))
}

// openFiles counts the file descriptors of process pid.
func openFiles(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("cannot count the open files of the server: %v", err)
	}
	return len(fds)
}

// TestConnectionCap: with -max-conns 8 and 8 SSE streams open, the server
// accepts no other connection (its open files do not grow however many
// clients connect), and the next one is served as soon as a stream ends.
func TestConnectionCap(t *testing.T) {
	const maxConns = 8
	s := start(t, t.TempDir(), "-max-conns", fmt.Sprint(maxConns))
	pid := s.cmd.Process.Pid
	// The harness's clients keep the connection they waited for readiness
	// on: give it back, or it holds one of the slots.
	s.client.CloseIdleConnections()
	s.streams.CloseIdleConnections()

	streams := make([]*rawConn, maxConns)
	for i := range streams {
		streams[i] = s.dial()
		streams[i].roundTrip(t, getEvents, http.StatusOK)
	}
	atCap := openFiles(t, pid)

	// One more request, and a crowd of connections behind it.
	waiting := s.dial()
	if _, err := io.WriteString(waiting, getHealthz); err != nil {
		t.Fatal(err)
	}
	crowd := make([]*rawConn, 100)
	for i := range crowd {
		crowd[i] = s.dial()
	}
	// The cap is a negative: give the server a second to break it.
	waiting.SetReadDeadline(time.Now().Add(time.Second))
	if resp, err := waiting.response(); err == nil {
		t.Fatalf("a request beyond the cap of %d connections was answered %d", maxConns, resp.StatusCode)
	}
	if got := openFiles(t, pid); got > atCap {
		t.Fatalf("the server has %d open files with %d more clients connected, %d at the cap: it accepted beyond it", got, len(crowd)+1, atCap)
	}

	// A slot frees: the waiting request is answered.
	for _, c := range crowd {
		c.Close()
	}
	streams[0].Close()
	waiting.SetReadDeadline(time.Now().Add(deadline))
	resp, err := waiting.response()
	if err != nil {
		t.Fatalf("the waiting request after a stream ended: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the waiting request after a stream ended: %d, want 200", resp.StatusCode)
	}
}

// TestStreamsOutliveTheTimeouts: an SSE stream is not a slow request nor an
// idle connection: it stays open past both timeouts and still delivers.
func TestStreamsOutliveTheTimeouts(t *testing.T) {
	const timeout = 300 * time.Millisecond
	s := start(t, t.TempDir(), "-read-timeout", timeout.String(), "-idle-timeout", timeout.String())
	events := bufio.NewReader(s.dial().roundTrip(t, getEvents, http.StatusOK).Body)

	time.Sleep(4 * timeout) // the scenario: a subscriber with nothing to hear for a while
	_, valueID := s.create(7)
	for {
		line, err := events.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream ended before the event of value %s: %v", valueID, err)
		}
		if strings.HasPrefix(line, "data: ") && strings.Contains(line, valueID) {
			return
		}
	}
}
