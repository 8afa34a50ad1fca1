package filelog

import (
	"fmt"
	"sync/atomic"

	"github.com/rs/zerolog"

	"calculator/eventlog"
)

// reserve is the free space that appends to the RefuseBelowReserve topics
// must leave on the file system of the data directory, so that the records
// that answer what those topics accepted (the outcomes of accepted
// commands) always have room.
type reserve struct {
	fs     fileSystem
	dir    string
	bytes  int64
	logger zerolog.Logger
	// unknown is set while the free space cannot be read (logged once).
	unknown atomic.Bool
}

// room returns nil when writing need more bytes leaves the reserve free,
// and otherwise an error wrapping eventlog.ErrNoSpace that says how many
// bytes are free and how many are needed. With need 0 (Healthy) it asks for
// more than the reserve: file systems count free space in blocks, so with
// exactly the reserve free, every append is refused. When the free space
// cannot be read, it lets the write go (a full disk still fails the write
// itself), and logs why once.
func (r *reserve) room(need int) error {
	free, err := r.fs.FreeSpace(r.dir)
	if err != nil {
		if !r.unknown.Swap(true) {
			r.logger.Warn().Err(err).Msg("cannot read the free space; the reserve is not enforced until it can")
		}
		return nil
	}
	r.unknown.Store(false)
	needed := uint64(r.bytes) + uint64(need)
	if need == 0 && free > needed || need > 0 && free >= needed {
		return nil
	}
	if need == 0 {
		return fmt.Errorf("%w: %d bytes free on %s, at or below the reserve of %d bytes kept for outcomes",
			eventlog.ErrNoSpace, free, r.dir, r.bytes)
	}
	return fmt.Errorf("%w: %d bytes free on %s, %d needed (%d for the records and the reserve of %d kept for outcomes)",
		eventlog.ErrNoSpace, free, r.dir, needed, need, r.bytes)
}
