package commander

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"calculator/domain"
	"calculator/httpapi"
	"calculator/outcome"
)

// MaxWait bounds ?wait= on POST and PUT.
const MaxWait = 30 * time.Second

// Outcomes tells the commander the outcome of a command, for ?wait=. The
// subscriptions part implements it (subscriptions.Hub.Await); the app wires
// it in with SetOutcomes.
type Outcomes interface {
	// Await registers interest in the outcome of the command with the given
	// id. Call it before the command is appended, so that an outcome that
	// comes quickly is not missed.
	//
	// wait blocks until the command's outcome is applied to the view (so a
	// GET shows it), then returns the command's final status, with the value
	// the event left behind when that value exists. It returns an error when
	// ctx is done or the source of outcomes shuts down. stop releases the
	// registration; call it once done with wait.
	Await(commandID uuid.UUID) (wait func(context.Context) (outcome.CommandStatus, error), stop func())
}

// SetOutcomes enables ?wait=. Without it, ?wait= is accepted and ignored:
// the answer is always 202.
func (c *Commander) SetOutcomes(o Outcomes) { c.outcomes = o }

// parseWait reads ?wait=: a Go duration ("5s", "1500ms") or a number of
// seconds, from 0 to MaxWait. It writes a 400 and returns false when the
// parameter is there but not valid.
func parseWait(w http.ResponseWriter, r *http.Request) (time.Duration, bool) {
	s := r.URL.Query().Get("wait")
	if s == "" {
		return 0, true
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsNaN(secs) || math.IsInf(secs, 0) {
			httpapi.Error(w, httpapi.InvalidWait, fmt.Sprintf("wait=%q is not a duration (like 5s or 500ms)", s))
			return 0, false
		}
		d = time.Duration(max(-1, min(secs, 2*MaxWait.Seconds())) * float64(time.Second))
	}
	if d < 0 || d > MaxWait {
		httpapi.Error(w, httpapi.InvalidWait, fmt.Sprintf("wait=%q is out of range: it must be between 0s and %s", s, MaxWait))
		return 0, false
	}
	return d, true
}

// writeOutcome answers a ?wait= that got its outcome: 201 (a created value)
// or 200 with the value; for a rejection, the status that httpapi gives its
// reason (409 for value_exists, 422 for the others), without the value.
//
// A rejection is the command's outcome, not an error of the request, and
// SPEC §3 wants it as "status":"rejected" with the reason: the body is the
// command's status in application/json, as GET /commands/{id} gives it. It
// cannot be a problem document, whose "status" member is the HTTP status
// code.
func writeOutcome(w http.ResponseWriter, cmd domain.Command, st outcome.CommandStatus) {
	w.Header().Set("Content-Location", "/commands/"+cmd.ID.String())
	switch {
	case st.Status == outcome.Rejected:
		httpapi.WriteJSON(w, httpapi.RejectionStatus(st.Reason), st.WithoutValue())
	case cmd.Action == domain.CreateValue:
		w.Header().Set("Location", "/values/"+cmd.ValueID.String())
		httpapi.WriteJSON(w, http.StatusCreated, st)
	default:
		httpapi.WriteJSON(w, http.StatusOK, st)
	}
}
