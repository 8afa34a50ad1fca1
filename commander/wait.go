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
)

// MaxWait bounds ?wait= on POST and PUT.
const MaxWait = 30 * time.Second

// Outcomes tells the commander the outcome of a command, for ?wait=. The
// subscriptions part implements it; the app wires it in with SetOutcomes.
type Outcomes interface {
	// Await registers interest in the outcome of the command with the given
	// id. Call it before the command is appended, so that an outcome that
	// comes quickly is not missed.
	//
	// wait blocks until the command's outcome is applied to the view (so a
	// GET shows it), then returns its event (ID, ParentID, Action, ValueID,
	// and Reason and Message for a rejection) and the value the event left
	// behind (Version 0 when there is none). It returns an error when ctx is
	// done or the source of outcomes shuts down. stop releases the
	// registration; call it once done with wait.
	Await(commandID uuid.UUID) (wait func(context.Context) (domain.Event, domain.Value, error), stop func())
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
			httpapi.Error(w, http.StatusBadRequest, "invalid-wait", fmt.Sprintf("wait=%q is not a duration (like 5s or 500ms)", s))
			return 0, false
		}
		d = time.Duration(max(-1, min(secs, 2*MaxWait.Seconds())) * float64(time.Second))
	}
	if d < 0 || d > MaxWait {
		httpapi.Error(w, http.StatusBadRequest, "invalid-wait", fmt.Sprintf("wait=%q is out of range: it must be between 0s and %s", s, MaxWait))
		return 0, false
	}
	return d, true
}

// Outcome is the body of a ?wait= answer: the command's status, as GET
// /commands/{id} gives it, with the value for a success.
type Outcome struct {
	CommandID uuid.UUID     `json:"command_id"`
	ValueID   uuid.UUID     `json:"value_id"`
	Status    string        `json:"status"`
	EventID   uuid.UUID     `json:"event_id"`
	Value     *float64      `json:"value,omitempty"`
	Version   int64         `json:"version,omitempty"`
	Reason    domain.Reason `json:"reason,omitempty"`
	Message   string        `json:"message,omitempty"`
}

// writeOutcome answers a ?wait= that got its outcome: 201 (a created value)
// or 200 with the value; 409 for value_exists and 422 for the other
// rejections.
//
// A rejection is the command's outcome, not an error of the request, and
// SPEC §3 wants it as "status":"rejected" with the reason: the body is the
// command's status in application/json. It cannot be a problem document,
// whose "status" member is the HTTP status code.
func writeOutcome(w http.ResponseWriter, cmd domain.Command, e domain.Event, v domain.Value) {
	out := Outcome{CommandID: cmd.ID, ValueID: cmd.ValueID, EventID: e.ID}
	if e.Action == domain.CommandRejected {
		out.Status, out.Reason, out.Message = "rejected", e.Reason, e.Message
		status := http.StatusUnprocessableEntity
		if e.Reason == domain.ValueExists {
			status = http.StatusConflict
		}
		w.Header().Set("Content-Location", "/commands/"+cmd.ID.String())
		httpapi.WriteJSON(w, status, out)
		return
	}
	value := v.Value
	out.Status, out.Value, out.Version = "succeeded", &value, v.Version
	w.Header().Set("Content-Location", "/commands/"+cmd.ID.String())
	if cmd.Action == domain.CreateValue {
		w.Header().Set("Location", "/values/"+cmd.ValueID.String())
		httpapi.WriteJSON(w, http.StatusCreated, out)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}
