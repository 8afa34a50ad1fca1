package openapitest_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"calculator/openapi"
	"calculator/openapi/openapitest"
)

const (
	valueID   = "830d559a-8053-4ba6-8280-d74df65981db"
	commandID = "148fd22a-80ca-497f-b34d-adbf532e68e8"
	eventID   = "3fb44754-7ef9-4a64-9a4e-0d1c0b0e9b8f"
)

// answer is a canned response of the fake server.
type answer struct {
	status      int
	contentType string
	body        string
	header      map[string]string // an empty value removes the header
}

// roundTrip sends one request through a checking transport to a server that
// gives the canned answer, reads the whole response, and returns what the
// transport reported.
func roundTrip(t *testing.T, ctx context.Context, method, path, contentType, body string, a answer) []error {
	t.Helper()
	contract, err := openapitest.Load(openapi.Document)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-ID", "cv1ll5ibbj6s73a8fo5g") // as the calculator's every answer
		for k, v := range a.header {
			if v == "" {
				w.Header().Del(k)
			} else {
				w.Header().Set(k, v)
			}
		}
		if a.contentType != "" {
			w.Header().Set("Content-Type", a.contentType)
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	defer srv.Close()
	var mu sync.Mutex
	var reports []error
	client := &http.Client{Transport: contract.Transport(nil, func(err error) {
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, err)
	})}
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != a.body {
		t.Errorf("the caller read %q, want the server's body %q unchanged", got, a.body)
	}
	mu.Lock()
	defer mu.Unlock()
	return reports
}

func problem(status int, code string) string {
	return `{"type":"urn:calculator:problem:` + code + `","title":"` + http.StatusText(status) + `","status":` + strconv.Itoa(status) + `,"detail":"d"}`
}

