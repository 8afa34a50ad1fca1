package filelog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"calculator/eventlog"
	"calculator/internal/testlog"
)

// variedMessages are n messages of sizes from a few bytes to 20 KB, some
// with headers: blocks of very different lengths, some further apart than
// coalesceGap and some closer.
func variedMessages(n int) []eventlog.Message {
	msgs := make([]eventlog.Message, n)
	for i := range msgs {
		size := 1 + i*i%97
		if i%29 == 0 {
			size = 20_000
		}
		msgs[i] = eventlog.Message{Key: fmt.Appendf(nil, "key-%d", i%5), Value: bytes.Repeat([]byte{byte('a' + i%26)}, size)}
		if i%4 == 0 {
			msgs[i].Headers = []eventlog.Header{{Key: "n", Value: fmt.Appendf(nil, "%d", i)}}
		}
	}
	return msgs
}

// scanRecords decodes a topic file frame after frame: what Read and Follow
// must give.
func scanRecords(t *testing.T, data []byte) []eventlog.Record {
	t.Helper()
	var recs []eventlog.Record
	for pos := 0; pos < len(data); {
		rec, size, err := decodeFrame(data[pos:])
		if err != nil {
			t.Fatalf("frame at %d: %v", pos, err)
		}
		rec.Offset = int64(len(recs))
		recs = append(recs, rec)
		pos += size
	}
	return recs
}

// offsetSets are sets of offsets to read from a topic of n records: the
// first and last of each block, runs across blocks, the whole topic, the
// last record alone, and random ones.
func offsetSets(n int64) [][]int64 {
	var sets [][]int64
	var firstAndLast, all []int64
	for b := int64(0); b*blockRecords < n; b++ {
		first, last := b*blockRecords, min((b+1)*blockRecords, n)-1
		firstAndLast = append(firstAndLast, first)
		if last != first {
			firstAndLast = append(firstAndLast, last)
		}
		sets = append(sets, []int64{first}, []int64{last}, []int64{first, last})
	}
	for o := range n {
		all = append(all, o)
	}
	sets = append(sets, firstAndLast, all, []int64{n - 1}, []int64{0, n - 1},
		[]int64{blockRecords - 2, blockRecords - 1, blockRecords, blockRecords + 1}, // across a block's end
		[]int64{1, 2*blockRecords + 3, 2*blockRecords + 4, n - 2})
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		var set []int64
		for o := range n {
			if rng.IntN(8) == 0 {
				set = append(set, o)
			}
		}
		if len(set) > 0 {
			sets = append(sets, set)
		}
	}
	return sets
}

// Read of any set of offsets gives what a straight scan of the file gives,
// on a topic of records of varied sizes: while it is written, after a
// reopen with its checkpoint, and after a reopen without one.
func TestReadAnyOffsetsIsTheScan(t *testing.T) {
	msgs := variedMessages(5*blockRecords + 7)
	dir := t.TempDir()
	l := openT(t, dir)
	for i := 0; i < len(msgs); i += 1 + i%11 {
		if err := l.Append(context.Background(), "t", msgs[i:min(i+1+i%11, len(msgs))]...); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "t.log")
	want := scanRecords(t, readFile(t, path))
	if len(want) != len(msgs) {
		t.Fatalf("the file holds %d records, want %d", len(want), len(msgs))
	}
	checkReads := func(t *testing.T, l *Log) {
		t.Helper()
		for _, offsets := range offsetSets(int64(len(msgs))) {
			got, err := l.Read(context.Background(), "t", 0, offsets)
			if err != nil {
				t.Fatalf("Read(%v): %v", offsets, err)
			}
			var w []eventlog.Record
			for _, o := range offsets {
				w = append(w, want[o])
			}
			if !reflect.DeepEqual(got, w) {
				t.Fatalf("Read(%v) is not what a scan of the file gives", offsets)
			}
		}
		end := int64(len(msgs))
		for _, offsets := range [][]int64{{end}, {0, end}, {end - 1, end + blockRecords}} {
			_, err := l.Read(context.Background(), "t", 0, offsets)
			if !errors.Is(err, eventlog.ErrNoRecord) || !strings.Contains(err.Error(), fmt.Sprintf("offset %d is past the end (%d)", offsets[len(offsets)-1], end)) {
				t.Errorf("Read(%v) = %v, want offset %d past the end (%d), ErrNoRecord", offsets, err, offsets[len(offsets)-1], end)
			}
		}
	}
	t.Run("written", func(t *testing.T) { checkReads(t, l) })
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	plain := t.TempDir()
	writeFile(t, filepath.Join(plain, "t.log"), readFile(t, path))
	t.Run("reopened with the checkpoint", func(t *testing.T) {
		l := openT(t, dir)
		checkOpen(t, l, len(msgs), 0, valuesOf(want))
		checkReads(t, l)
	})
	t.Run("reopened without a checkpoint", func(t *testing.T) {
		l := openT(t, plain)
		checkOpen(t, l, 0, len(msgs), valuesOf(want))
		checkReads(t, l)
	})
}

