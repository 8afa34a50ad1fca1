package commander_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/commander"
	"calculator/domain"
	"calculator/eventlog"
	"calculator/eventlog/filelog"
	"calculator/eventlog/logtest"
	"calculator/idempotency"
)

// keyed is a commander with an idempotency index, both on one real file log.
type keyed struct {
	log   *filelog.Log
	index *idempotency.Index
	url   string
}

// serveKeyed serves a commander whose appends go through wrap(log).
func serveKeyed(t *testing.T, wrap func(commander.Log) commander.Log) *keyed {
	t.Helper()
	log, err := filelog.Open(t.TempDir(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	index := idempotency.New(log, "commands", zerolog.Nop(), idempotency.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { index.Run(ctx); close(done) }()
	var appendTo commander.Log = log
	if wrap != nil {
		appendTo = wrap(log)
	}
	c := commander.New(appendTo, "commands", 200*time.Millisecond, zerolog.Nop())
	c.SetKeys(index)
	r := chi.NewRouter()
	c.Routes(r)
	s := httptest.NewServer(r)
	t.Cleanup(func() {
		s.Close()
		cancel()
		<-done
		log.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for !index.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("the index did not read the commands log within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	return &keyed{log: log, index: index, url: s.URL}
}

// sendKeyed sends a request with the given Idempotency-Key headers.
func sendKeyed(t *testing.T, method, url, body string, keys ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for _, k := range keys {
		req.Header.Add("Idempotency-Key", k)
	}
	status, _, out := sendRequest(t, req)
	return status, out
}

// commands returns the records of the commands topic.
func (k *keyed) commands(t *testing.T) []eventlog.Record {
	t.Helper()
	return logtest.ReadAll(t, k.log, "commands")
}

func TestKeyedRetriesNameOneCommand(t *testing.T) {
	k := serveKeyed(t, nil)
	status, first := sendKeyed(t, "POST", k.url+"/values", `{"value":3}`, "order-1")
	if status != http.StatusAccepted {
		t.Fatalf("first POST = %d %v", status, first)
	}
	// The same request, spelt otherwise, is a repeat.
	status, again := sendKeyed(t, "POST", k.url+"/values", `{ "value" : 3.0 }`, "order-1")
	if status != http.StatusAccepted || again["command_id"] != first["command_id"] || again["value_id"] != first["value_id"] {
		t.Fatalf("repeat = %d %v, want 202 with the ids of %v", status, again, first)
	}
	recs := k.commands(t)
	if len(recs) != 1 {
		t.Fatalf("%d command records, want 1: a repeat of a stored command is not appended again", len(recs))
	}
	if key, _ := recs[0].Header(idempotency.HeaderKey); string(key) != "order-1" {
		t.Errorf("idempotency-key header %q, want order-1", key)
	}
	if hash, ok := recs[0].Header(idempotency.HeaderRequestHash); !ok || len(hash) != 64 {
		t.Errorf("request-hash header %q, want 64 hex digits", hash)
	}
	c, err := domain.DecodeCommand(recs[0].Value)
	if err != nil || c.ID.String() != first["command_id"] || c.ValueID.String() != first["value_id"] {
		t.Errorf("the record holds %+v (%v), want the answered ids %v", c, err, first)
	}
	// Another key is another command.
	if _, other := sendKeyed(t, "POST", k.url+"/values", `{"value":3}`, "order-2"); other["command_id"] == first["command_id"] {
		t.Error("two keys gave one command id")
	}
	// Without a key, every POST is a new command.
	_, a := sendKeyed(t, "POST", k.url+"/values", `{"value":3}`)
	_, b := sendKeyed(t, "POST", k.url+"/values", `{"value":3}`)
	if a["command_id"] == b["command_id"] || a["value_id"] == b["value_id"] {
		t.Error("two POSTs without a key gave the same ids")
	}
}

func TestConcurrentKeyedRetriesAppendOnce(t *testing.T) {
	k := serveKeyed(t, nil)
	valueID := uuid.NewString()
	var wg sync.WaitGroup
	ids := make([]any, 100)
	for i := range ids {
		wg.Go(func() {
			status, body := sendKeyed(t, "PUT", k.url+"/values/"+valueID, `{"operation":"add","value":1}`, "retry-me")
			if status != http.StatusAccepted {
				t.Errorf("PUT = %d %v", status, body)
			}
			ids[i] = body["command_id"]
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("command ids %v and %v for one key and request", ids[0], id)
		}
	}
	if recs := k.commands(t); len(recs) != 1 {
		t.Fatalf("%d command records after 100 concurrent retries, want 1", len(recs))
	}
}

func TestKeyReusedForAnotherRequest(t *testing.T) {
	k := serveKeyed(t, nil)
	valueID := uuid.NewString()
	if status, body := sendKeyed(t, "PUT", k.url+"/values/"+valueID, `{"operation":"ADD","value":1}`, "k"); status != http.StatusAccepted {
		t.Fatalf("first PUT = %d %v", status, body)
	}
	for _, tt := range []struct{ name, method, path, body string }{
		{"another body", "PUT", "/values/" + valueID, `{"operation":"ADD","value":2}`},
		{"another operation", "PUT", "/values/" + valueID, `{"operation":"SUBTRACT","value":1}`},
		{"another path", "PUT", "/values/" + uuid.NewString(), `{"operation":"ADD","value":1}`},
		{"another method", "POST", "/values", `{"value":1}`},
	} {
		status, body := sendKeyed(t, tt.method, k.url+tt.path, tt.body, "k")
		if status != http.StatusUnprocessableEntity || body["type"] != "urn:calculator:problem:idempotency-key-reused" {
			t.Errorf("%s: %d %v, want 422 idempotency-key-reused", tt.name, status, body)
		}
	}
	if recs := k.commands(t); len(recs) != 1 {
		t.Fatalf("%d command records, want only the first request's", len(recs))
	}
}

func TestInvalidKeys(t *testing.T) {
	k := serveKeyed(t, nil)
	for _, tt := range []struct {
		name   string
		keys   []string
		detail string
	}{
		{"empty", []string{""}, "empty"},
		{"256 characters", []string{strings.Repeat("k", 256)}, "at most 255"},
		{"not ASCII", []string{"clé"}, "printable ASCII"},
		{"two headers", []string{"a", "b"}, "send one"},
	} {
		status, body := sendKeyed(t, "POST", k.url+"/values", `{"value":1}`, tt.keys...)
		if detail, _ := body["detail"].(string); status != http.StatusBadRequest || !strings.Contains(detail, tt.detail) {
			t.Errorf("%s: %d %v, want 400 saying %q", tt.name, status, body, tt.detail)
		}
	}
	if status, _ := sendKeyed(t, "POST", k.url+"/values", `{"value":1}`, strings.Repeat("k", 255)); status != http.StatusAccepted {
		t.Errorf("a key of 255 characters: %d, want 202", status)
	}
	if recs := k.commands(t); len(recs) != 1 {
		t.Fatalf("%d command records, want only the valid request's", len(recs))
	}
}

// storedButLate stores the first append and then says it failed, as a log
// that times out after handing a message to the broker does.
type storedButLate struct {
	commander.Log
	mu    sync.Mutex
	calls int
}

func (l *storedButLate) Append(ctx context.Context, topic string, msgs ...eventlog.Message) error {
	l.mu.Lock()
	l.calls++
	first := l.calls == 1
	l.mu.Unlock()
	if err := l.Log.Append(ctx, topic, msgs...); err != nil {
		return err
	}
	if first {
		return context.DeadlineExceeded
	}
	return nil
}

// A 503 says that the command may be stored and how to retry safely; the
// retry under the same key names the same command.
func TestRetryAfter503NamesTheSameCommand(t *testing.T) {
	k := serveKeyed(t, func(l commander.Log) commander.Log { return &storedButLate{Log: l} })
	status, body := sendKeyed(t, "POST", k.url+"/values", `{"value":1}`, "k")
	if detail, _ := body["detail"].(string); status != http.StatusServiceUnavailable ||
		!strings.Contains(detail, "may have been stored") || !strings.Contains(detail, "same Idempotency-Key") {
		t.Fatalf("POST = %d %v, want 503 saying the command may be stored and to retry with the same key", status, body)
	}
	status, retried := sendKeyed(t, "POST", k.url+"/values", `{"value":1}`, "k")
	if status != http.StatusAccepted {
		t.Fatalf("retry = %d %v", status, retried)
	}
	// The retry is appended again unless the index has read the first
	// record by then; either way every record names the one command.
	recs := k.commands(t)
	if len(recs) == 0 || len(recs) > 2 {
		t.Fatalf("%d command records, want the unconfirmed one and perhaps the retry", len(recs))
	}
	for _, rec := range recs {
		if c, _ := domain.DecodeCommand(rec.Value); c.ID.String() != retried["command_id"] {
			t.Errorf("record with command id %s, want %s: the processor sees one command written twice", c.ID, retried["command_id"])
		}
	}
	// Without a key, the 503 says what a retry risks.
	s := serve(t, stuckLog{}, 20*time.Millisecond)
	if status, body := sendKeyed(t, "POST", s.URL+"/values", `{"value":1}`); status != http.StatusServiceUnavailable ||
		!strings.Contains(body["detail"].(string), "could then apply it twice") {
		t.Errorf("POST without a key = %d %v, want 503 that says a retry could apply it twice", status, body)
	}
}

// Until the index has read the commands log, it cannot tell a reused key:
// keyed requests get 503, others go through.
func TestKeyedRequestsWaitForTheIndex(t *testing.T) {
	log, err := filelog.Open(t.TempDir(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	c := commander.New(log, "commands", time.Second, zerolog.Nop())
	c.SetKeys(idempotency.New(log, "commands", zerolog.Nop(), idempotency.Options{})) // never Run
	r := chi.NewRouter()
	c.Routes(r)
	s := httptest.NewServer(r)
	defer s.Close()
	if status, body := sendKeyed(t, "POST", s.URL+"/values", `{"value":1}`, "k"); status != http.StatusServiceUnavailable ||
		!strings.Contains(body["detail"].(string), "same Idempotency-Key") {
		t.Errorf("keyed POST before the index is ready = %d %v, want 503", status, body)
	}
	if status, body := sendKeyed(t, "POST", s.URL+"/values", `{"value":1}`); status != http.StatusAccepted {
		t.Errorf("POST without a key = %d %v, want 202", status, body)
	}
}