// The transport passes what the document describes and reports, one by
// one, what it does not: each row is a way the server or the document could
// drift apart.
func TestTransport(t *testing.T) {
	value := `{"value_id":"` + valueID + `","value":42,"version":2}`
	accepted := `{"command_id":"` + commandID + `","value_id":"` + valueID + `","status":"accepted"}`
	created := `{"id":"` + eventID + `","parent-id":"` + commandID + `","action":"ValueCreated","data":{"value-id":"` + valueID + `","value":2},"timestamp":"2026-01-02T03:04:05.123Z"}`
	updatedWithoutResult := `{"id":"` + eventID + `","parent-id":"` + commandID + `","action":"ValueUpdated","data":{"value-id":"` + valueID + `","operation":"ADD","value":2},"timestamp":"2026-01-02T03:04:05Z"}`
	stream := func(messages ...string) string {
		return "retry: 1000\n\n" + strings.Join(messages, "") + ": keep-alive\n\n"
	}
	sse := map[string]string{"Cache-Control": "no-cache"}
	departing := openapitest.Departing(context.Background(), "curl's default content type")

	tests := []struct {
		name                            string
		ctx                             context.Context
		method, path, contentType, body string
		answer                          answer
		violation                       string // "" when the exchange is in the document
	}{
		{"a value", nil, "GET", "/values/" + valueID, "", "",
			answer{200, "application/json", value, nil}, ""},
		{"a field the document lacks", nil, "GET", "/values/" + valueID, "", "",
			answer{200, "application/json", `{"value_id":"` + valueID + `","value":42,"version":2,"colour":"red"}`, nil}, "colour"},
		{"a field of the wrong type", nil, "GET", "/values/" + valueID, "", "",
			answer{200, "application/json", `{"value_id":"` + valueID + `","value":"42","version":2}`, nil}, "does not match"},
		{"an undocumented status", nil, "GET", "/values/" + valueID, "", "",
			answer{http.StatusTeapot, "application/json", `{}`, nil}, "status is not supported"},
		{"a documented problem", nil, "GET", "/values/" + valueID, "", "",
			answer{404, "application/problem+json", problem(404, "value-not-found"), nil}, ""},
		{"a problem type the status does not list", nil, "GET", "/values/" + valueID, "", "",
			answer{404, "application/problem+json", problem(404, "command-not-found"), nil}, "does not match"},
		{"a problem as application/json", nil, "GET", "/values/" + valueID, "", "",
			answer{404, "application/json", problem(404, "value-not-found"), nil}, "Content-Type"},
		{"a 503 without Retry-After", nil, "GET", "/values/" + valueID, "", "",
			answer{503, "application/problem+json", problem(503, "replaying"), nil}, "Retry-After"},
		{"an answer without X-Request-ID", nil, "GET", "/values/" + valueID, "", "",
			answer{200, "application/json", value, map[string]string{"X-Request-ID": ""}}, "X-Request-ID"},
		{"an accepted command", nil, "POST", "/values", "application/json", `{"value":3}`,
			answer{202, "application/json", accepted, map[string]string{"Location": "/commands/" + commandID}}, ""},
		{"a lower-case operation", nil, "PUT", "/values/" + valueID, "application/json", `{"operation":"multiply","value":3}`,
			answer{202, "application/json", accepted, map[string]string{"Location": "/commands/" + commandID}}, ""},
		{"an invalid request refused", nil, "PUT", "/values/" + valueID, "application/json", `{"operation":"POW","value":3}`,
			answer{400, "application/problem+json", problem(400, "invalid-operation"), nil}, ""},
		{"an invalid request accepted", nil, "PUT", "/values/" + valueID, "application/json", `{"operation":"POW","value":3}`,
			answer{202, "application/json", accepted, map[string]string{"Location": "/commands/" + commandID}}, "the document says the request is invalid"},
		{"a departure on purpose", departing, "POST", "/values", "application/x-www-form-urlencoded", `{"value":3}`,
			answer{202, "application/json", accepted, map[string]string{"Location": "/commands/" + commandID}}, ""},
		{"a departure that is not one", departing, "POST", "/values", "application/json", `{"value":3}`,
			answer{202, "application/json", accepted, map[string]string{"Location": "/commands/" + commandID}}, "the document accepts it"},
		{"a path id that is not a UUID, refused", nil, "GET", "/values/42", "", "",
			answer{400, "application/problem+json", problem(400, "invalid-id"), nil}, ""},
		{"a path id that is not a UUID, answered", nil, "GET", "/values/42", "", "",
			answer{200, "application/json", value, nil}, "the document says the request is invalid"},
		{"an event id that is not a UUID", nil, "GET", "/subscriptions/events", "", "",
			answer{200, "text/event-stream", stream("id: 0\nevent: ValueCreated\ndata: " + strings.Replace(created, eventID, "e1", 1) + "\n\n"), sse}, `"ValueCreated" does not match`},
		{"an unknown route", nil, "GET", "/nothing", "", "",
			answer{404, "application/problem+json", `{"type":"about:blank","title":"Not Found","status":404,"detail":"no route"}`, nil}, ""},
		{"a route the document lacks", nil, "GET", "/debug/vars", "", "",
			answer{200, "text/plain", "up 1\n", nil}, "a route the document lacks"},
		{"a method the path lacks", nil, "DELETE", "/values/" + valueID, "", "",
			answer{405, "application/problem+json", `{"type":"about:blank","title":"Method Not Allowed","status":405}`, nil}, ""},
		{"a logout", nil, "DELETE", "/session", "", "",
			answer{204, "", "", map[string]string{"Set-Cookie": "calculator_token=; Max-Age=0"}}, ""},
		{"an event stream", nil, "GET", "/subscriptions/events?from=0", "", "",
			answer{200, "text/event-stream", stream("id: 0\nevent: ValueCreated\ndata: " + created + "\n\n"), sse}, ""},
		{"a message name the document lacks", nil, "GET", "/subscriptions/events", "", "",
			answer{200, "text/event-stream", stream("id: 0\nevent: ValueDeleted\ndata: {}\n\n"), sse}, `"ValueDeleted" is not one of`},
		{"a message that does not match its schema", nil, "GET", "/subscriptions/events", "", "",
			answer{200, "text/event-stream", stream("id: 0\nevent: ValueUpdated\ndata: " + updatedWithoutResult + "\n\n"), sse}, `"ValueUpdated" does not match`},
		{"a stream without Cache-Control", nil, "GET", "/subscriptions/values/" + valueID, "", "",
			answer{200, "text/event-stream", stream("event: value\ndata: " + value + "\n\n"), nil}, "Cache-Control"},
		{"a stream where the document has JSON", nil, "GET", "/values/" + valueID, "", "",
			answer{200, "text/event-stream", stream(), sse}, "text/event-stream"},
		{"an invalid position parameter", nil, "GET", "/subscriptions/events?from=x", "", "",
			answer{200, "text/event-stream", stream(), sse}, "the document says the request is invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			reports := roundTrip(t, ctx, tt.method, tt.path, tt.contentType, tt.body, tt.answer)
			if tt.violation == "" {
				for _, err := range reports {
					t.Errorf("reported %v, want no violation", err)
				}
				return
			}
			if len(reports) == 0 {
				t.Fatalf("nothing reported, want a violation mentioning %q", tt.violation)
			}
			if !strings.Contains(reports[0].Error(), tt.violation) {
				t.Errorf("reported %v, want a violation mentioning %q", reports[0], tt.violation)
			}
		})
	}
}