// Follow from every offset of a topic of a few blocks gives exactly the
// records from there on, with and without a checkpoint.
func TestFollowFromEveryOffset(t *testing.T) {
	msgs := variedMessages(3*blockRecords + 5)
	dir := t.TempDir()
	l := openT(t, dir)
	if err := l.Append(context.Background(), "t", msgs...); err != nil {
		t.Fatal(err)
	}
	want := scanRecords(t, readFile(t, filepath.Join(dir, "t.log")))
	check := func(t *testing.T, l *Log) {
		t.Helper()
		for from := range len(want) + 1 {
			if got := followFrom(t, l, int64(from)); len(got) != len(want)-from || len(got) > 0 && !reflect.DeepEqual(got, want[from:]) {
				t.Fatalf("Follow from %d gave %d records, want the %d from there, or they differ", from, len(got), len(want)-from)
			}
		}
	}
	t.Run("written", func(t *testing.T) { check(t, l) })
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	t.Run("reopened with the checkpoint", func(t *testing.T) { check(t, openT(t, dir)) })
}

// A follower's batches end at a block's start (where the index knows the
// byte position) or at the end, however far from a block's start it began,
// and a follower that starts past the end gets the records from its offset
// once they are appended.
func TestFollowBatchesAcrossBlocks(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	const n = 2*readBatchRecords + 100
	batch := make([]eventlog.Message, n)
	for i := range batch {
		batch[i] = eventlog.Message{Value: fmt.Appendf(nil, "v%d", i)}
	}
	if err := l.Append(context.Background(), "t", batch...); err != nil {
		t.Fatal(err)
	}
	for _, from := range []int64{0, 1, blockRecords - 1, blockRecords, readBatchRecords - 1, readBatchRecords + 1, n - 1, n} {
		next := from
		err := l.Follow(context.Background(), "t", eventlog.Offsets{0: from}, func(b eventlog.Batch) error {
			for _, r := range b.Records {
				if r.Offset != next || string(r.Value) != fmt.Sprintf("v%d", next) {
					return fmt.Errorf("record %d (%q) where %d was due", r.Offset, r.Value, next)
				}
				next++
			}
			if b.Next[0] != next {
				return fmt.Errorf("batch's Next %d after record %d", b.Next[0], next-1)
			}
			if next != n && next%blockRecords != 0 {
				return fmt.Errorf("a batch ends at %d, neither a block's start nor the end", next)
			}
			if b.CaughtUp {
				return eventlog.ErrStopFollowing
			}
			return nil
		})
		if !errors.Is(err, eventlog.ErrStopFollowing) || next != n {
			t.Fatalf("Follow from %d: %v, up to %d of %d", from, err, next, n)
		}
	}

	// From past the end: nothing until the records up to there exist.
	from := int64(n + blockRecords + 3)
	got := make(chan eventlog.Record, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- l.Follow(ctx, "t", eventlog.Offsets{0: from}, func(b eventlog.Batch) error {
			if len(b.Records) > 0 {
				got <- b.Records[0]
				return eventlog.ErrStopFollowing
			}
			return nil
		})
	}()
	more := make([]eventlog.Message, from-n+2)
	for i := range more {
		more[i] = eventlog.Message{Value: fmt.Appendf(nil, "v%d", n+i)}
	}
	if err := l.Append(context.Background(), "t", more...); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, eventlog.ErrStopFollowing) {
		t.Fatalf("Follow from past the end: %v", err)
	}
	if r := <-got; r.Offset != from || string(r.Value) != fmt.Sprintf("v%d", from) {
		t.Fatalf("Follow from %d began with record %d (%q)", from, r.Offset, r.Value)
	}
}

