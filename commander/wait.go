package commander

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"

	"calculator/domain"
	"calculator/httpapi"
	"calculator/outcome"
)

// MaxWait bounds ?wait= on POST and PUT.
const MaxWait = httpapi.MaxWait

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

// parseWait reads ?wait= (see httpapi.ParseWait).
func parseWait(w http.ResponseWriter, r *http.Request) (time.Duration, bool) {
	return httpapi.ParseWait(w, r)
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
