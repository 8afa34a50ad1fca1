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
// It finds each record's byte position in the topic's offset index (an
// int64 per record, which Follow uses too: 8 bytes of memory per record,
// plus what the slice holds in reserve as it grows) and reads the records
// with one ReadAt per run of records no more than coalesceGap bytes apart.
// It reads the topic's own file handle: ReadAt does not move a file
// position, so readers, followers and the writer do not disturb each other.
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
	// The byte range of each record, taken under the lock: the writer
	// appends to the index.
	starts, ends := make([]int64, len(offsets)), make([]int64, len(offsets))
	t.mu.Lock()
	end := int64(len(t.index))
	if last := offsets[len(offsets)-1]; last >= end {
		t.mu.Unlock()
		return nil, fmt.Errorf("read %s: offset %d is past the end (%d): %w", name, last, end, eventlog.ErrNoRecord)
	}
	for i, o := range offsets {
		starts[i], ends[i] = t.index[o], t.size
		if o+1 < end {
			ends[i] = t.index[o+1]
		}
	}
	t.mu.Unlock()

	records := make([]eventlog.Record, 0, len(offsets))
	for i := 0; i < len(offsets); {
		j := i + 1 // offsets[i:j] are read with one call
		for j < len(offsets) && starts[j]-ends[j-1] <= coalesceGap {
			j++
		}
		buf := make([]byte, ends[j-1]-starts[i])
		if _, err := t.file.ReadAt(buf, starts[i]); err != nil {
			if errors.Is(err, os.ErrClosed) {
				return nil, eventlog.ErrClosed
			}
			return nil, fmt.Errorf("read %s at byte %d: %w", t.path, starts[i], err)
		}
		for k := i; k < j; k++ {
			rec, _, err := decodeFrame(buf[starts[k]-starts[i] : ends[k]-starts[i]])
			if err != nil {
				return nil, readError(t.path, starts[k], err)
			}
			rec.Offset = offsets[k]
			records = append(records, rec)
		}
		i = j
	}
	return records, nil
}
