package app

import (
	"calculator/subscriptions"
	"calculator/view"
)

// toSubscriptions hands the view's applied events to the subscriptions Hub.
// The two packages do not import each other; this is where their types meet.
func toSubscriptions(h *subscriptions.Hub) func([]view.Applied) {
	return func(batch []view.Applied) {
		out := make([]subscriptions.Applied, len(batch))
		for i, a := range batch {
			out[i] = subscriptions.Applied{Record: a.Record, Event: a.Event, Value: a.Value, Exists: a.Exists}
		}
		h.Apply(out)
	}
}
