package idempotency

import (
	"context"
	"maps"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/internal/retry"
)

// Run follows the commands topic from offset 0 (or from where the snapshot
// that DecodeSnapshot read was taken) and records the key of
// every keyed command, until ctx is done; Ready reports true once it has
// read the topic to its end. When the log fails it tries again from where
// it was, after the backoff of retry.Default. It returns nil.
func (ix *Index) Run(ctx context.Context) error {
	backoff := retry.Default.New()
	for {
		ix.mu.Lock()
		from := maps.Clone(ix.next)
		ix.mu.Unlock()
		err := ix.log.Follow(ctx, ix.topic, from, func(b eventlog.Batch) error {
			ix.observe(b.Records)
			if b.CaughtUp && !ix.caughtUp.Load() {
				ix.caughtUp.Store(true)
				ix.logger.Info().Int("keys", ix.Stats().Keys).Msg("idempotency keys read from the commands topic")
			}
			return nil
		})
		if ctx.Err() != nil {
			return nil
		}
		wait := backoff.Next()
		ix.logger.Error().Err(err).Dur("retry_in", wait).Msg("reading the commands topic failed; trying again")
		if retry.Sleep(ctx, wait) != nil {
			return nil
		}
	}
}

// keyed is a keyed command read in the log.
type keyed struct {
	hash, prefix uint64
	rec          *eventlog.Record
	cmd          domain.Command
}

// observe records the keyed commands of a batch. A command without a key
// costs a look at its headers; one with a key is decoded for its time.
func (ix *Index) observe(records []eventlog.Record) {
	var found []keyed
	for i := range records {
		rec := &records[i]
		key, ok := rec.Header(HeaderKey)
		if !ok {
			continue
		}
		if err := CheckKey(string(key)); err != nil {
			ix.logger.Warn().Err(err).Int32("partition", rec.Partition).Int64("offset", rec.Offset).
				Msg("ignoring a command's invalid idempotency key")
			continue
		}
		cmd, err := domain.DecodeCommand(rec.Value)
		if err != nil {
			continue // the processor logs and counts it; it gets no outcome
		}
		hash, _ := rec.Header(HeaderRequestHash) // missing: parseFingerprint says so
		fp, ok := parseFingerprint(hash)
		if !ok { // from a writer that does not send it: the request as this version sees it
			fp = FingerprintOf(cmd)
		}
		found = append(found, keyed{hash: keyHash(&ix.secret, key), prefix: fp.prefix(), rec: rec, cmd: cmd})
	}
	now := ix.now()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, rec := range records {
		ix.next[rec.Partition] = rec.Offset + 1
	}
	for _, k := range found {
		if !ix.table.observe(k.hash, k.prefix, k.cmd.Timestamp, now) {
			ix.logger.Warn().Stringer("command_id", k.cmd.ID).Int32("partition", k.rec.Partition).Int64("offset", k.rec.Offset).
				Msg("a second request under one idempotency key reached the log (sent to two processes at once); the first keeps the key")
		}
	}
}
