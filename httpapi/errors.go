package httpapi

import (
	"net/http"

	"calculator/domain"
)

// Kind is a kind of error that the API answers with a problem document. It
// is the problem's type ("urn:calculator:problem:" + kind), and the table
// below gives its HTTP status: handlers name the kind, never the status.
type Kind string

// The kinds of error of the API.
const (
	InvalidBody          Kind = "invalid-body"           // malformed JSON, a missing or wrong member
	InvalidOperation     Kind = "invalid-operation"      // an operation that is not ADD, SUBTRACT, MULTIPLY or DIVIDE
	InvalidID            Kind = "invalid-id"             // a path id that is not a UUID
	InvalidWait          Kind = "invalid-wait"           // ?wait= that is not a duration from 0 to the most allowed
	InvalidPosition      Kind = "invalid-position"       // ?from= or Last-Event-ID that is not a log position
	InvalidHeader        Kind = "invalid-header"         // a request header that is not valid (an Idempotency-Key, say)
	IdempotencyKeyReused Kind = "idempotency-key-reused" // an Idempotency-Key used before for another request
	BodyTooLarge         Kind = "body-too-large"         // a body over the limit
	HeadersTooLarge      Kind = "headers-too-large"      // a request header over the limit
	UnsupportedMediaType Kind = "unsupported-media-type" // a Content-Type that is not JSON
	Unauthorized         Kind = "unauthorized"           // a missing or wrong API token
	CommandNotFound      Kind = "command-not-found"      // a command whose status is not known
	ValueNotFound        Kind = "value-not-found"        // a value that does not exist
	LogUnavailable       Kind = "log-unavailable"        // the log did not store a command in time
	InsufficientStorage  Kind = "insufficient-storage"   // the log's disk is below the reserve kept for outcomes
	Replaying            Kind = "replaying"              // a part is rebuilding its state from the log
	NotReady             Kind = "not-ready"              // the process has not finished its startup
	InvalidQuery         Kind = "invalid-query"          // a query parameter that is not valid (the detail names it)
	VersionNotFound      Kind = "version-not-found"      // ?version= of a value that has not reached it
	HistoryUnavailable   Kind = "history-unavailable"    // the events log could not be read in time
	Internal             Kind = "internal"               // a fault of the server: the log holds what it did not expect
	NotYetApplied        Kind = "not-yet-applied"        // ?after=: the command's outcome is not in the view within the wait
)

// statuses maps each kind to its HTTP status.
var statuses = map[Kind]int{
	InvalidBody:          http.StatusBadRequest,
	InvalidOperation:     http.StatusBadRequest,
	InvalidID:            http.StatusBadRequest,
	InvalidWait:          http.StatusBadRequest,
	InvalidPosition:      http.StatusBadRequest,
	InvalidHeader:        http.StatusBadRequest,
	IdempotencyKeyReused: http.StatusUnprocessableEntity,
	BodyTooLarge:         http.StatusRequestEntityTooLarge,
	HeadersTooLarge:      http.StatusRequestHeaderFieldsTooLarge,
	UnsupportedMediaType: http.StatusUnsupportedMediaType,
	Unauthorized:         http.StatusUnauthorized,
	CommandNotFound:      http.StatusNotFound,
	ValueNotFound:        http.StatusNotFound,
	LogUnavailable:       http.StatusServiceUnavailable,
	InsufficientStorage:  http.StatusServiceUnavailable, // not WebDAV's 507: a full disk passes, and clients retry a 503
	Replaying:            http.StatusServiceUnavailable,
	NotReady:             http.StatusServiceUnavailable,
	InvalidQuery:         http.StatusBadRequest,
	VersionNotFound:      http.StatusNotFound,
	HistoryUnavailable:   http.StatusServiceUnavailable,
	Internal:             http.StatusInternalServerError,
	NotYetApplied:        http.StatusGatewayTimeout,
}

// Status returns the HTTP status of a kind of error: 500 for a kind the
// table does not know, which is a bug.
func (k Kind) Status() int {
	if status, ok := statuses[k]; ok {
		return status
	}
	return http.StatusInternalServerError
}

// rejections maps the reason of a rejected command to the status of a
// ?wait= answer that reports it. A rejection is the command's outcome, not
// an error of the request: its body is the command's status, not a problem.
var rejections = map[domain.Reason]int{
	domain.ValueExists:    http.StatusConflict,
	domain.ValueNotFound:  http.StatusUnprocessableEntity,
	domain.DivisionByZero: http.StatusUnprocessableEntity,
	domain.Overflow:       http.StatusUnprocessableEntity,
	domain.Underflow:      http.StatusUnprocessableEntity,
	// The If-Match precondition failed: the value is at another version.
	domain.VersionConflict: http.StatusPreconditionFailed,
}

// RejectionStatus returns the HTTP status that reports a rejection with the
// given reason: 409 when the value already exists, 412 when it is not at
// the version If-Match expected, 422 for the others
// (including reasons this version does not know).
func RejectionStatus(reason domain.Reason) int {
	if status, ok := rejections[reason]; ok {
		return status
	}
	return http.StatusUnprocessableEntity
}
