package subscriptions_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"calculator/internal/ssetest"
	"calculator/subscriptions"
)

// stall opens n event streams over raw TCP connections that never read,
// with small receive buffers, so that the server's writes to them soon
// block. The connections close with the test.
func stall(t testing.TB, url string, n int) []net.Conn {
	t.Helper()
	host := strings.TrimPrefix(url, "http://")
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return err
	}}
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := dialer.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, "GET /subscriptions/events HTTP/1.1\r\nHost: "+host+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	return conns
}

// load sends n PUT add 1 to the value from several clients at once, and
// returns once all are accepted.
func load(t testing.TB, url, valueID string, n int) {
	t.Helper()
	const workers = 8
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				resp, err := client.Do(mustRequest("PUT", url+"/values/"+valueID, `{"operation":"add","value":1}`))
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					errs <- fmt.Errorf("PUT: %s", resp.Status)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func mustRequest(method, url, body string) *http.Request {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

// waitValue polls until the value has the given version.
func (s *server) waitVersion(valueID string, version float64) map[string]any {
	s.t.Helper()
	var body map[string]any
	eventually(s.t, fmt.Sprintf("value %s has version %v", valueID, version), func() bool {
		_, _, body = s.do("GET", "/values/"+valueID, "")
		return body["version"] == version
	})
	return body
}

// Subscribers that never read do not hold up the processor or the view:
// every command is applied, the stalled subscribers are disconnected, and a
// subscriber that reads gets every event exactly once (resuming with
// Last-Event-ID if it too is ever dropped).
func TestStalledSubscribersDoNotSlowCommands(t *testing.T) {
	const stalled, commands = 50, 2000
	s := start(t, t.TempDir(), subscriptions.Options{Buffer: 256, WriteTimeout: 500 * time.Millisecond, SendBuffer: 8 << 10})
	hub := s.Subscriptions()
	_, valueID := s.create(0)
	s.waitVersion(valueID, 1)

	// A reader that keeps up, from the first event.
	reader := make(chan error, 1)
	var got int
	var reconnects int
	go func() {
		reader <- func() error {
			last := ""
			for got < commands+1 {
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				stream, err := ssetest.Dial(ctx, nil, s.URL+"/subscriptions/events?from=0", last)
				if err != nil {
					cancel()
					return err
				}
				for got < commands+1 {
					ev, err := stream.Next()
					if err != nil {
						break // dropped: resume from the last id
					}
					if ev.LastEventID != strconv.Itoa(got) {
						cancel()
						return fmt.Errorf("event id %s, want %d", ev.LastEventID, got)
					}
					got++
					last = ev.LastEventID
				}
				stream.Close()
				cancel()
				if got < commands+1 {
					reconnects++
				}
			}
			return nil
		}()
	}()

	stall(t, s.URL, stalled)
	eventually(t, "every subscriber is registered", func() bool { return hub.Stats().Subscribers >= stalled+1 })

	began := time.Now()
	load(t, s.URL, valueID, commands)
	s.waitVersion(valueID, commands+1)
	took := time.Since(began)
	t.Logf("%d commands with %d stalled subscribers: %v (%.0f commands/s)", commands, stalled, took, commands/took.Seconds())

	if err := <-reader; err != nil {
		t.Fatalf("the reading subscriber: %v", err)
	}
	t.Logf("the reading subscriber got %d events, reconnecting %d times", got, reconnects)
	eventually(t, "the stalled subscribers are dropped", func() bool { return hub.Stats().Dropped >= stalled })
	eventually(t, "their streams have ended", func() bool { return hub.Stats().Subscribers == 0 })
}

// BenchmarkCommandsWithStalledSubscribers measures command throughput (sent
// and applied to the view) with subscribers that never read:
//
//   - none: no subscriber, the baseline;
//   - dropped: 200 stalled subscribers with the default options; the Hub
//     writes to them until their sockets are full, then drops them;
//   - blocked: 200 stalled subscribers whose sockets were filled before the
//     timing starts and which are never dropped (a huge Buffer): the cost of
//     subscribers that are stuck.
//
// Run it with -benchtime 10000x for a figure.
func BenchmarkCommandsWithStalledSubscribers(b *testing.B) {
	cases := []struct {
		name    string
		stalled int
		opt     subscriptions.Options
		warmUp  int
	}{
		{"none", 0, subscriptions.Options{}, 0},
		{"dropped", 200, subscriptions.Options{}, 0},
		{"blocked", 200, subscriptions.Options{Buffer: 1 << 30, WriteTimeout: time.Hour}, 3000},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s := start(b, b.TempDir(), c.opt)
			_, valueID := s.create(0)
			s.waitVersion(valueID, 1)
			stall(b, s.URL, c.stalled)
			eventually(b, "every subscriber is registered", func() bool {
				return s.Subscriptions().Stats().Subscribers >= int64(c.stalled)
			})
			load(b, s.URL, valueID, c.warmUp)
			s.waitVersion(valueID, float64(c.warmUp+1))
			b.ResetTimer()
			load(b, s.URL, valueID, b.N)
			s.waitVersion(valueID, float64(c.warmUp+b.N+1))
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commands/s")
			b.ReportMetric(float64(s.Subscriptions().Stats().Dropped), "dropped")
		})
	}
}
