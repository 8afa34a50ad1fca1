package app

import (
	"net/http"
	"time"

	"github.com/rs/xid"
	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"
)

// RequestIDHeader carries a request's id: taken from the request when the
// client (or a proxy before it) sends one, made otherwise, and returned in
// the answer either way; the access log line shows it.
const RequestIDHeader = "X-Request-ID"

// maxRequestIDLen bounds a request id taken from a client.
const maxRequestIDLen = 128

// requestIDKey is RequestIDHeader as net/http keeps it (canonical): the
// map is indexed directly, saving an allocation per request.
const requestIDKey = "X-Request-Id"

// RequestID returns the id of r, once withRequestID has seen it.
func RequestID(r *http.Request) string {
	if v := r.Header[requestIDKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// withRequestID takes the request's X-Request-ID, or makes one (an xid:
// 20 characters, sortable by time) when it has none or one that is not a
// short run of visible ASCII, and returns it in the answer. A made id
// replaces the request's own header, where RequestID finds it: a request
// copy with a context value would cost four times the allocations.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := RequestID(r)
		if !validRequestID(id) {
			id = xid.New().String()
			r.Header[requestIDKey] = []string{id}
		}
		w.Header()[requestIDKey] = r.Header[requestIDKey]
		next.ServeHTTP(w, r)
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// accessLog writes one line per request, when its answer is complete: at
// info level for a failure (4xx, 5xx), at debug level otherwise. It must be
// inside withRequestID. A stream's line comes when the stream ends.
func accessLog(logger zerolog.Logger) func(http.Handler) http.Handler {
	logger = logger.With().Str("component", "http").Logger()
	return hlog.AccessHandler(func(r *http.Request, status, size int, took time.Duration) {
		level := zerolog.DebugLevel
		if status >= 400 {
			level = zerolog.InfoLevel
		}
		e := logger.WithLevel(level)
		if e == nil {
			return // the level is disabled: nothing is formatted
		}
		if status == 0 {
			status = http.StatusOK // what net/http sends for a handler that wrote nothing
		}
		e.Str("method", r.Method).Str("path", r.URL.Path).Int("status", status).Int("bytes", size).
			Dur("duration", took).Str("request_id", RequestID(r)).Msg("request")
	})
}
