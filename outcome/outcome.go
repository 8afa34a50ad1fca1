// Package outcome is the read side's vocabulary for what becomes of a
// command: its status (accepted, then succeeded or rejected), the JSON in
// which the API reports that status, and an event as the view has applied
// it.
//
// The commander, the view and the subscriptions all speak of these; they do
// not import each other, so the words live here, once.
package outcome

import (
	"github.com/google/uuid"

	"calculator/domain"
	"calculator/eventlog"
)

// Status is where a command is: Accepted once it is in the commands log,
// then Succeeded or Rejected once its outcome is applied to the view (so
// that a GET of the value shows it).
type Status string

// The statuses of a command, as the API spells them.
const (
	Accepted  Status = "accepted"
	Succeeded Status = "succeeded"
	Rejected  Status = "rejected"
)

// Final reports whether the status is the command's outcome, which does
// not change any more.
func (s Status) Final() bool { return s == Succeeded || s == Rejected }

// CommandStatus is what the API says of a command: the body of a 202, of
// GET /commands/{id} and of a ?wait= answer, and the data of the command
// stream's messages.
type CommandStatus struct {
	CommandID uuid.UUID `json:"command_id"`
	ValueID   uuid.UUID `json:"value_id"`
	Status    Status    `json:"status"`
	// EventID is the outcome's event, once there is one.
	EventID *uuid.UUID    `json:"event_id,omitempty"`
	Reason  domain.Reason `json:"reason,omitempty"`  // rejections only
	Message string        `json:"message,omitempty"` // rejections only
	// Value and Version are the value after the event, when it exists.
	Value   *domain.Decimal `json:"value,omitempty"`
	Version int64           `json:"version,omitempty"`
}

// WithoutValue returns s without the value: what GET /commands/{id} and a
// rejection's ?wait= answer say.
func (s CommandStatus) WithoutValue() CommandStatus {
	s.Value, s.Version = nil, 0
	return s
}

// Applied is an event the view has folded in, with the value it left
// behind. The view hands each batch of them, in log order, to its listener
// (the subscriptions).
type Applied struct {
	Record eventlog.Record
	Event  domain.Event
	Value  domain.Value // the value after the event (unchanged by a rejection)
	Exists bool         // whether the value exists after the event
	Replay bool         // true while the view is replaying the log at startup
}
