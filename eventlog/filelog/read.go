package filelog

import (
	"context"
	"errors"
	"fmt"
	"os"

	"calculator/eventlog"
)

// coalesceGap is how many bytes between two records Read reads through
// rather than making a second read call: records of one value lie close
// together in a topic where few values are busy.
const coalesceGap = 16 << 10

// Read implements eventlog.Log. The file log has one partition, 0.
//
// The topic's index (index.go) holds the byte position of one record in
// every blockRecords, which Follow uses too: 0.125 bytes of memory a
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
	var pos [blockRecords]int64
	for i := 0; i < len(blocks); {
		j := i + 1 // blocks[i:j] are read with one call
		for j < len(blocks) && blocks[j].start-blocks[j-1].end <= coalesceGap {
			j++
		}
		buf := make([]byte, blocks[j-1].end-blocks[i].start)
		if _, err := t.file.ReadAt(buf, blocks[i].start); err != nil {
			if errors.Is(err, os.ErrClosed) {
				return nil, eventlog.ErrClosed
			}
			return nil, fmt.Errorf("read %s at byte %d: %w", t.path, blocks[i].start, err)
		}
		for _, b := range blocks[i:j] {
			data := buf[b.start-blocks[i].start : b.end-blocks[i].start]
			found, errAt, walkErr := framePositions(data, b.records, pos[:])
			for ; len(offsets) > 0 && offsets[0]/blockRecords == b.block; offsets = offsets[1:] {
				k := int(offsets[0] % blockRecords)
				if k >= found {
					return nil, readError(t.path, b.start+errAt, walkErr)
				}
				next := int64(len(data))
				if k+1 < found {
					next = pos[k+1]
				}
				rec, _, err := decodeFrame(data[pos[k]:next])
				if err != nil {
					return nil, readError(t.path, b.start+pos[k], err)
				}
				rec.Offset = offsets[0]
				records = append(records, rec)
			}
		}
		i = j
	}
	return records, nil
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
