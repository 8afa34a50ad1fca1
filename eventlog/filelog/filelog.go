// Package filelog is the embedded backend of eventlog.Log: one append-only
// file per topic in a data directory, with group commit.
//
// Appends go to one writer goroutine per topic. It takes every append that is
// waiting, writes them with one write and one fsync, and only then answers
// them and lets readers see the new records: a returned Append is on disk, and
// a reader never sees a record that a crash could take back. Readers wait on
// a channel that the writer closes after each sync, so they follow new records
// without polling.
//
// Recovery at Open: every topic file is scanned and each frame's checksum
// checked. A damaged frame that nothing intact follows is a torn write from a
// crash (it was never acknowledged): it is cut off with a warning. A damaged
// frame followed by intact frames is corruption of acknowledged data: Open
// fails with an error naming the file and the byte offset. So does an intact
// frame in a format version this binary does not know (ErrUnknownVersion).
//
// Each topic's in-memory index (index.go) holds the byte position of one
// record in blockRecords (32), the first of each block: Read and Follow
// find a record by walking its block's frames from there, which keeps the
// index to a quarter of a byte a record.
//
// The index checkpoint (checkpoint.go) spares Open most of that scan: each
// topic's index is saved beside its file as <topic>.index, covering only
// records already fsync'd, at a clean Close and in the background every
// 1,000,000 records or 256 MiB appended. When Open finds one whose own
// checksum and format version are right, which covers no more than the file
// holds, and whose last covered record (the frame that ends where it ends)
// is intact and carries the checksum it recorded, it adopts its positions
// and scans only the file after it, with the rules above for that tail. Any
// other checkpoint (missing, damaged, of an unknown version, of another or a
// longer file) is logged, removed, and the whole file scanned; a new one is
// written later. Damage among the records a checkpoint covers is then not
// seen by Open: a background check (verify.go), ended by Close and giving
// way to the replay that follows Open, reads them with the same checks, and
// on a damaged record (or one in an unknown format version) fails the topic
// with ErrCorrupt (or ErrUnknownVersion): appends are refused, Healthy says
// why, the error is logged with the file and byte offset, and the checkpoint
// is removed, so that the next Open scans the whole file and refuses it. A
// Read or Follow of a damaged record fails with ErrCorrupt in any case.
//
// A failed write is cut off the file and answered with its error; a failed
// fsync, or a failed write that cannot be cut off, fails the topic: it
// refuses appends until a restart recovers the file. Neither is ever
// acknowledged or seen by a reader. A full disk fails appends with
// eventlog.ErrNoSpace.
//
// Free-space reserve: appends to the topics of Options.RefuseBelowReserve
// (the commands) are refused with eventlog.ErrNoSpace while they would
// leave less than Options.FreeSpaceReserve free, so that the other topics
// (the outcomes of the commands already accepted) keep room. Healthy says
// when that, or a failed topic, is the case.
//
// A lock on the data directory itself (flock, see lock.go) keeps a second
// Open, in this process or another, out of the directory, whatever happens
// to the files in it.
//
// The files: filelog.go (the Log), read.go (Read, by offset), index.go (the
// in-memory index), writer.go (group commit), recover.go (Open's scan),
// checkpoint.go (the index checkpoint), verify.go (its background check),
// frame.go (the format on disk), lock.go, space.go (the reserve), fs.go (the
// file system, the tests' fault-injection seam).
package filelog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"calculator/eventlog"
)

const (
	fileSuffix = ".log"
	lockName   = "LOCK"
	// maxGroupBytes bounds one group commit. A torn write is at most one
	// group, which bounds how much of a file's tail recovery may cut.
	maxGroupBytes = 4 << 20
	// readBatchRecords bounds the records Follow delivers in one batch.
	readBatchRecords = 4096
)

var topicName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// DefaultFreeSpaceReserve is Options.FreeSpaceReserve when it is left zero.
const DefaultFreeSpaceReserve = 64 << 20

