package commander

import (
	"context"
	"fmt"
	"net/http"

	"calculator/httpapi"
	"calculator/idempotency"
)

// Keys remembers which request first used each Idempotency-Key
// (idempotency.Index implements it; the app wires it in with SetKeys).
type Keys interface {
	// Claim reserves key for the request with fingerprint fp before its
	// command is appended; see idempotency.Index.Claim for what it returns.
	Claim(ctx context.Context, key string, fp idempotency.Fingerprint) (idempotency.Reservation, error)
}

// SetKeys enables the refusal of a key reused for another request (422)
// and lets repeats of a stored request answer without appending again.
// Without it a keyed request still gets the command id (and value id) that
// its key and content determine, so its retries are still decided once.
func (c *Commander) SetKeys(k Keys) { c.keys = k }

// idempotencyKey returns the request's Idempotency-Key, "" when it has
// none. It writes a 400 and returns false when the header is not valid.
func idempotencyKey(w http.ResponseWriter, r *http.Request) (string, bool) {
	keys := r.Header.Values("Idempotency-Key")
	switch len(keys) {
	case 0:
		return "", true
	case 1:
		if err := idempotency.CheckKey(keys[0]); err != nil {
			httpapi.Error(w, httpapi.InvalidHeader, err.Error())
			return "", false
		}
		return keys[0], true
	}
	httpapi.Error(w, httpapi.InvalidHeader, fmt.Sprintf("the request has %d Idempotency-Key headers; send one", len(keys)))
	return "", false
}