// A damaged length field inside a block does not lose the block's other
// records: Read finds them as the chain of intact frames that ends where
// the block does (with a checkpoint, Open never read the block). The
// damaged record's own read fails at its byte offset, as before; with a
// second damaged length the records after the first cannot be found, and
// their read fails naming it.
func TestDamagedLengthInABlock(t *testing.T) {
	const n = 2*blockRecords + 3
	vs := values(n)
	for _, damaged := range [][]int{{10}, {0}, {blockRecords - 1}, {blockRecords + 5}, {10, 20}} {
		t.Run(fmt.Sprint(damaged), func(t *testing.T) {
			dir, path, data, at := writtenLog(t, vs...)
			for _, k := range damaged {
				data[at[k]]-- // the length one byte short
			}
			writeFile(t, path, data)
			l := openT(t, dir)
			for o := range int64(n) {
				recs, err := l.Read(context.Background(), "t", 0, []int64{o})
				switch {
				case len(damaged) == 2 && o > int64(damaged[0]) && o < blockRecords:
					if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("at byte %d", at[damaged[0]])) {
						t.Errorf("Read of record %d after two damaged lengths = %v, want ErrCorrupt at byte %d", o, err, at[damaged[0]])
					}
				case slices.Contains(damaged, int(o)):
					if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("at byte %d", at[o])) {
						t.Errorf("Read of damaged record %d = %v, want ErrCorrupt at byte %d", o, err, at[o])
					}
				default:
					if err != nil || len(recs) != 1 || string(recs[0].Value) != vs[o] || recs[0].Offset != o {
						t.Errorf("Read of intact record %d = %v, %v", o, recs, err)
					}
				}
			}
			if len(damaged) == 1 {
				if from := int64(damaged[0] + 1); from < n {
					if got := followFrom(t, l, from); len(got) != n-int(from) || string(got[0].Value) != vs[from] {
						t.Errorf("Follow from %d, after the damaged record: %d records", from, len(got))
					}
				}
			}
		})
	}
}

// encodeCheckpointV1 is the checkpoint as format version 1 wrote it: the
// size of every record.
func encodeCheckpointV1(positions []int64, covered int64, last uint32) []byte {
	b := make([]byte, checkpointHeader+8+8+4)
	copy(b, checkpointMagic[:])
	binary.LittleEndian.PutUint32(b[8:], 1)
	body := b[checkpointHeader:]
	binary.LittleEndian.PutUint64(body, uint64(len(positions)))
	binary.LittleEndian.PutUint64(body[8:], uint64(covered))
	binary.LittleEndian.PutUint32(body[16:], last)
	for i, pos := range positions {
		next := covered
		if i+1 < len(positions) {
			next = positions[i+1]
		}
		b = binary.AppendUvarint(b, uint64(next-pos))
	}
	binary.LittleEndian.PutUint32(b[12:], crc32.Checksum(b[checkpointHeader:], castagnoli))
	return b
}

