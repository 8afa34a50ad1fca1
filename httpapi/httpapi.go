// Package httpapi holds what the HTTP adapters (commander, view,
// subscriptions) share: JSON responses and RFC 9457 problem details, so that
// every error of the API has the same shape, and the one table from a kind
// of error (or a rejection's reason) to its HTTP status (errors.go).
package httpapi

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Problem is an RFC 9457 problem detail. Extra members, if any, are added
// to the JSON object beside the standard ones.
type Problem struct {
	// Type identifies the kind of problem: "about:blank" for plain HTTP
	// errors, "urn:calculator:problem:<code>" for the API's own.
	Type   string
	Title  string
	Status int
	Detail string
	Extra  map[string]any
}

// NewProblem returns a problem of the given kind, with its status.
func NewProblem(kind Kind, detail string) Problem {
	status := kind.Status()
	return Problem{Type: "urn:calculator:problem:" + string(kind), Title: http.StatusText(status), Status: status, Detail: detail}
}

// retryAfter is what a 503 tells a client to wait before it tries again.
const retryAfter = "1"

// WriteProblem writes p as application/problem+json. A 503 says when to
// come back (Retry-After), unless the handler has said it already.
func WriteProblem(w http.ResponseWriter, p Problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	body := make(map[string]any, 4+len(p.Extra))
	for k, v := range p.Extra {
		body[k] = v
	}
	body["type"], body["title"], body["status"] = p.Type, p.Title, p.Status
	if p.Detail != "" {
		body["detail"] = p.Detail
	}
	if p.Status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(body)
}

// Error answers with a problem of the given kind.
func Error(w http.ResponseWriter, kind Kind, detail string) {
	WriteProblem(w, NewProblem(kind, detail))
}

// NotFound and MethodNotAllowed answer chi's unmatched routes as problems.
func NotFound(w http.ResponseWriter, r *http.Request) {
	WriteProblem(w, Problem{Status: http.StatusNotFound, Detail: "no route for " + r.Method + " " + r.URL.Path})
}

// MethodNotAllowed answers a known path with a method it does not serve.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	WriteProblem(w, Problem{Status: http.StatusMethodNotAllowed, Detail: r.Method + " is not allowed on " + r.URL.Path})
}

// MaxHeaderBytes is the most that a request's header (its request line and
// fields) may take before LimitHeaders answers 431 with a problem. The
// http.Server's MaxHeaderBytes must be higher: past that one, net/http
// answers 431 itself, in text/plain, before any handler runs.
const MaxHeaderBytes = 32 << 10

// LimitHeaders returns a middleware that answers 431 with a problem to a
// request whose header takes more than limit bytes, counted as on the wire.
func LimitHeaders(limit int) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if size := headerSize(r); size > limit {
				w.Header().Set("Connection", "close")
				Error(w, HeadersTooLarge, fmt.Sprintf("the request's header takes %d bytes; at most %d are allowed", size, limit))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// headerSize is the size of r's request line and header fields on the wire
// (HTTP/1.1), Host included.
func headerSize(r *http.Request) int {
	size := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2 + len("Host: ") + len(r.Host) + 2
	for k, vv := range r.Header {
		for _, v := range vv {
			size += len(k) + 2 + len(v) + 2
		}
	}
	return size
}

// RequireBearer returns a middleware that answers 401 unless the request
// carries "Authorization: Bearer <token>" (the scheme in any case, as RFC
// 9110 §11.1 says).
func RequireBearer(token string) func(http.Handler) http.Handler {
	want := []byte(token)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			scheme, credentials, _ := strings.Cut(r.Header.Get("Authorization"), " ")
			if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(credentials), want) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="calculator"`)
				Error(w, Unauthorized, "send the API token as \"Authorization: Bearer <token>\"")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// ParseID parses a UUID in its canonical form from a path segment: 36
// characters, hex digits (in either case) in groups of 8-4-4-4-12 joined by
// dashes. It writes a 400 problem and returns false for anything else,
// including the forms uuid.Parse also takes ({…}, urn:uuid:…, no dashes):
// one value has one id, and the API answers with it in lower case.
func ParseID(w http.ResponseWriter, s, what string) (uuid.UUID, bool) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 { // of uuid.Parse's forms, only the canonical one has 36 characters
		Error(w, InvalidID, what+" "+strconv.Quote(s)+" is not a UUID in its canonical form (like 123e4567-e89b-12d3-a456-426614174000)")
		return uuid.UUID{}, false
	}
	return id, true
}
