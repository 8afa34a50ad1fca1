package subscriptions_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/google/uuid"

	"calculator/internal/ssetest"
	"calculator/subscriptions"
)

// goroutines returns the number of goroutines, and their stacks for a
// failure message.
func goroutines() (int, string) {
	var buf bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&buf, 1)
	return runtime.NumGoroutine(), buf.String()
}

// waitGoroutines polls until at most want goroutines are left.
func waitGoroutines(t *testing.T, what string, want int) {
	t.Helper()
	end := time.Now().Add(deadline)
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		n, stacks := goroutines()
		if n <= want {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s: %d goroutines, want at most %d:\n%s", what, n, want, stacks)
		}
		time.Sleep(wait)
	}
}

// Every kind of stream ends when its client goes away, and all of them
// end when the server shuts down, leaving no goroutine behind.
func TestNoGoroutineLeftBehind(t *testing.T) {
	before, _ := goroutines()
	s := start(t, t.TempDir(), subscriptions.Options{Heartbeat: 10 * time.Millisecond})
	commandID, valueID := s.create(1)
	s.waitStatus(commandID, "succeeded")
	for range 3 {
		s.update(valueID, "add", 1)
	}
	s.waitVersion(valueID, 4)
	http.DefaultClient.CloseIdleConnections()
	client := &http.Client{Transport: &http.Transport{}}
	// The goroutines of the running server, its idle keep-alive
	// connections closed.
	eventually(t, "the server settles", func() bool { n, _ := goroutines(); return n < before+30 })
	running, _ := goroutines()

	paths := []string{
		"/subscriptions/events",                       // live only
		"/subscriptions/events?from=0",                // catch-up, then live
		"/subscriptions/events?from=1000",             // a position in the future
		"/subscriptions/values/" + valueID,            // a value
		"/subscriptions/commands/" + uuid.NewString(), // waiting for an unknown command
	}
	open := func() []*ssetest.Stream {
		var streams []*ssetest.Stream
		for range 10 {
			for _, path := range paths {
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				t.Cleanup(cancel)
				stream, err := ssetest.Dial(ctx, client, s.URL+path, "")
				if err != nil {
					t.Fatal(err)
				}
				streams = append(streams, stream)
			}
		}
		eventually(t, "every stream is open", func() bool { return s.Subscriptions().Stats().Subscribers == int64(len(streams)) })
		return streams
	}

	// Clients go away.
	for _, stream := range open() {
		stream.Close()
	}
	eventually(t, "every stream has ended", func() bool { return s.Subscriptions().Stats().Subscribers == 0 })
	client.CloseIdleConnections()
	waitGoroutines(t, "after the clients went away", running)

	// The server shuts down under open streams: it does not wait for them.
	streams := open()
	s.stop()
	for _, stream := range streams {
		for {
			if _, err := stream.Next(); err != nil {
				break
			}
		}
	}
	client.CloseIdleConnections()
	waitGoroutines(t, fmt.Sprintf("after the shutdown (%d before the server started)", before), before)
}
