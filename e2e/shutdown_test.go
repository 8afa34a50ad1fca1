package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// TestShutdownAnswersWhatItReceived (issue 13.7): clients send POST after
// POST on keep-alive connections while SIGTERM arrives. Every request that
// reached the server gets a whole answer, 202 or 503, never a reset or a
// closed connection; a client only fails to connect once the server has
// stopped accepting. The process exits 0, and after a restart every 202 is
// in the commands log with exactly one outcome.
func TestShutdownAnswersWhatItReceived(t *testing.T) {
	const clients, beforeSignal = 32, 500
	dir := t.TempDir()
	s := start(t, dir)
	transport := &http.Transport{MaxIdleConnsPerHost: clients}
	defer transport.CloseIdleConnections()
	httpClient := &http.Client{Transport: transport, Timeout: deadline}

	var (
		answered     atomic.Int64
		mu           sync.Mutex
		acknowledged = map[string]bool{}
		unavailable  int
		failures     []string
		wg           sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, fmt.Sprintf(format, args...))
	}
	for range clients {
		wg.Go(func() {
			for {
				var wrote, reused bool
				ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
					GotConn:      func(i httptrace.GotConnInfo) { reused = i.Reused },
					WroteRequest: func(i httptrace.WroteRequestInfo) { wrote = i.Err == nil },
				})
				req, err := http.NewRequestWithContext(ctx, "POST", s.URL+"/values", strings.NewReader(`{"value":1}`))
				if err != nil {
					fail("%v", err)
					return
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := httpClient.Do(req)
				if err != nil {
					if wrote {
						fail("a request sent on a %s connection got no answer: %v", map[bool]string{true: "kept-alive", false: "new"}[reused], err)
					}
					return // refused: the server no longer accepts; this client is done
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					fail("an answer %d was cut: %v", resp.StatusCode, err)
					return
				}
				switch resp.StatusCode {
				case http.StatusAccepted:
					var a struct {
						CommandID string `json:"command_id"`
					}
					if err := json.Unmarshal(body, &a); err != nil || a.CommandID == "" {
						fail("202 with body %q", body)
						return
					}
					mu.Lock()
					acknowledged[a.CommandID] = true
					mu.Unlock()
				case http.StatusServiceUnavailable:
					mu.Lock()
					unavailable++
					mu.Unlock()
				default:
					fail("answer %d %s, want 202 or 503", resp.StatusCode, body)
					return
				}
				answered.Add(1)
			}
		})
	}
	eventually(t, fmt.Sprintf("the clients have had %d answers", beforeSignal), func() bool { return answered.Load() >= beforeSignal })
	took, err := s.stop()
	wg.Wait()
	if err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	t.Logf("SIGTERM after %d answers; shutdown took %s; %d answers in all: %d accepted, %d unavailable",
		beforeSignal, took, answered.Load(), len(acknowledged), unavailable)
	for i, f := range failures {
		if i == 10 {
			t.Errorf("… and %d more", len(failures)-i)
			break
		}
		t.Error(f)
	}
	if t.Failed() {
		t.FailNow()
	}

	s = start(t, dir)
	s.waitCaughtUp()
	if _, err := s.stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	checkExactlyOnce(t, dir, acknowledged)
}

// TestShutdownAnswersRequestsOnIdleConnections: keep-alive connections that
// have had an answer and sat idle each send one more POST just after the
// server began to shut down (it logged "shutting down"): a request that was
// on its way as SIGTERM came. Each gets its 202, on an answer that closes the
// connection, rather than the reset of an idle connection closed at once.
func TestShutdownAnswersRequestsOnIdleConnections(t *testing.T) {
	const n = 50
	s := start(t, t.TempDir())
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = s.dial()
		if resp := conns[i].roundTrip(t, postValue, http.StatusAccepted); resp.Close {
			t.Fatalf("connection %d: the first POST answered with Connection: close, want the connection kept alive", i)
		}
	}

	s.cmd.Process.Signal(syscall.SIGTERM)
	eventually(t, "the server logs that it is shutting down", func() bool { return len(s.logged("shutting down")) > 0 })
	for i, c := range conns {
		if _, err := io.WriteString(c, postValue); err != nil {
			t.Errorf("connection %d: cannot send a POST during the shutdown: %v", i, err)
		}
	}
	for i := range conns {
		resp, err := conns[i].response()
		if err != nil {
			t.Errorf("connection %d: the POST sent during the shutdown got no answer: %v", i, err)
			continue
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("connection %d: the POST sent during the shutdown got %d, want 202 or 503", i, resp.StatusCode)
		}
		if !resp.Close {
			t.Errorf("connection %d: the answer during shutdown did not say Connection: close", i)
		}
	}
	if took, err := s.stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v (after %s)", err, took)
	}
}