// A checkpoint of format version 1 (a position for each record), which
// the binary before this one wrote, is passed over: Open checks every
// record and the next Close writes one of this version, which the next
// Open adopts.
func TestCheckpointVersion1IsPassedOver(t *testing.T) {
	vs := values(2*blockRecords + 1)
	dir, _, data, positions := writtenLog(t, vs...)
	last := positions[len(positions)-1]
	writeFile(t, filepath.Join(dir, "t"+checkpointSuffix), encodeCheckpointV1(positions, int64(len(data)), crcField(data, last)))

	var logs testlog.Buffer
	l := openWith(t, dir, Options{Logger: zerolog.New(&logs)})
	checkOpen(t, l, 0, len(vs), vs)
	if !strings.Contains(logs.String(), "index checkpoint cannot be used") || !strings.Contains(logs.String(), "format version 1") {
		t.Errorf("the log does not say the version 1 checkpoint was passed over:\n%s", logs.String())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := decodeCheckpoint(readFile(t, filepath.Join(dir, "t"+checkpointSuffix)))
	if err != nil || c.index.records != int64(len(vs)) || c.index.last != last {
		t.Fatalf("the checkpoint Close wrote: %+v, %v", c, err)
	}
	checkOpen(t, openT(t, dir), len(vs), 0, vs)
}

// The index costs less than a byte of heap a record (a position for each
// record cost 8 bytes, and up to a quarter more in the slice's reserve):
// measured as the live heap before and after appending 1,000,000 small
// records, and as the index's own size.
func TestIndexHeapPerRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("appends 1,000,000 records")
	}
	const records, batch = 1_000_000, 10_000
	l := openT(t, t.TempDir())
	msgs := make([]eventlog.Message, batch)
	for i := range msgs {
		msgs[i] = eventlog.Message{Value: []byte("v")}
	}
	if err := l.Append(context.Background(), "t", msgs[:1]...); err != nil { // the topic and its writer
		t.Fatal(err)
	}
	before := liveHeap()
	for range records / batch {
		if err := l.Append(context.Background(), "t", msgs...); err != nil {
			t.Fatal(err)
		}
	}
	grown := liveHeap() - before
	tp := l.topics["t"]
	tp.mu.Lock()
	index := int64(cap(tp.index.blocks)) * 8
	n := tp.index.records
	tp.mu.Unlock()
	t.Logf("%d records: the live heap grew by %d bytes (%.3f a record), the index holds %d bytes (%.3f a record)",
		n, grown, float64(grown)/records, index, float64(index)/float64(n))
	if n != records+1 {
		t.Fatalf("the topic holds %d records, want %d", n, records+1)
	}
	if per := float64(index) / float64(n); per >= 1 {
		t.Errorf("the index holds %.3f bytes a record, want less than 1", per)
	}
	if per := float64(grown) / records; per >= 1 {
		t.Errorf("the live heap grew by %.3f bytes a record, want less than 1", per)
	}
}

// liveHeap is the heap in use after a collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// The background check walks the frames the checkpoint covers and finds
// each block where the checkpoint says it starts. A file whose first two
// records were made one (the same bytes in all, the same last record, so
// that Open adopts the checkpoint) has its blocks elsewhere: the topic
// fails naming the byte offset.
func TestBackgroundCheckFindsABlockMoved(t *testing.T) {
	vs := values(2*blockRecords + 3)
	dir, path, data, at := writtenLog(t, vs...)
	// One frame as long as the first two, then the rest as they were.
	merged := eventlog.Message{Key: []byte("k"), Value: bytes.Repeat([]byte("m"), int(at[2])-frameHeaderSize-4)}
	edited := append(appendFrame(nil, merged), data[at[2]:]...)
	if len(edited) != len(data) {
		t.Fatalf("the edited file is %d bytes, the original %d", len(edited), len(data))
	}
	writeFile(t, path, edited)

	l := openT(t, dir)
	checkOpenCounts(t, l, len(vs), 0)
	waitVerified(t, l)
	moved := at[blockRecords+1] // where the edited file's record 32 starts
	health := l.Healthy()
	if !errors.Is(health, ErrCorrupt) || !strings.Contains(health.Error(), fmt.Sprintf("byte offset %d", moved)) ||
		!strings.Contains(health.Error(), fmt.Sprintf("block 1 start at %d", at[blockRecords])) {
		t.Fatalf("Healthy() = %v, want ErrCorrupt at byte offset %d, where block 1 should start at %d", health, moved, at[blockRecords])
	}
}

// checkOpenCounts checks how many records of topic t Open took from a
// checkpoint unread and how many it checked.
func checkOpenCounts(t *testing.T, l *Log, unverified, checked int) {
	t.Helper()
	tp, err := l.topic("t")
	if err != nil {
		t.Fatal(err)
	}
	if tp.unverified != unverified || tp.checkedAtOpen != checked {
		t.Errorf("Open took %d records from the checkpoint and checked %d, want %d and %d", tp.unverified, tp.checkedAtOpen, unverified, checked)
	}
}

// writtenLog writes vs to topic t of a log in a new directory and closes
// it, and returns the directory, the topic file's path, its bytes and
// where each record starts in it.
func writtenLog(t *testing.T, vs ...string) (dir, path string, data []byte, positions []int64) {
	t.Helper()
	dir = t.TempDir()
	writeLog(t, dir, vs...)
	path = filepath.Join(dir, "t.log")
	data = readFile(t, path)
	return dir, path, data, framePositionsOf(t, data)
}
