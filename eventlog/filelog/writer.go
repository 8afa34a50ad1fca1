package filelog

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"calculator/eventlog"
)

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
