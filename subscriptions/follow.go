package subscriptions

import (
	"context"
	"maps"

	"github.com/google/uuid"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/internal/retry"
)

// Run follows the commands topic from offset 0 and records every command as
// accepted, until ctx is done. When the log fails it tries again from where
// it was, after the backoff of retry.Default. It returns nil, and closes the
// Hub.
func (h *Hub) Run(ctx context.Context) error {
	defer h.Close()
	backoff := retry.Default.New()
	for {
		h.mu.Lock()
		from := maps.Clone(h.commandsNext)
		h.mu.Unlock()
		err := h.cfg.Log.Follow(ctx, h.cfg.CommandsTopic, from, h.observeCommands)
		if ctx.Err() != nil {
			return nil
		}
		wait := backoff.Next()
		h.logger.Error().Err(err).Dur("retry_in", wait).Msg("reading the commands topic failed; trying again")
		if retry.Sleep(ctx, wait) != nil {
			return nil
		}
	}
}

// observeCommands records a batch of the commands topic.
func (h *Hub) observeCommands(b eventlog.Batch) error {
	type seen struct {
		id, valueID uuid.UUID
		partition   int32
		offset      int64
	}
	commands := make([]seen, 0, len(b.Records))
	for _, rec := range b.Records {
		c, err := domain.DecodeCommand(rec.Value)
		if err != nil {
			continue // the processor logs and counts it; it gets no outcome
		}
		commands = append(commands, seen{c.ID, c.ValueID, rec.Partition, rec.Offset})
	}
	h.mu.Lock()
	for _, c := range commands {
		// A command before the last one with an outcome that is not in the
		// table had its outcome already, and was forgotten since: recording
		// it again would evict a newer one (this happens in the replay of a
		// log longer than the table, when the view runs ahead).
		_, known := h.statuses.findCommand(c.id)
		if !known && c.offset < h.outcomesNext[c.partition] {
			continue
		}
		if !known { // a known command keeps its status: written twice, or its outcome came first
			h.statuses.acceptNew(c.id, c.valueID)
		}
		h.wake(c.id, nil)
	}
	for _, rec := range b.Records {
		h.commandsNext[rec.Partition] = rec.Offset + 1
	}
	close(h.progress)
	h.progress = make(chan struct{})
	h.mu.Unlock()
	if b.CaughtUp && !h.caughtUp.Load() {
		h.caughtUp.Store(true)
		h.logger.Info().Int("statuses", h.Stats().Statuses).Msg("command statuses rebuilt from the commands topic")
	}
	return nil
}

// waitForCommands waits until Run has read the commands topic up to its end
// as of now, or ctx is done: a command that got its 202 before this call is
// then in the table, if it is anywhere.
func (h *Hub) waitForCommands(ctx context.Context) {
	end, err := h.cfg.Log.End(ctx, h.cfg.CommandsTopic)
	if err != nil {
		return
	}
	for {
		h.mu.Lock()
		done, progress := covers(h.commandsNext, end), h.progress
		h.mu.Unlock()
		if done {
			return
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return
		}
	}
}
