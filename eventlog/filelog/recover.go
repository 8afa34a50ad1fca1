package filelog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"
)

// openTopic opens the named topic's file, creating it if needed, and
// recovers it: the returned topic holds the index of its intact records,
// and its writer is not started yet.
func (l *Log) openTopic(name string) (*topic, error) {
	path := filepath.Join(l.dir, name+fileSuffix)
	logger := l.logger.With().Str("topic", name).Logger()
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, os.ErrNotExist)
	f, err := l.fs.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open topic file: %w", err)
	}
	if created {
		// Make the new file's directory entry durable too.
		if err := syncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, err
		}
	}
	// A checkpoint that a crash interrupted.
	if err := os.Remove(checkpointPath(path) + tmpSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
		logger.Warn().Err(err).Msg("cannot remove an unfinished index checkpoint")
	}
	r, err := recoverFile(f, path, logger)
	if err != nil {
		f.Close()
		return nil, err
	}
	t := &topic{
		path:            path,
		file:            f,
		logger:          logger,
		requests:        make(chan *appendRequest, 1024),
		writerDone:      make(chan struct{}),
		checkpointDue:   make(chan struct{}, 1),
		checkpointEvery: l.checkpointEvery,
		// A checkpoint is a cache: it never takes the room kept for the
		// outcomes of accepted commands.
		checkpointReserve: l.reserve,
		index:             r.index,
		size:              r.size,
		synced:            make(chan struct{}),
		unverified:        int(r.unverified),
		unverifiedEnd:     r.covered,
		verified:          make(chan struct{}),
		checkedAtOpen:     int(r.checked),
	}
	if r.unverified > 0 {
		t.checkpointed.Store(r.unverified)
		t.checkpointedBytes.Store(r.covered)
	}
	if l.refusable[name] {
		t.reserve = l.reserve
	}
	return t, nil
}

// syncDir makes the directory's entries (a file just created) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// recovery is what recoverFile found in a topic file.
type recovery struct {
	index sparseIndex // where the intact records are
	size  int64       // the end of the last intact record
	// unverified is how many records at the start of index an index
	// checkpoint vouched for, which Open did not read: the background
	// check's work (verify.go). covered is where they end. Zero when Open
	// checked every record.
	unverified int64
	covered    int64
	checked    int64 // the records Open read and checked
}

// recoverFile finds the topic file's intact records and cuts off a torn
// tail. With a usable index checkpoint it adopts the checkpoint's positions
// and scans only the file after them; otherwise (none, or one that cannot
// be used, which it logs and removes) it scans the whole file.
func recoverFile(f file, path string, logger zerolog.Logger) (recovery, error) {
	info, err := f.Stat()
	if err != nil {
		return recovery{}, err
	}
	var r recovery
	c, err := loadCheckpoint(f, path, info.Size())
	switch {
	case err == nil:
		r.index, r.unverified, r.covered = c.index, c.index.records, c.covered
	case errors.Is(err, os.ErrNotExist):
		if info.Size() > 0 {
			logger.Info().Str("file", path).Msg("no index checkpoint: checking every record")
		}
	default:
		logger.Warn().Err(err).Str("file", checkpointPath(path)).
			Msg("index checkpoint cannot be used: removing it and checking every record (a new one is written later)")
		if err := os.Remove(checkpointPath(path)); err != nil {
			logger.Warn().Err(err).Msg("cannot remove the index checkpoint")
		}
	}
	index, good, err := scan(f, r.covered, info.Size(), r.index)
	if err != nil {
		return recovery{}, fmt.Errorf("%s: %w", path, err)
	}
	r.checked = index.records - r.unverified
	r.index, r.size = index, good
	if r.unverified > 0 {
		logger.Info().Str("file", path).Int64("records_covered", r.unverified).Int64("bytes_covered", r.covered).
			Int64("records_checked", r.checked).Msg("index checkpoint adopted: checked only the records after it (the ones before are checked in the background)")
	}
	if good < info.Size() {
		logger.Warn().Str("file", path).Int64("offset", good).Int64("bytes_cut", info.Size()-good).
			Int64("records_kept", index.records).Msg("cutting off a torn record at the tail (an unacknowledged write interrupted by a crash)")
		if err := f.Truncate(good); err != nil {
			return recovery{}, fmt.Errorf("truncate torn tail of %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			return recovery{}, fmt.Errorf("sync %s: %w", path, err)
		}
	}
	return r, nil
}

// ErrCorrupt marks a topic file that is damaged before its tail: Open's
// error, a failed topic's when the background check finds the damage among
// the records an index checkpoint covers, and a Read's or Follow's of a
// damaged record.
var ErrCorrupt = errors.New("damaged record")

// ErrUnknownVersion marks a topic file holding an intact record (its
// checksum matches) in a format version this binary does not know, written
// by a newer binary: Open refuses the file rather than cut acknowledged
// records as if they were a torn write.
var ErrUnknownVersion = errors.New("record in an unknown format version")

// scan checks the frames of r from byte from, where a frame starts, to size,
// and returns index (of the records before from) with every intact frame
// added, and the end of the intact prefix. A damaged frame followed by an
// intact one is an error, and so is an intact frame in an unknown format
// version, wherever it is.
func scan(r io.ReaderAt, from, size int64, index sparseIndex) (_ sparseIndex, good int64, err error) {
	br := bufio.NewReaderSize(io.NewSectionReader(r, from, size-from), 1<<20)
	good = from
	var frame []byte
	for good < size {
		header, err := br.Peek(frameHeaderSize)
		if err != nil {
			break // incomplete header: torn tail, or damage (decided below)
		}
		need, err := frameSize(header)
		if err != nil || int64(need) > size-good {
			break
		}
		if cap(frame) < need {
			frame = make([]byte, need)
		} else {
			frame = frame[:need]
		}
		if _, err := io.ReadFull(br, frame); err != nil {
			break
		}
		if _, err := checkFrame(frame); err != nil {
			var v versionError
			if errors.As(err, &v) {
				return sparseIndex{}, 0, fmt.Errorf("%w: the record at byte offset %d (record %d) has %v; "+
					"refusing to start rather than drop it (run the binary that wrote it, or a newer one)",
					ErrUnknownVersion, good, index.records, v)
			}
			break
		}
		index.add(good)
		good += int64(len(frame))
	}
	if good == size {
		return index, good, nil
	}
	if intactFrameAfter(r, good, size) {
		return sparseIndex{}, 0, fmt.Errorf("%w at byte offset %d (after record %d), followed by intact records: "+
			"acknowledged data is damaged; refusing to start (restore the file from a backup, or move it away to start empty)",
			ErrCorrupt, good, index.records-1)
	}
	return index, good, nil
}

// intactFrameAfter reports whether an intact frame starts anywhere after the
// damaged one at bad. A torn write is at most one group commit long, so a
// longer damaged tail is always treated as corruption.
func intactFrameAfter(r io.ReaderAt, bad, size int64) bool {
	if size-bad > maxGroupBytes+maxBodySize+frameHeaderSize {
		return true
	}
	tail := make([]byte, size-bad)
	if _, err := r.ReadAt(tail, bad); err != nil && !errors.Is(err, io.EOF) {
		return true
	}
	for i := 1; i+frameHeaderSize < len(tail); i++ {
		if _, err := checkFrame(tail[i:]); err == nil || isVersionError(err) {
			return true
		}
	}
	return false
}

// writeLoop is the topic's writer: it owns the file's end. It runs until