// Options configure a Log. The calculator keeps the reserve for the
// outcomes of its commands:
//
//	filelog.OpenWith(dir, filelog.Options{Logger: logger, RefuseBelowReserve: []string{commandsTopic}})
//
// and answers 503 to an append error that wraps eventlog.ErrNoSpace, and
// shows Healthy in /readyz.
type Options struct {
	Logger zerolog.Logger
	// RefuseBelowReserve are the topics whose appends are refused, with an
	// error wrapping eventlog.ErrNoSpace, when they would leave less than
	// FreeSpaceReserve bytes free on the file system: the commands topic,
	// so that every command already accepted still has room for its
	// outcome. Appends to the other topics (the events) are never refused
	// for the reserve; they fail only when the disk is really full.
	RefuseBelowReserve []string
	// FreeSpaceReserve is the free space, in bytes, that appends to the
	// RefuseBelowReserve topics leave for the others. Zero means
	// DefaultFreeSpaceReserve (64 MiB); a negative value turns the check
	// off.
	FreeSpaceReserve int64

	// fs is the file system of the topic files: osFS, or a faulty one in
	// tests.
	fs fileSystem
	// checkpointEvery is how often a topic's index checkpoint is written
	// in the background: the defaults, or smaller in tests.
	checkpointEvery checkpointEvery
}

// checkpointEvery says when an index checkpoint is due: after so many
// records or bytes appended since the last one.
type checkpointEvery struct {
	records int
	bytes   int64
}

// Log is the file-backed eventlog.Log. Open it with Open or OpenWith; it is
// safe for concurrent use.
type Log struct {
	dir    string
	lock   *dirLock
	logger zerolog.Logger
	fs     fileSystem
	// reserve is the free-space check of the RefuseBelowReserve topics, nil
	// when it is off.
	reserve   *reserve
	refusable map[string]bool

	checkpointEvery checkpointEvery

	mu     sync.Mutex
	topics map[string]*topic

	closed    chan struct{}
	closeOnce sync.Once
	writers   sync.WaitGroup
	// background are each topic's checkpointLoop and background check
	// (verify.go).
	background sync.WaitGroup
}

var _ eventlog.Log = (*Log)(nil)

// Open is OpenWith with the default Options and the given logger: no topic
// is refused for the free-space reserve.
func Open(dir string, logger zerolog.Logger) (*Log, error) {
	return OpenWith(dir, Options{Logger: logger})
}

