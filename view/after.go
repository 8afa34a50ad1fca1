package view

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"calculator/httpapi"
)

// Read-your-writes: GET /values/{id}?after=<command_id> answers once this
// instance's view has applied that command's outcome, whichever instance
// took the command and whichever decided it (SPEC §6). The view does not
// track commands itself: the subscriptions Hub does (it reads the commands
// topic and learns each outcome from this view's listener), and Outcomes is
// how the view asks it.

// DefaultAfterWait is how long ?after= waits when the request gives no ?wait=.
const DefaultAfterWait = 5 * time.Second

// Outcomes tells the view when a command's outcome is applied, for ?after=.
// subscriptions.Hub implements it; the app wires it in with SetOutcomes.
type Outcomes interface {
	// AwaitApplied registers interest in the outcome of the command with
	// the given id. wait blocks until the outcome is applied to this view,
	// then returns nil; it returns an error when ctx is done or the source
	// of outcomes shuts down. stop releases the registration; call it once
	// done with wait.
	AwaitApplied(commandID uuid.UUID) (wait func(context.Context) error, stop func())
}

// SetOutcomes enables ?after= on GET /values/{id}. Without it, ?after= is
// an error (the view cannot know).
func (v *View) SetOutcomes(o Outcomes) { v.outcomes = o }

// awaitAfter handles ?after= and ?wait=: it returns true when the request
// may be answered with the value (no ?after=, or the command's outcome is
// applied), and otherwise answers it with a problem: 400 for a bad
// parameter, 504 when the wait runs out, 503 when the process shuts down.
func (v *View) awaitAfter(w http.ResponseWriter, r *http.Request) bool {
	query := r.URL.Query()
	if !query.Has("after") {
		return true
	}
	commandID, ok := httpapi.ParseID(w, query.Get("after"), "command id (after=)")
	if !ok {
		return false
	}
	wait, ok := httpapi.ParseWait(w, r)
	if !ok {
		return false
	}
	if !query.Has("wait") {
		wait = DefaultAfterWait
	}
	if v.outcomes == nil {
		httpapi.Error(w, httpapi.NotReady, "read-your-writes (?after=) is not available on this instance")
		return false
	}
	await, stop := v.outcomes.AwaitApplied(commandID)
	defer stop()
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	switch err := await(ctx); {
	case err == nil:
		return true
	case errors.Is(err, context.DeadlineExceeded):
		httpapi.Error(w, httpapi.NotYetApplied, fmt.Sprintf("the outcome of command %s is not applied to this instance's view after %s", commandID, wait))
	case r.Context().Err() != nil:
		// The client has gone: nobody reads the answer.
	default:
		httpapi.Error(w, httpapi.NotReady, "shutting down")
	}
	return false
}
