package subscriptions_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/eventlog/filelog"
	"calculator/internal/ssetest"
	"calculator/outcome"
	"calculator/subscriptions"
)

// hub is a Hub on a file log without the rest of the calculator: the test
// writes the commands and plays the view.
type hub struct {
	*subscriptions.Hub
	log *filelog.Log
	URL string
}

func startHub(t *testing.T, opt subscriptions.Options, serverWriteTimeout time.Duration) *hub {
	t.Helper()
	h := startHubWith(t, opt, serverWriteTimeout, func() bool { return true }, nil)
	eventually(t, "the hub is ready", h.Ready)
	return h
}

// startHubWith is startHub with the view's readiness given, and wrap (if
// not nil) around the Hub's routes; it does not wait for the Hub.
func startHubWith(t *testing.T, opt subscriptions.Options, serverWriteTimeout time.Duration, viewReady func() bool, wrap func(http.Handler) http.Handler) *hub {
	t.Helper()
	log, err := filelog.Open(t.TempDir(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	h := subscriptions.New(subscriptions.Config{
		Log: log, CommandsTopic: "commands", EventsTopic: "events",
		Value:     func(uuid.UUID) (domain.Value, bool) { return domain.Value{}, false },
		ViewReady: viewReady,
		Logger:    zerolog.Nop(),
		Options:   opt,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	routes := newRouter(h)
	if wrap != nil {
		routes = wrap(routes)
	}
	srv := httptest.NewUnstartedServer(routes)
	srv.Config.WriteTimeout = serverWriteTimeout
	srv.Start()
	t.Cleanup(func() {
		h.Close()
		srv.Close()
		cancel()
		<-done
		log.Close()
	})
	return &hub{Hub: h, log: log, URL: srv.URL}
}

// A stream opened while the statuses are being rebuilt (a browser's
// EventSource reconnecting right after a restart) waits for them rather
// than getting a 503, on which EventSource would give up for good.
func TestStreamOpenedDuringTheReplayWaits(t *testing.T) {
	var viewReady atomic.Bool
	arrived := make(chan struct{}, 1)
	h := startHubWith(t, subscriptions.Options{}, 0, viewReady.Load, func(routes http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			arrived <- struct{}{}
			routes.ServeHTTP(w, r)
		})
	})

	type dialed struct {
		stream *ssetest.Stream
		err    error
	}
	result := make(chan dialed, 1)
	dialCtx, dialCancel := context.WithTimeout(context.Background(), deadline)
	defer dialCancel()
	go func() {
		stream, err := ssetest.Dial(dialCtx, nil, h.URL+"/subscriptions/events?from=0", "")
		result <- dialed{stream, err}
	}()
	<-arrived
	// Nothing comes back while the view is replaying (a 503 would come at
	// once): an absence, so it can only be watched for a while.
	select {
	case d := <-result:
		t.Fatalf("answered before the view was ready: %v", d.err)
	case <-time.After(300 * time.Millisecond):
	}
	if h.Ready() {
		t.Fatal("ready before the view")
	}
	viewReady.Store(true)
	d := <-result
	if d.err != nil {
		t.Fatalf("the stream, once the view is ready: %v", d.err)
	}
	d.stream.Close()
}

// A client may subscribe to a command before it is sent: the stream waits
// for it.
func TestSubscribeBeforeTheCommand(t *testing.T) {
	h := startHub(t, subscriptions.Options{}, 0)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cmd := domain.Command{ID: uuid.New(), Action: domain.CreateValue, ValueID: uuid.New(), Value: domain.DecimalFromInt(5)}
	stream, err := ssetest.Dial(ctx, nil, h.URL+"/subscriptions/commands/"+cmd.ID.String(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()

	if err := h.log.Append(ctx, "commands", eventlog.Message{Value: cmd.AppendJSON(nil)}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, stream); ev.Type != "accepted" || data(t, ev)["command_id"] != cmd.ID.String() {
		t.Fatalf("first message %s %s, want accepted", ev.Type, ev.Data)
	}
	e := domain.Decide(domain.NewState(), cmd, time.Now())
	h.Apply([]outcome.Applied{{
		Record: eventlog.Record{Offset: 0, Headers: eventlog.CommandPositionHeaders(0, 0)},
		Event:  e, Value: domain.Value{Value: domain.DecimalFromInt(5), Version: 1}, Exists: true,
	}})
	if ev := next(t, stream); ev.Type != "succeeded" || ev.LastEventID != "0" || data(t, ev)["event_id"] != e.ID.String() {
		t.Errorf("second message %s id %s %s, want succeeded with the event's id and position", ev.Type, ev.LastEventID, ev.Data)
	}
	if ev := next(t, stream); ev.Type != "applied" || data(t, ev)["value"] != 5.0 {
		t.Errorf("third message %s %s, want applied with the value", ev.Type, ev.Data)
	}
}

// A server with a WriteTimeout does not cut streams: they set their own
// deadline for each write.
func TestStreamsOutliveTheServerWriteTimeout(t *testing.T) {
	const writeTimeout = 100 * time.Millisecond
	h := startHub(t, subscriptions.Options{CommandWait: 5 * writeTimeout, Heartbeat: writeTimeout / 5}, writeTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	stream, err := ssetest.Dial(ctx, nil, h.URL+"/subscriptions/commands/"+uuid.NewString(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	// "unknown" comes after CommandWait, five times the server's
	// WriteTimeout, with keep-alive comments in between.
	if ev := next(t, stream); ev.Type != "unknown" {
		t.Errorf("message %s, want unknown", ev.Type)
	}
	if len(stream.Comments) < 2 {
		t.Errorf("%d comments, want several before the end", len(stream.Comments))
	}
}
