// Package httpapi holds what the HTTP adapters (commander, view,
// subscriptions) share: JSON responses and RFC 9457 problem details, so that
// every error of the API has the same shape, and the one table from a kind
// of error (or a rejection's reason) to its HTTP status (errors.go).
package httpapi

import (
	"crypto/subtle"
	"encoding/json"
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

// ParseID parses a UUID from a path segment, writing a 400 problem and
// returning false when it is not one.
func ParseID(w http.ResponseWriter, s, what string) (uuid.UUID, bool) {
	id, err := uuid.Parse(s)
	if err != nil {
		Error(w, InvalidID, what+" "+strconv.Quote(s)+" is not a UUID")
		return uuid.UUID{}, false
	}
	return id, true
}
