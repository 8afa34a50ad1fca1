// Package commander is the write side of the HTTP API: it turns POST /values
// and PUT /values/{id} into CreateValue and UpdateValue commands and appends
// them to the commands topic.
//
// It validates the request, not the command: whether the value exists, or a
// division is by zero, is for the processor to decide. A 202 is sent only
// after the command is durable in the log; if the log cannot take it within
// the append timeout, the answer is 503 with Retry-After; when the log
// refuses it for lack of disk space, 503 with an insufficient-storage problem.
//
// A request with an Idempotency-Key gets the command id (and, for POST, the
// value id) that its key and its content determine (package idempotency),
// and carries the key in the command record; a key used before for another
// request is refused with 422 (keys.go).
package commander

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/httpapi"
	"calculator/idempotency"
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
	keys          Keys     // for Idempotency-Key; nil: no reuse detection
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
	c.submit(w, r, domain.Command{Action: domain.CreateValue, Value: *req.Value})
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
	expected, ok := expectedVersion(w, r)
	if !ok {
		return
	}
	c.submit(w, r, domain.Command{Action: domain.UpdateValue, ValueID: valueID, Operation: op, Value: *req.Value, ExpectedVersion: expected})
}

// submit gives the command its ids, appends it and answers 202 once it is
// durable or, with ?wait=, the outcome once the view has applied it (202 if
// that takes longer than the wait). A CreateValue comes without its value id.
func (c *Commander) submit(w http.ResponseWriter, r *http.Request, cmd domain.Command) {
	wait, ok := parseWait(w, r)
	if !ok {
		return
	}
	key, ok := idempotencyKey(w, r)
	if !ok {
		return
	}
	fp := identify(&cmd, key)
	ctx, cancel := context.WithTimeout(r.Context(), c.appendTimeout)
	defer cancel()
	var reservation idempotency.Reservation
	if key != "" && c.keys != nil {
		var err error
		if reservation, err = c.keys.Claim(ctx, key, fp); err != nil {
			c.refuseClaim(w, r, key, err)
			return
		}
	}
	var awaitOutcome func(context.Context) (outcome.CommandStatus, error)
	if wait > 0 && c.outcomes != nil {
		var stop func()
		awaitOutcome, stop = c.outcomes.Await(cmd.ID) // before the append: no outcome can slip by
		defer stop()
	}
	cmd.Timestamp = c.now().UTC()
	if reservation.Stored {
		c.logger.Debug().Stringer("command_id", cmd.ID).Msg("a repeat of a stored command: not appended again")
	} else if !c.store(ctx, w, r, cmd, key, fp, reservation) {
		return
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

// identify gives cmd its ids: random ones, or, with an Idempotency-Key,
// those that the key and the request determine, whose fingerprint it
// returns.
func identify(cmd *domain.Command, key string) idempotency.Fingerprint {
	if key == "" {
		cmd.ID = uuid.New()
		if cmd.Action == domain.CreateValue {
			cmd.ValueID = uuid.New()
		}
		return idempotency.Fingerprint{}
	}
	fp := idempotency.FingerprintOf(*cmd)
	cmd.ID = fp.CommandID(key)
	if cmd.Action == domain.CreateValue {
		cmd.ValueID = fp.ValueID(key)
	}
	return fp
}

// store appends the command, with its key if it has one, and ends the key's
// reservation. It answers 503 and returns false when the log does not
// confirm the append in time.
func (c *Commander) store(ctx context.Context, w http.ResponseWriter, r *http.Request, cmd domain.Command,
	key string, fp idempotency.Fingerprint, reservation idempotency.Reservation) bool {
	// The debug lines are guarded: their arguments would allocate (a UUID
	// in an interface) for every command even with debug disabled.
	debug := c.logger.Debug().Enabled()
	if debug {
		c.logger.Debug().Stringer("command_id", cmd.ID).Stringer("value_id", cmd.ValueID).Str("action", string(cmd.Action)).
			Str("operation", string(cmd.Operation)).Stringer("value", cmd.Value).Bool("keyed", key != "").Msg("command received")
	}
	msg := eventlog.Message{Key: []byte(cmd.ValueID.String()), Value: cmd.AppendJSON(nil)}
	if key != "" {
		msg.Headers = idempotency.Headers(key, fp)
	}
	err := c.log.Append(ctx, c.topic, msg)
	reservation.Done(err == nil)
	if err != nil {
		if r.Context().Err() == nil { // else the client went away: nobody to answer
			c.logger.Warn().Err(err).Stringer("command_id", cmd.ID).Msg("commands log unavailable; answering 503")
			if errors.Is(err, eventlog.ErrNoSpace) { // refused, nothing stored
				httpapi.Error(w, httpapi.InsufficientStorage, fmt.Sprintf("the disk is full: new commands are refused until there is room; this one was not stored (%v)", err))
			} else {
				httpapi.Error(w, httpapi.LogUnavailable, unavailableDetail(c.appendTimeout, err, key != ""))
			}
		}
		return false
	}
	if debug {
		c.logger.Debug().Stringer("command_id", cmd.ID).Msg("command accepted")
	}
	return true
}

// refuseClaim answers a request whose key could not be reserved.
func (c *Commander) refuseClaim(w http.ResponseWriter, r *http.Request, key string, err error) {
	switch {
	case errors.Is(err, idempotency.ErrKeyReused):
		httpapi.Error(w, httpapi.IdempotencyKeyReused, fmt.Sprintf("the Idempotency-Key %q was used for another request "+
			"(another method, path or body): a retry must repeat its request exactly, and a new request needs a new key", key))
	case errors.Is(err, idempotency.ErrNotReady):
		httpapi.Error(w, httpapi.Replaying, "the idempotency keys are being read from the commands log; retry with the same Idempotency-Key")
	case r.Context().Err() != nil:
		// the client went away; nobody to answer
	default: // the append of the same request by a concurrent retry did not end in time
		httpapi.Error(w, httpapi.LogUnavailable, unavailableDetail(c.appendTimeout, err, true))
	}
}

// unavailableDetail is the detail of a 503 for a command that the log did
// not confirm: it may be stored all the same (on Kafka a message handed to
// the producer is often delivered after the timeout), so the client should
// retry under the same Idempotency-Key.
func unavailableDetail(timeout time.Duration, err error, keyed bool) string {
	detail := fmt.Sprintf("the commands log did not confirm the command within %s (%v). It may have been stored all the same: ", timeout, err)
	if keyed {
		return detail + "retry with the same Idempotency-Key, and it will be applied once"
	}
	return detail + "a retry could then apply it twice. Send an Idempotency-Key header and retry with the same key to make retries safe"
}
