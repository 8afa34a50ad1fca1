// Package httpapi holds what the HTTP adapters (commander, view,
// subscriptions) share: JSON responses and RFC 9457 problem details, so that
// every error of the API has the same shape.
package httpapi

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

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

// NewProblem returns a problem of the API's own kind; code is its short name
// (for example "invalid-body").
func NewProblem(status int, code, detail string) Problem {
	return Problem{Type: "urn:calculator:problem:" + code, Title: http.StatusText(status), Status: status, Detail: detail}
}

// WriteProblem writes p as application/problem+json.
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
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(body)
}

// Error writes a problem of the API's own kind.
func Error(w http.ResponseWriter, status int, code, detail string) {
	WriteProblem(w, NewProblem(status, code, detail))
}

// Unavailable writes a 503 with a Retry-After header.
func Unavailable(w http.ResponseWriter, retryAfter time.Duration, code, detail string) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(retryAfter.Round(time.Second)/time.Second))))
	Error(w, http.StatusServiceUnavailable, code, detail)
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
// carries "Authorization: Bearer <token>".
func RequireBearer(token string) func(http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="calculator"`)
				Error(w, http.StatusUnauthorized, "unauthorized", "send the API token as \"Authorization: Bearer <token>\"")
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
		Error(w, http.StatusBadRequest, "invalid-id", what+" "+strconv.Quote(s)+" is not a UUID")
		return uuid.UUID{}, false
	}
	return id, true
}
