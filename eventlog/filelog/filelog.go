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
// fails with an error naming the file and the byte offset. A lock file keeps
// a second process out of the directory.
package filelog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

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

// Log is the file-backed eventlog.Log. Open it with Open; it is safe for
// concurrent use.
type Log struct {
	dir    string
	lock   *os.File
	logger zerolog.Logger

	mu     sync.Mutex
	topics map[string]*topic

	closed    chan struct{}
	closeOnce sync.Once
	writers   sync.WaitGroup
}

var _ eventlog.Log = (*Log)(nil)

// Open locks dir (creating it if needed), recovers every topic file in it and
// starts its writers. It fails if another process holds the directory, or if
// a topic file is damaged before its tail.
func Open(dir string, logger zerolog.Logger) (*Log, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	l := &Log{
		dir:    dir,
		lock:   lock,
		logger: logger.With().Str("component", "filelog").Logger(),
		topics: make(map[string]*topic),
		closed: make(chan struct{}),
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
		wg.Go(func() { recovered[i], errs[i] = openTopic(path, l.logger.With().Str("topic", name).Logger()) })
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

func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another process (pid %s); stop it or choose another -data-dir",
				dir, strings.TrimSpace(string(owner)))
		}
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
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
	t, err := openTopic(filepath.Join(l.dir, name+fileSuffix), l.logger.With().Str("topic", name).Logger())
	if err != nil {
		return nil, err
	}
	l.startLocked(name, t)
	return t, nil
}

// start registers an opened topic and starts its writer.
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
	f, err := os.Open(t.path)
	if err != nil {
		return fmt.Errorf("open %s: %w", t.path, err)
	}
	defer f.Close()

	next := from[0]
	if next < 0 {
		return fmt.Errorf("follow %s: negative offset %d", name, next)
	}
	signalled := false // whether the last batch delivered carried CaughtUp
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		t.mu.Lock()
		end, wake := int64(len(t.index)), t.synced
		var startPos, endPos int64
		n := min(max(end-next, 0), readBatchRecords)
		if n > 0 {
			startPos, endPos = t.index[next], t.size
			if next+n < end {
				endPos = t.index[next+n]
			}
		}
		t.mu.Unlock()

		if n == 0 {
			if !signalled {
				signalled = true
				if err := fn(eventlog.Batch{CaughtUp: true}); err != nil {
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

		buf := make([]byte, endPos-startPos)
		if _, err := f.ReadAt(buf, startPos); err != nil {
			return fmt.Errorf("read %s at byte %d: %w", t.path, startPos, err)
		}
		records := make([]eventlog.Record, n)
		for i := range records {
			rec, size, err := decodeFrame(buf)
			if err != nil {
				return fmt.Errorf("read %s at byte %d: %w", t.path, startPos+int64(len(buf)), err)
			}
			rec.Offset = next + int64(i)
			records[i] = rec
			buf = buf[size:]
		}
		next += n
		signalled = next == end
		if err := fn(eventlog.Batch{Records: records, CaughtUp: signalled}); err != nil {
			return err
		}
	}
}

// End implements eventlog.Log.
func (l *Log) End(ctx context.Context, name string) (eventlog.Offsets, error) {
	t, err := l.topic(name)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return eventlog.Offsets{0: int64(len(t.index))}, nil
}

// Close implements eventlog.Log.
func (l *Log) Close() error {
	var err error
	l.closeOnce.Do(func() {
		l.mu.Lock()
		close(l.closed)
		l.mu.Unlock()
		l.writers.Wait()
		for _, t := range l.topics {
			err = errors.Join(err, t.file.Close())
		}
		err = errors.Join(err, l.lock.Close())
	})
	return err
}

// topic is one topic file and its writer.
type topic struct {
	path   string
	file   *os.File
	logger zerolog.Logger

	requests   chan *appendRequest
	writerDone chan struct{}
	failed     error        // set by the writer when the file can no longer be trusted
	syncs      atomic.Int64 // fsyncs of the file, for tests and benchmarks of the group commit

	mu     sync.Mutex
	index  []int64       // byte position of each durable record
	size   int64         // bytes durable: the end of the last durable record
	synced chan struct{} // closed (and replaced) after each sync
}

type appendRequest struct {
	msgs []eventlog.Message
	done chan error
}

func openTopic(path string, logger zerolog.Logger) (*topic, error) {
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, os.ErrNotExist)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
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
	index, size, err := recoverFile(f, path, logger)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &topic{
		path:       path,
		file:       f,
		logger:     logger,
		requests:   make(chan *appendRequest, 1024),
		writerDone: make(chan struct{}),
		index:      index,
		size:       size,
		synced:     make(chan struct{}),
	}, nil
}

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

