package app

import (
	"context"
	"net/http"
	"time"

	"calculator/httpapi"
)

// The probes. /healthz says the process is up; /readyz says whether every
// part has caught up with the log and the log can be used, and shows each
// part's progress either way.

// healthz answers 200 while the process serves requests.
func (a *App) healthz(w http.ResponseWriter, r *http.Request) {
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 once the view, the processor and the subscriptions
// have replayed the log and the log is usable, 503 with the progress before.
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	view := a.view.Progress()
	logStatus, logErr := a.logStatus()
	proc := map[string]any{"ready": a.processor.Ready(), "events_replayed": a.processor.Stats().EventsReplay}
	own, partitioned := a.processor.Ownership()
	if partitioned {
		proc["group"] = a.cfg.Group
		proc["joined"] = own.Joined
		proc["partitions"] = nonNil(own.Partitions)
		proc["replaying"] = nonNil(own.Replaying)
	}
	// Before the group has given this instance its share, how far behind it
	// is means nothing yet.
	if a.processor.Ready() && (!partitioned || own.Joined) && (logErr == nil || a.kafka == nil) {
		// How many commands wait for an outcome: lets a client (or a test)
		// see the processor catch up after a restart, or, with the disk
		// below the reserve, finish the commands it accepted. (End of an
		// unreachable Kafka would only time out.)
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if end, err := a.log.End(ctx, a.cfg.CommandsTopic); err == nil {
			proc["commands_behind"] = a.processor.Behind(end) // in the partitions it decides
		}
	}
	progress := map[string]any{
		"view": map[string]any{
			"ready": view.Ready, "events_read": view.EventsRead,
			// Offsets, in which Kafka's transaction markers count too.
			"position": view.Position, "end_at_start": view.EndAtStart,
		},
		"processor": proc,
		"log":       logStatus,
	}
	progress["subscriptions"] = map[string]any{"ready": a.subs.Ready(), "statuses": a.subs.Stats().Statuses}
	keys := a.keys.Stats()
	progress["idempotency_keys"] = map[string]any{"ready": a.keys.Ready(), "keys": keys.Keys, "forgotten_early": keys.ForgottenEarly}
	if a.view.Ready() && a.processor.Ready() && a.subs.Ready() && a.keys.Ready() && logErr == nil {
		progress["status"] = "ready"
		httpapi.WriteJSON(w, http.StatusOK, progress)
		return
	}
	detail := "replaying the log"
	if logErr != nil {
		detail = logErr.Error()
	}
	p := httpapi.NewProblem(httpapi.NotReady, detail)
	p.Extra = progress
	httpapi.WriteProblem(w, p)
}

// nonNil makes an empty list a JSON [], not null.
func nonNil[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}
