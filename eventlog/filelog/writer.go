package filelog

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/rs/zerolog"

	"calculator/eventlog"
)

// topic is one topic file and its writer.
type topic struct {
	path   string
	file   file
	logger zerolog.Logger
	// reserve, when not nil, refuses the topic's appends that would leave
	// less free space than the reserve (Options.RefuseBelowReserve).
	reserve *reserve

	requests   chan *appendRequest
	writerDone chan struct{}
	syncs      atomic.Int64 // fsyncs of the file, for tests and benchmarks of the group commit
	refusing   bool         // the writer's: whether the last group was refused for the reserve

	// The index checkpoint (checkpoint.go): the writer signals
	// checkpointDue when checkpointEvery is reached since the last one,
	// which covered checkpointed records and checkpointedBytes bytes;
	// checkpointLoop writes it. checkpointMu keeps two writes of the
	// checkpoint file, or a write and its removal, apart.
	checkpointEvery   checkpointEvery
	checkpointReserve *reserve // the free space a checkpoint leaves; nil: no reserve
	checkpointDue     chan struct{}
	checkpointMu      sync.Mutex
	checkpointed      atomic.Int64
	checkpointedBytes atomic.Int64
	// unverified is how many records at the start of the index came from
	// a checkpoint at Open, unread, and unverifiedEnd where they end: the
	// background check reads them (verify.go) and closes verified when it
	// is done (at once when there is nothing to check). checkedAtOpen is
	// how many records Open did read.
	unverified    int
	unverifiedEnd int64
	verified      chan struct{}
	checkedAtOpen int

	mu     sync.Mutex
	index  sparseIndex   // where the durable records are (index.go)
	size   int64         // bytes durable: the end of the last durable record
	synced chan struct{} // closed (and replaced) after each sync
	// failed is set, once, by the writer when the file can no longer be
	// trusted, or by the background check when it finds a damaged record:
	// every later append gets it.
	failed error
}

type appendRequest struct {
	msgs []eventlog.Message
	done chan error
}

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
				t.commit(buf, group)
			}
			return
		}
		// Group commit: take whatever else is already waiting. Yielding
		// first lets goroutines that are about to append (HTTP handlers that
		// are runnable but not running, on a busy machine) join this group
		// rather than wait for the next fsync; it returns at once when
		// nothing else is runnable, so an idle log adds no latency.
		for range 4 {
			n := len(t.requests)
			runtime.Gosched()
			if len(t.requests) == n {
				break
			}
		}
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
	for _, req := range group {
		for _, m := range req.msgs {
			buf = appendFrame(buf, m)
		}
	}
	err := t.write(buf)
	if err == nil {
		t.mu.Lock()
		for p := 0; p < len(buf); {
			t.index.add(t.size + int64(p))
			size, _ := frameSize(buf[p:]) // a frame appendFrame just wrote
			p += size
		}
		t.size += int64(len(buf))
		close(t.synced)
		t.synced = make(chan struct{})
		t.signalCheckpointLocked()
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

// write writes buf at the end of the file and syncs it. On a failed write
// it cuts what part of buf reached the file, so that the next group starts
// on a frame boundary; when that fails too, or the fsync fails, the topic
// fails: the file can no longer be trusted, and every later append gets the
// error until a restart recovers the file.
func (t *topic) write(buf []byte) error {
	if err := t.failure(); err != nil {
		return err
	}
	if err := t.admit(len(buf)); err != nil {
		return err
	}
	if _, err := t.file.WriteAt(buf, t.size); err != nil {
		err = ioError("write", t.path, err)
		if terr := t.file.Truncate(t.size); terr != nil {
			return t.fail(fmt.Errorf("%w; cutting off the partial write failed too (%v): the topic refuses appends until restart", err, terr))
		}
		t.logger.Error().Err(err).Msg("append failed; the partial write was cut off")
		return err
	}
	if err := t.file.Sync(); err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages;
		// nothing written since the last good sync can be trusted.
		return t.fail(fmt.Errorf("%w: the topic refuses appends until restart", ioError("fsync", t.path, err)))
	}
	t.syncs.Add(1)
	return nil
}

// fail records that the topic's file can no longer be trusted and returns
// err, which every later append gets and Healthy reports. The first
// failure stays.
func (t *topic) fail(err error) error {
	t.mu.Lock()
	if t.failed == nil {
		t.failed = err
	}
	t.mu.Unlock()
	t.logger.Error().Err(err).Msg("topic failed")
	return err
}

// failure is why the topic failed, or nil.
func (t *topic) failure() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

// admit checks a group of n bytes against the free-space reserve, when the
// topic has one, and logs when the topic starts and stops refusing appends.
func (t *topic) admit(n int) error {
	if t.reserve == nil {
		return nil
	}
	err := t.reserve.room(n)
	switch {
	case err != nil && !t.refusing:
		t.refusing = true
		t.logger.Error().Err(err).Msg("free space below the reserve: refusing appends to this topic until there is room")
	case err == nil && t.refusing:
		t.refusing = false
		t.logger.Info().Msg("free space above the reserve again: accepting appends")
	}
	return err
}

// ioError wraps err from op on path, and eventlog.ErrNoSpace too when the
// disk is full.
func ioError(op, path string, err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%s %s: %w: %w", op, path, eventlog.ErrNoSpace, err)
	}
	return fmt.Errorf("%s %s: %w", op, path, err)
}
