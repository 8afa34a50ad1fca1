// Package commander is the write side of the HTTP API: it turns POST /values
// and PUT /values/{id} into CreateValue and UpdateValue commands and appends
// them to the commands topic.
//
// It validates the request, not the command: whether the value exists, or a
// division is by zero, is for the processor to decide. A 202 is sent only
// after the command is durable in the log; if the log cannot take it within
// the append timeout, the answer is 503 with Retry-After.
package commander

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/httpapi"
	"calculator/outcome"
)

// MaxBodyBytes bounds a request body; larger ones get 413.
const MaxBodyBytes = 64 << 10

// Log is what the commander needs of the log.
type Log interface {
	Append(ctx context.Context, topic string, msgs ...eventlog.Message) error
}

// Commander serves the command endpoints. Create it with New.
type Commander struct {
	log           Log
	topic         string
	appendTimeout time.Duration
	logger        zerolog.Logger
	now           func() time.Time
	outcomes      Outcomes // for ?wait=; nil: ignored
}

// New returns a commander that appends to topic and waits at most
// appendTimeout for the log to make a command durable.
func New(log Log, topic string, appendTimeout time.Duration, logger zerolog.Logger) *Commander {
	return &Commander{
		log:           log,
		topic:         topic,
		appendTimeout: appendTimeout,
		logger:        logger.With().Str("component", "commander").Logger(),
		now:           time.Now,
	}
}

// Routes registers the command endpoints on r.
func (c *Commander) Routes(r chi.Router) {
	r.Post("/values", c.createValue)
	r.Put("/values/{id}", c.updateValue)
}

type createRequest struct {
	Value *domain.Decimal `json:"value"`
}

type updateRequest struct {
	Operation *string         `json:"operation"`
	Value     *domain.Decimal `json:"value"`
}

func (c *Commander) createValue(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if !httpapi.DecodeJSON(w, r, &req, MaxBodyBytes) {
		return
	}
	if req.Value == nil {
		httpapi.Error(w, httpapi.InvalidBody, `"value" is required and must be a number`)
		return
	}
	c.submit(w, r, domain.Command{ID: uuid.New(), Action: domain.CreateValue, ValueID: uuid.New(), Value: *req.Value})
}

func (c *Commander) updateValue(w http.ResponseWriter, r *http.Request) {
	valueID, ok := httpapi.ParseID(w, chi.URLParam(r, "id"), "value id")
	if !ok {
		return
	}
	var req updateRequest
	if !httpapi.DecodeJSON(w, r, &req, MaxBodyBytes) {
		return
	}
	if req.Operation == nil || req.Value == nil {
		httpapi.Error(w, httpapi.InvalidBody, `"operation" and "value" are required`)
		return
	}
	op, err := domain.ParseOperation(*req.Operation)
	if err != nil {
		httpapi.Error(w, httpapi.InvalidOperation, err.Error())
		return
	}
	c.submit(w, r, domain.Command{ID: uuid.New(), Action: domain.UpdateValue, ValueID: valueID, Operation: op, Value: *req.Value})
}

// submit appends the command and answers 202 once it is durable or, with
// ?wait=, the outcome once the view has applied it (202 if that takes
// longer than the wait).
func (c *Commander) submit(w http.ResponseWriter, r *http.Request, cmd domain.Command) {
	wait, ok := parseWait(w, r)
	if !ok {
		return
	}
	var awaitOutcome func(context.Context) (outcome.CommandStatus, error)
	if wait > 0 && c.outcomes != nil {
		var stop func()
		awaitOutcome, stop = c.outcomes.Await(cmd.ID) // before the append: no outcome can slip by
		defer stop()
	}
	cmd.Timestamp = c.now().UTC()
	// The debug lines are guarded: their arguments would allocate (a UUID
	// in an interface) for every command even with debug disabled.
	debug := c.logger.Debug().Enabled()
	if debug {
		c.logger.Debug().Stringer("command_id", cmd.ID).Stringer("value_id", cmd.ValueID).Str("action", string(cmd.Action)).
			Str("operation", string(cmd.Operation)).Stringer("value", cmd.Value).Msg("command received")
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.appendTimeout)
	defer cancel()
	msg := eventlog.Message{Key: []byte(cmd.ValueID.String()), Value: cmd.AppendJSON(nil)}
	if err := c.log.Append(ctx, c.topic, msg); err != nil {
		if r.Context().Err() != nil {
			return // the client went away; nobody to answer
		}
		c.logger.Warn().Err(err).Stringer("command_id", cmd.ID).Msg("commands log unavailable; answering 503")
		httpapi.Error(w, httpapi.LogUnavailable, fmt.Sprintf("the commands log did not store the command within %s: %v", c.appendTimeout, err))
		return
	}
	if debug {
		c.logger.Debug().Stringer("command_id", cmd.ID).Msg("command accepted")
	}
	if awaitOutcome != nil {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		st, err := awaitOutcome(ctx)
		cancel()
		if err == nil {
			writeOutcome(w, cmd, st)
			return
		}
		if r.Context().Err() != nil {
			return
		}
	}
	w.Header().Set("Location", "/commands/"+cmd.ID.String())
	httpapi.WriteJSON(w, http.StatusAccepted, outcome.CommandStatus{CommandID: cmd.ID, ValueID: cmd.ValueID, Status: outcome.Accepted})
}