// recoverFile scans the file, returns the index of its intact records and
// cuts off a torn tail.
func recoverFile(f *os.File, path string, logger zerolog.Logger) ([]int64, int64, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	index, good, err := scan(f, info.Size())
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	if good < info.Size() {
		logger.Warn().Str("file", path).Int64("offset", good).Int64("bytes_cut", info.Size()-good).
			Int("records_kept", len(index)).Msg("cutting off a torn record at the tail (an unacknowledged write interrupted by a crash)")
		if err := f.Truncate(good); err != nil {
			return nil, 0, fmt.Errorf("truncate torn tail of %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			return nil, 0, fmt.Errorf("sync %s: %w", path, err)
		}
	}
	return index, good, nil
}

// ErrCorrupt marks a topic file that is damaged before its tail.
var ErrCorrupt = errors.New("damaged record")

// scan returns the byte position of every intact frame in r and the size of
// the intact prefix. A damaged frame followed by an intact one is an error.
func scan(r io.ReaderAt, size int64) (index []int64, good int64, err error) {
	br := bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 1<<20)
	var frame []byte
	for good < size {
		header, err := br.Peek(frameHeaderSize)
		if err != nil {
			break // incomplete header: torn tail, or damage (decided below)
		}
		n := int(uint32(header[0]) | uint32(header[1])<<8 | uint32(header[2])<<16 | uint32(header[3])<<24)
		if n == 0 || n > maxBodySize || int64(n) > size-good-frameHeaderSize {
			break
		}
		if need := frameHeaderSize + n; cap(frame) < need {
			frame = make([]byte, need)
		} else {
			frame = frame[:need]
		}
		if _, err := io.ReadFull(br, frame); err != nil {
			break
		}
		if _, err := checkFrame(frame); err != nil {
			break
		}
		index = append(index, good)
		good += int64(len(frame))
	}
	if good == size {
		return index, good, nil
	}
	if intactFrameAfter(r, good, size) {
		return nil, 0, fmt.Errorf("%w at byte offset %d (after record %d), followed by intact records: "+
			"acknowledged data is damaged; refusing to start (restore the file from a backup, or move it away to start empty)",
			ErrCorrupt, good, len(index)-1)
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
		if _, err := checkFrame(tail[i:]); err == nil {
			return true
		}
	}
	return false
}

// writeLoop is the topic's writer: it owns the file's end. It runs until
// closed, then writes what is still queued and stops.
func (t *topic) writeLoop(closed <-chan struct{}) {
	defer close(t.writerDone)
	var buf []byte
	var group []*appendRequest
	for {
		group = group[:0]
		select {
		case req := <-t.requests:
			group = append(group, req)
		case <-closed:
			for {
				select {
				case req := <-t.requests:
					group = append(group, req)
					continue
				default:
				}
				break
			}
			if len(group) > 0 {
				buf = t.commit(buf, group)
			}
			return
		}
		// Group commit: take whatever else is already waiting.
		size := 0
	gather:
		for size < maxGroupBytes {
			select {
			case req := <-t.requests:
				group = append(group, req)
				for _, m := range req.msgs {
					size += len(m.Key) + len(m.Value) + 32
				}
			default:
				break gather
			}
		}
		buf = t.commit(buf, group)
	}
}

// commit writes and syncs the group's messages, publishes them to readers and
// answers every request in the group.
func (t *topic) commit(buf []byte, group []*appendRequest) []byte {
	buf = buf[:0]
	var positions []int64
	for _, req := range group {
		for _, m := range req.msgs {
			positions = append(positions, t.size+int64(len(buf)))
			buf = appendFrame(buf, m)
		}
	}
	err := t.write(buf)
	if err == nil {
		t.mu.Lock()
		t.index = append(t.index, positions...)
		t.size += int64(len(buf))
		close(t.synced)
		t.synced = make(chan struct{})
		t.mu.Unlock()
	}
	for _, req := range group {
		req.done <- err
	}
	if cap(buf) > 2*maxGroupBytes {
		buf = nil // do not keep one huge group's buffer forever
	}
	return buf
}

func (t *topic) write(buf []byte) error {
	if t.failed != nil {
		return t.failed
	}
	if _, err := t.file.WriteAt(buf, t.size); err != nil {
		// Cut the partial write so the next group starts on a frame
		// boundary; if even that fails, stop trusting the file.
		if terr := t.file.Truncate(t.size); terr != nil {
			t.failed = fmt.Errorf("write %s: %w (and truncate: %v)", t.path, err, terr)
		}
		t.logger.Error().Err(err).Msg("append failed")
		return fmt.Errorf("write %s: %w", t.path, err)
	}
	if err := t.file.Sync(); err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages;
		// nothing written since the last good sync can be trusted.
		t.failed = fmt.Errorf("fsync %s: %w", t.path, err)
		t.logger.Error().Err(err).Msg("fsync failed; the topic refuses further appends until restart")
		return t.failed
	}
	t.syncs.Add(1)
	return nil
}
