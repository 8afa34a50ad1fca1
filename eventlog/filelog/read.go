package filelog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"calculator/eventlog"
)

// coalesceGap is how many bytes between two records Read reads through
// rather than making a second read call: records of one value lie close
// together in a topic where few values are busy.
const coalesceGap = 16 << 10

// Read implements eventlog.Log. The file log has one partition, 0.
//
// The topic's index (index.go) holds the byte position of one record in
// every blockRecords, which Follow uses too: 0.25 bytes of memory a
// record. Read reads the blocks that hold the records wanted, with one
// ReadAt per run of blocks no more than coalesceGap bytes apart, and walks
// each block's frames from its start to the records wanted, which it checks
// and decodes. It reads the topic's own file handle: ReadAt does not move a
// file position, so readers, followers and the writer do not disturb each
// other.
func (l *Log) Read(ctx context.Context, name string, partition int32, offsets []int64) ([]eventlog.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := eventlog.CheckReadOffsets(offsets); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(offsets) == 0 {
		return nil, nil
	}
	if partition != 0 {
		return nil, fmt.Errorf("read %s: partition %d (the file log has only partition 0): %w", name, partition, eventlog.ErrNoRecord)
	}
	t, err := l.topic(name)
	if err != nil {
		return nil, err
	}
	// The blocks of the records wanted, taken under the lock: the writer
	// appends to the index.
	var blocks []span
	t.mu.Lock()
	end := t.index.records
	if last := offsets[len(offsets)-1]; last >= end {
		t.mu.Unlock()
		return nil, fmt.Errorf("read %s: offset %d is past the end (%d): %w", name, last, end, eventlog.ErrNoRecord)
	}
	for _, o := range offsets {
		if b := o / blockRecords; len(blocks) == 0 || blocks[len(blocks)-1].block != b {
			blocks = append(blocks, t.blockSpanLocked(b))
		}
	}
	t.mu.Unlock()

	records := make([]eventlog.Record, 0, len(offsets))
	buf := getBuffer()
	defer putBuffer(buf)
	var pos [blockRecords]int64
	var frames []frameSpan
	for i := 0; i < len(blocks); {
		j := i + 1 // blocks[i:j] are read with one call
		for j < len(blocks) && blocks[j].start-blocks[j-1].end <= coalesceGap {
			j++
		}
		run := buf.grow(int(blocks[j-1].end - blocks[i].start))
		if _, err := t.file.ReadAt(run, blocks[i].start); err != nil {
			if errors.Is(err, os.ErrClosed) {
				return nil, eventlog.ErrClosed
			}
			return nil, fmt.Errorf("read %s at byte %d: %w", t.path, blocks[i].start, err)
		}
		// Where the records wanted are in run.
		frames = frames[:0]
		size := 0
		for _, b := range blocks[i:j] {
			base := b.start - blocks[i].start
			block := run[base : b.end-blocks[i].start]
			found, errAt, walkErr := framePositions(block, b.records, pos[:])
			for ; len(offsets) > 0 && offsets[0]/blockRecords == b.block; offsets = offsets[1:] {
				k := int(offsets[0] % blockRecords)
				if k >= found {
					return nil, readError(t.path, b.start+errAt, walkErr)
				}
				end := int64(len(block))
				if k+1 < found {
					end = pos[k+1]
				}
				frames = append(frames, frameSpan{offset: offsets[0], from: base + pos[k], to: base + end})
				size += int(end - pos[k])
			}
		}
		// The records point into a copy of their frames only, so that the
		// blocks' buffer is used again.
		out := make([]byte, size)
		for _, f := range frames {
			n := copy(out, run[f.from:f.to])
			rec, _, err := decodeFrame(out[:n:n])
			if err != nil {
				return nil, readError(t.path, blocks[i].start+f.from, err)
			}
			rec.Offset = f.offset
			records = append(records, rec)
			out = out[n:]
		}
		i = j
	}
	return records, nil
}

// frameSpan is where the frame of the record at offset lies in a buffer.
type frameSpan struct {
	offset   int64
	from, to int64
}

// blockBuffer is a buffer that blocks are read into, kept in a pool: most
// of what Read reads is walked past, not returned, and allocating it for
// each Read made a Read of one record several times as slow (the garbage
// collector's work).
type blockBuffer struct{ b []byte }

// maxPooledBuffer bounds the buffers the pool keeps: a larger one (a read
// of a long run of blocks) is left to the garbage collector.
const maxPooledBuffer = 1 << 20

var blockBuffers = sync.Pool{New: func() any { return new(blockBuffer) }}

func getBuffer() *blockBuffer { return blockBuffers.Get().(*blockBuffer) }

func putBuffer(b *blockBuffer) {
	if cap(b.b) <= maxPooledBuffer {
		blockBuffers.Put(b)
	}
}

// grow returns the buffer's first n bytes, growing it when it is shorter.
func (b *blockBuffer) grow(n int) []byte {
	if cap(b.b) < n {
		b.b = make([]byte, n)
	}
	return b.b[:n]
}

// span is where block block of a topic lies in its file, and how many
// records it holds.
type span struct {
	block      int64
	start, end int64
	records    int
}

// blockSpanLocked is where block b lies. t.mu is held.
func (t *topic) blockSpanLocked(b int64) span {
	return span{block: b, start: t.index.blocks[b], end: t.index.blockEnd(b, t.size), records: t.index.blockLen(b)}
}
