package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"calculator/domain"
	"calculator/httpapi"
)

func TestErrorAnswersWithTheKindsStatus(t *testing.T) {
	tests := []struct {
		kind       httpapi.Kind
		wantStatus int
	}{
		{httpapi.InvalidBody, 400},
		{httpapi.InvalidOperation, 400},
		{httpapi.InvalidID, 400},
		{httpapi.InvalidWait, 400},
		{httpapi.InvalidPosition, 400},
		{httpapi.InvalidHeader, 400},
		{httpapi.IdempotencyKeyReused, 422},
		{httpapi.BodyTooLarge, 413},
		{httpapi.HeadersTooLarge, 431},
		{httpapi.UnsupportedMediaType, 415},
		{httpapi.Unauthorized, 401},
		{httpapi.CommandNotFound, 404},
		{httpapi.ValueNotFound, 404},
		{httpapi.LogUnavailable, 503},
		{httpapi.InsufficientStorage, 503},
		{httpapi.Replaying, 503},
		{httpapi.NotReady, 503},
		{httpapi.InvalidQuery, 400},
		{httpapi.VersionNotFound, 404},
		{httpapi.HistoryUnavailable, 503},
		{httpapi.Internal, 500},
		{httpapi.Kind("no-such-kind"), 500},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			w := httptest.NewRecorder()
			httpapi.Error(w, tt.kind, "what went wrong")
			if w.Code != tt.wantStatus {
				t.Errorf("status %d, want %d", w.Code, tt.wantStatus)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q, want application/problem+json", ct)
			}
			var body map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			want := map[string]any{
				"type": "urn:calculator:problem:" + string(tt.kind), "title": http.StatusText(tt.wantStatus),
				"status": float64(tt.wantStatus), "detail": "what went wrong",
			}
			for k, v := range want {
				if body[k] != v {
					t.Errorf("%s = %v, want %v", k, body[k], v)
				}
			}
			if retry := w.Header().Get("Retry-After"); (tt.wantStatus == 503) != (retry != "") {
				t.Errorf("status %d with Retry-After %q: want it on a 503 only", w.Code, retry)
			}
		})
	}
}

// A handler that says when to come back is not overruled.
func TestProblemKeepsTheHandlersRetryAfter(t *testing.T) {
	w := httptest.NewRecorder()
	w.Header().Set("Retry-After", "7")
	httpapi.Error(w, httpapi.Replaying, "later")
	if got := w.Header().Get("Retry-After"); got != "7" {
		t.Errorf("Retry-After %q, want 7", got)
	}
}

func TestRejectionStatus(t *testing.T) {
	for reason, want := range map[domain.Reason]int{
		domain.ValueExists:            409,
		domain.ValueNotFound:          422,
		domain.DivisionByZero:         422,
		domain.Overflow:               422,
		domain.Underflow:              422,
		domain.VersionConflict:        412,
		domain.Reason("a new reason"): 422,
	} {
		if got := httpapi.RejectionStatus(reason); got != want {
			t.Errorf("RejectionStatus(%s) = %d, want %d", reason, got, want)
		}
	}
}
