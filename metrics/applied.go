package metrics

import (
	"calculator/outcome"
)

// Applied returns the view's listener of applied events with the metrics
// taken first: the events applied, the outcomes of the live ones by kind
// and reason, the accept-to-applied latency of the commands TimeAppends saw
// accepted, and the view's position (for its lag). Then it calls next, if
// not nil. Taking them first means that whoever next wakes (a ?wait answer,
// a command stream) finds the metrics already counting its outcome.
func (m *Metrics) Applied(next func([]outcome.Applied)) func([]outcome.Applied) {
	return func(batch []outcome.Applied) {
		m.observeApplied(batch)
		if next != nil {
			next(batch)
		}
	}
}

func (m *Metrics) observeApplied(batch []outcome.Applied) {
	if len(batch) == 0 {
		return
	}
	m.eventsApplied.Add(float64(len(batch)))

	m.viewMu.Lock()
	for i := range batch {
		rec := &batch[i].Record
		m.viewNext[rec.Partition] = rec.Offset + 1
	}
	m.viewMu.Unlock()

	now := m.now()
	t := m.accepted
	t.mu.Lock()
	for i := range batch {
		a := &batch[i]
		if a.Replay {
			continue
		}
		// A command accepted before this process started is not held: its
		// acceptance was not seen here.
		if at, ok := t.take(a.Event.ParentID); ok {
			m.acceptToApplied.Observe((now - at).Seconds())
		}
	}
	t.mu.Unlock()

	for i := range batch {
		a := &batch[i]
		if !a.Replay {
			m.outcomes.WithLabelValues(string(a.Event.Action), string(a.Event.Reason)).Inc()
		}
	}
}
