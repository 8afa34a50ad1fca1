package subscriptions

import (
	"time"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/outcome"
)

// Apply takes a batch of events the view has just folded in, in log order:
// it records their outcomes, wakes who waits for them and hands them to the
// streams. It never blocks on a subscriber. The view calls it from its own
// goroutine.
func (h *Hub) Apply(batch []outcome.Applied) {
	if len(batch) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range batch {
		a := &batch[i]
		h.eventsNext[a.Record.Partition] = a.Record.Offset + 1
		id := a.Event.ParentID
		partition, offset, hasPosition := eventlog.CommandPosition(a.Record.Headers)
		// The mirror image of observeCommands: an outcome for a command
		// that Run has read but the table no longer holds belongs to a
		// command older than the table keeps.
		recorded := false
		if slot, known := h.statuses.findOutcome(id); known || !hasPosition || offset >= h.commandsNext[partition] {
			recorded = h.statuses.completeAt(a, slot, known)
		}
		if hasPosition && offset >= h.outcomesNext[partition] {
			h.outcomesNext[partition] = offset + 1
		}
		// The table does not keep the value after the outcome: who waits
		// for it gets it here.
		var value *domain.Value
		if recorded && a.Exists {
			value = &a.Value
		}
		h.wake(id, value)
		if a.Exists && a.Event.Action != domain.CommandRejected {
			for _, q := range h.valueSubs[a.Event.ValueID] {
				if !q.push(&liveBatch{items: batch[i : i+1 : i+1]}) {
					remove(h.valueSubs, a.Event.ValueID, q)
					h.noteDrop()
				}
			}
		}
	}
	if len(h.eventSubs) > 0 {
		lb := &liveBatch{items: batch}
		for q := range h.eventSubs {
			if !q.push(lb) {
				delete(h.eventSubs, q)
				h.noteDrop()
			}
		}
	}
}

// remove takes v out of the list m[k], and k out of m when its list is
// empty.
func remove[K, V comparable](m map[K][]V, k K, v V) {
	list := m[k]
	for i, x := range list {
		if x == v {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(m, k)
	} else {
		m[k] = list
	}
}

// noteDrop counts a dropped subscriber and says so, at most once a second.
func (h *Hub) noteDrop() {
	n := h.dropped.Add(1)
	now := time.Now().UnixNano()
	if last := h.lastDrops.Load(); now-last > int64(time.Second) && h.lastDrops.CompareAndSwap(last, now) {
		h.logger.Warn().Int64("dropped_total", n).Int("buffer", h.opt.Buffer).
			Msg("a subscriber fell behind and is disconnected (it may resume with Last-Event-ID)")
	}
}