// OpenWith locks dir (creating it if needed), recovers every topic file in
// it and starts its writers. It fails if another process holds the
// directory, or if a topic file is damaged before its tail or holds a
// record in an unknown format version, in the part it checks: all of it, or
// what follows the topic's index checkpoint (see the package comment).
func OpenWith(dir string, opts Options) (*Log, error) {
	if opts.fs == nil {
		opts.fs = osFS{}
	}
	if opts.FreeSpaceReserve == 0 {
		opts.FreeSpaceReserve = DefaultFreeSpaceReserve
	}
	if opts.checkpointEvery == (checkpointEvery{}) {
		opts.checkpointEvery = checkpointEvery{records: defaultCheckpointRecords, bytes: defaultCheckpointBytes}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	l := &Log{
		dir:             dir,
		lock:            lock,
		logger:          opts.Logger.With().Str("component", "filelog").Logger(),
		fs:              opts.fs,
		checkpointEvery: opts.checkpointEvery,
		refusable:       make(map[string]bool, len(opts.RefuseBelowReserve)),
		topics:          make(map[string]*topic),
		closed:          make(chan struct{}),
	}
	for _, name := range opts.RefuseBelowReserve {
		l.refusable[name] = true
	}
	if opts.FreeSpaceReserve > 0 && len(opts.RefuseBelowReserve) > 0 {
		l.reserve = &reserve{fs: opts.fs, dir: dir, bytes: opts.FreeSpaceReserve, logger: l.logger}
	}
	names, err := filepath.Glob(filepath.Join(dir, "*"+fileSuffix))
	if err != nil {
		l.Close()
		return nil, err
	}
	// Recover the topic files side by side: each is read through once, and
	// with large logs that is a good part of a restart.
	recovered := make([]*topic, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, path := range names {
		name := strings.TrimSuffix(filepath.Base(path), fileSuffix)
		if !topicName.MatchString(name) {
			errs[i] = fmt.Errorf("invalid topic name %q", name)
			continue
		}
		wg.Go(func() { recovered[i], errs[i] = l.openTopic(name) })
	}
	wg.Wait()
	for i, t := range recovered {
		if t != nil {
			l.start(strings.TrimSuffix(filepath.Base(names[i]), fileSuffix), t)
		}
	}
	if err := errors.Join(errs...); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// topic returns the named topic, opening (and recovering) or creating its
// file on first use.
func (l *Log) topic(name string) (*topic, error) {
	if !topicName.MatchString(name) {
		return nil, fmt.Errorf("invalid topic name %q", name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.closed:
		return nil, eventlog.ErrClosed
	default:
	}
	if t, ok := l.topics[name]; ok {
		return t, nil
	}
	t, err := l.openTopic(name)
	if err != nil {
		return nil, err
	}
	l.startLocked(name, t)
	return t, nil
}

// start registers an opened topic and starts its writer, its checkpoint
// writer and, when Open adopted an index checkpoint, the background check
// of the records it covers.
func (l *Log) start(name string, t *topic) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.startLocked(name, t)
}

func (l *Log) startLocked(name string, t *topic) {
	l.topics[name] = t
	l.writers.Add(1)
	go func() {
		defer l.writers.Done()
		t.writeLoop(l.closed)
	}()
	l.background.Go(func() { t.checkpointLoop(l.fs, l.closed) })
	if t.unverified > 0 {
		l.background.Go(func() { t.verify(l.closed) })
	} else {
		close(t.verified)
	}
	// A file scanned whole at Open gets a checkpoint soon, not at the next
	// append.
	t.mu.Lock()
	t.signalCheckpointLocked()
	t.mu.Unlock()
}

// Append implements eventlog.Log.
func (l *Log) Append(ctx context.Context, name string, msgs ...eventlog.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	t, err := l.topic(name)
	if err != nil {
		return err
	}
	req := &appendRequest{msgs: msgs, done: make(chan error, 1)}
	select {
	case t.requests <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-l.closed:
		return eventlog.ErrClosed
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.writerDone:
		// The writer answers every request it takes before it stops.
		select {
		case err := <-req.done:
			return err
		default:
			return eventlog.ErrClosed
		}
	}
}

// Follow implements eventlog.Log. The file log has one partition, 0.
func (l *Log) Follow(ctx context.Context, name string, from eventlog.Offsets, fn func(eventlog.Batch) error) error {
	t, err := l.topic(name)
	if err != nil {
		return err
	}
	f, err := l.fs.OpenFile(t.path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", t.path, err)
	}
	defer f.Close()

	next := from[0]
	if next < 0 {
		return fmt.Errorf("follow %s: negative offset %d", name, next)
	}
	t.mu.Lock()
	endAtStart := t.index.records
	t.mu.Unlock()
	// pos is where record next starts: found in its block when there is a
	// record next, and from then on where the last batch ended.
	pos := int64(-1)
	signalled := false // whether the last batch delivered carried CaughtUp
	replayed := false  // whether any batch carried CaughtUp yet
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		t.mu.Lock()
		end, wake := t.index.records, t.synced
		var endPos int64
		n := min(max(end-next, 0), readBatchRecords)
		if n > 0 {
			endPos = t.size
			if next+n < end {
				// End the batch at a block's start, whose position the
				// index holds (readBatchRecords is larger than a block).
				n -= (next + n) % blockRecords
				endPos = t.index.blocks[(next+n)/blockRecords]
			}
		}
		t.mu.Unlock()
		if n > 0 && pos < 0 {
			if pos, err = t.position(f, next); err != nil {
				return err
			}
		}

		if n == 0 {
			if !signalled {
				signalled, replayed = true, true
				if err := fn(eventlog.Batch{Next: eventlog.Offsets{0: next}, CaughtUp: true}); err != nil {
					return err
				}
				continue
			}
			select {
			case <-wake:
			case <-ctx.Done():
				return ctx.Err()
			case <-l.closed:
				return eventlog.ErrClosed
			}
			continue
		}

		buf := make([]byte, endPos-pos)
		if _, err := f.ReadAt(buf, pos); err != nil {
			return fmt.Errorf("read %s at byte %d: %w", t.path, pos, err)
		}
		records := make([]eventlog.Record, n)
		for i := range records {
			rec, size, err := decodeFrame(buf)
			if err != nil {
				return readError(t.path, endPos-int64(len(buf)), err)
			}
			rec.Offset = next + int64(i)
			records[i] = rec
			buf = buf[size:]
		}
		next, pos = next+n, endPos
		// The first CaughtUp comes at the end as it was when Follow began,
		// later ones at the end as it is.
		signalled = next == end || !replayed && next >= endAtStart
		replayed = replayed || signalled
		if err := fn(eventlog.Batch{Records: records, Next: eventlog.Offsets{0: next}, CaughtUp: signalled}); err != nil {
			return err
		}
	}
}

// position finds where record o starts, walking its block from the block's
// start. o is a record of the index.
func (t *topic) position(f file, o int64) (int64, error) {
	t.mu.Lock()
	b := t.blockSpanLocked(o / blockRecords)
	t.mu.Unlock()
	pooled := getBuffer()
	defer putBuffer(pooled)
	buf := pooled.grow(int(b.end - b.start))
	if _, err := f.ReadAt(buf, b.start); err != nil {
		return 0, fmt.Errorf("read %s at byte %d: %w", t.path, b.start, err)
	}
	var pos [blockRecords]int64
	found, errAt, err := framePositions(buf, b.records, pos[:])
	if k := int(o % blockRecords); k < found {
		return b.start + pos[k], nil
	}
	return 0, readError(t.path, b.start+errAt, err)
}

// End implements eventlog.Log.
func (l *Log) End(ctx context.Context, name string) (eventlog.Offsets, error) {
	t, err := l.topic(name)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return eventlog.Offsets{0: t.index.records}, nil
}

// Healthy returns nil when every topic can take appends, and otherwise what
// is wrong, for /readyz and the log:
//   - an error wrapping eventlog.ErrNoSpace while the free space is below
//     Options.FreeSpaceReserve: appends to the RefuseBelowReserve topics
//     are refused (new commands get 503), the other topics go on (the
//     outcomes of commands already accepted are still written);
//   - the error of each topic whose file failed (a failed fsync, or a failed
//     write that could not be cut off): it refuses appends until a restart.
//
// It reads the free space at each call (one statfs).
func (l *Log) Healthy() error {
	l.mu.Lock()
	topics := make([]*topic, 0, len(l.topics))
	for _, name := range slices.Sorted(maps.Keys(l.topics)) {
		topics = append(topics, l.topics[name])
	}
	l.mu.Unlock()
	var errs []error
	if l.reserve != nil {
		errs = append(errs, l.reserve.room(0))
	}
	for _, t := range topics {
		errs = append(errs, t.failure())
	}
	return errors.Join(errs...)
}

// writeCheckpoints saves each topic's index checkpoint, side by side, once
// its writer has stopped. A checkpoint that cannot be written is logged: it
// only makes the next Open longer.
func (l *Log) writeCheckpoints() {
	var wg sync.WaitGroup
	for _, t := range l.topics {
		wg.Go(func() {
			if err := t.writeCheckpoint(l.fs); err != nil {
				t.logger.Warn().Err(err).Msg("index checkpoint not written at close; the next Open checks more of the file")
			}
		})
	}
	wg.Wait()
}

// Close implements eventlog.Log: it stops the writers once they have
// written what was queued, stops the background checks, and saves each
// topic's index checkpoint.
func (l *Log) Close() error {
	var err error
	l.closeOnce.Do(func() {
		l.mu.Lock()
		close(l.closed)
		l.mu.Unlock()
		l.writers.Wait()
		l.background.Wait()
		l.writeCheckpoints()
		for _, t := range l.topics {
			err = errors.Join(err, t.file.Close())
		}
		err = errors.Join(err, l.lock.Close())
	})
	return err
}
