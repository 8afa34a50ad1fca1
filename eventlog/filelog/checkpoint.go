package filelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// An index checkpoint is a topic's index (index.go: the byte position of
// the first record of each block of blockRecords) as it was at some point,
// saved beside the topic file as <topic>.index, so that Open checks only the
// records after it instead of reading the whole file. It is only ever a
// cache: a missing, damaged or mismatched checkpoint costs a full scan,
// never a record.
//
//	checkpoint = magic "FLOGIDX\x00" | version (uint32 LE) | crc (uint32 LE) | body
//	body       = records n (uint64 LE) | bytes covered (uint64 LE)
//	             | records a block K (uint32 LE)
//	             | last (the byte position of record n-1, uint64 LE)
//	             | last crc (the checksum field of record n-1, uint32 LE)
//	             | { uvarint size of block j } for j in 0..ceil(n/K)-1
//
// crc is the CRC-32C of body. Block j holds records jK to jK+K-1 (the last
// one fewer, up to n-1) and starts at the sum of the sizes before it; the
// sizes add up to bytes covered. A block of 32 records of a few hundred
// bytes takes 2 or 3 bytes: about 0.07 bytes a record. last and last crc tie
// the checkpoint to the file it was taken of: at Open the frame at last
// must end exactly at bytes covered, be intact and carry that checksum.
//
// Version 1 held the size of every record; a checkpoint of that version is
// passed over like any other it cannot use (the next one written is of
// this version).
const (
	checkpointSuffix  = ".index"
	checkpointVersion = 2
	checkpointHeader  = 8 + 4 + 4
	checkpointFixed   = 8 + 8 + 4 + 8 + 4
	minFrameSize      = frameHeaderSize + 1
	maxFrameSize      = frameHeaderSize + maxBodySize
)

var checkpointMagic = [8]byte{'F', 'L', 'O', 'G', 'I', 'D', 'X', 0}

// When a running log writes a checkpoint in the background: once this many
// records, or this many bytes, were appended to a topic since its last one,
// whichever comes first. A checkpoint rewrites the whole index (about 0.07
// B a record: 700 KB at 10,000,000 records) and costs one fsync, and a crash
// leaves at most 256 MiB (or 1,000,000 records) for the next Open to check
// beyond it. A clean Close writes one too.
const (
	defaultCheckpointRecords = 1_000_000
	defaultCheckpointBytes   = 256 << 20
)

// checkpoint is a decoded index checkpoint.
type checkpoint struct {
	index   sparseIndex // the covered records
	covered int64       // the end of the last covered record
	lastCRC uint32      // the checksum field of the last covered record
}

// encodeCheckpoint returns the checkpoint of the records of index, which
// end at covered, the last with checksum field lastCRC.
func encodeCheckpoint(index sparseIndex, covered int64, lastCRC uint32) []byte {
	b := make([]byte, checkpointHeader+checkpointFixed, checkpointHeader+checkpointFixed+3*len(index.blocks)+16)
	copy(b, checkpointMagic[:])
	binary.LittleEndian.PutUint32(b[8:], checkpointVersion)
	body := b[checkpointHeader:]
	binary.LittleEndian.PutUint64(body, uint64(index.records))
	binary.LittleEndian.PutUint64(body[8:], uint64(covered))
	binary.LittleEndian.PutUint32(body[16:], blockRecords)
	binary.LittleEndian.PutUint64(body[20:], uint64(index.last))
	binary.LittleEndian.PutUint32(body[28:], lastCRC)
	for j := range index.blocks {
		b = binary.AppendUvarint(b, uint64(index.blockEnd(int64(j), covered)-index.blocks[j]))
	}
	binary.LittleEndian.PutUint32(b[12:], crc32.Checksum(b[checkpointHeader:], castagnoli))
	return b
}

// decodeCheckpoint decodes a checkpoint, checking everything it can say
// about itself: its magic, version and checksum, that it covers at least
// one record in blocks of blockRecords, that each block's size is one its
// records can have, that they add up to the bytes covered, and that the
// last record lies in the last block where its size is one a frame can
// have. The index it returns has room to grow by an eighth.
func decodeCheckpoint(b []byte) (checkpoint, error) {
	if len(b) < checkpointHeader+checkpointFixed {
		return checkpoint{}, fmt.Errorf("%d bytes, shorter than a checkpoint's header", len(b))
	}
	if [8]byte(b[:8]) != checkpointMagic {
		return checkpoint{}, errors.New("not an index checkpoint (wrong magic)")
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != checkpointVersion {
		return checkpoint{}, fmt.Errorf("format version %d (this binary reads version %d)", v, checkpointVersion)
	}
	body := b[checkpointHeader:]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[12:]) {
		return checkpoint{}, errors.New("checksum mismatch")
	}
	n := binary.LittleEndian.Uint64(body)
	covered := binary.LittleEndian.Uint64(body[8:])
	if k := binary.LittleEndian.Uint32(body[16:]); k != blockRecords {
		return checkpoint{}, fmt.Errorf("blocks of %d records (this binary's are of %d)", k, blockRecords)
	}
	last := binary.LittleEndian.Uint64(body[20:])
	c := checkpoint{lastCRC: binary.LittleEndian.Uint32(body[28:])}
	sizes := body[checkpointFixed:]
	blocks := (n + blockRecords - 1) / blockRecords
	if n == 0 || blocks > uint64(len(sizes)) { // each size takes a byte at least
		return checkpoint{}, fmt.Errorf("%d records in %d bytes of block sizes", n, len(sizes))
	}
	c.index = sparseIndex{blocks: make([]int64, blocks, blocks+blocks/8), records: int64(n)}
	var pos uint64
	for j := range c.index.blocks {
		size, k := binary.Uvarint(sizes)
		records := uint64(c.index.blockLen(int64(j)))
		if k <= 0 || size < records*minFrameSize || size > records*maxFrameSize {
			return checkpoint{}, fmt.Errorf("block %d: no valid size for %d records", j, records)
		}
		sizes = sizes[k:]
		c.index.blocks[j] = int64(pos)
		pos += size
	}
	if len(sizes) > 0 {
		return checkpoint{}, fmt.Errorf("%d bytes after the last block's size", len(sizes))
	}
	if pos != covered {
		return checkpoint{}, fmt.Errorf("the block sizes add up to %d bytes, the header says %d", pos, covered)
	}
	c.covered = int64(covered)
	// The last record: after the others of its block, and of a frame's size.
	lastBlock := uint64(c.index.blocks[blocks-1])
	before := uint64(c.index.blockLen(int64(blocks-1)) - 1) // records before it in its block
	if last < lastBlock+before*minFrameSize || last > lastBlock+before*maxFrameSize ||
		covered < last+minFrameSize || covered > last+maxFrameSize {
		return checkpoint{}, fmt.Errorf("its last record at byte %d does not fit its block (bytes %d to %d)", last, lastBlock, covered)
	}
	c.index.last = int64(last)
	return c, nil
}

// checkpointPath is the checkpoint file of the topic file at path.
func checkpointPath(path string) string {
	return strings.TrimSuffix(path, fileSuffix) + checkpointSuffix
}

// loadCheckpoint reads the checkpoint of the topic file f (at path, size
// bytes long) and checks it against the file: it must cover no more than the
// file holds, and the frame that ends where it ends must be intact, in this
// binary's format version, and carry the checksum it recorded. It returns
// os.ErrNotExist when there is none, and otherwise why it cannot be used.
func loadCheckpoint(f file, path string, size int64) (checkpoint, error) {
	data, err := os.ReadFile(checkpointPath(path))
	if err != nil {
		return checkpoint{}, err
	}
	c, err := decodeCheckpoint(data)
	if err != nil {
		return checkpoint{}, err
	}
	if c.covered > size {
		return checkpoint{}, fmt.Errorf("it covers %d bytes, the file holds %d", c.covered, size)
	}
	lastPos := c.index.last
	frame := make([]byte, c.covered-lastPos)
	if _, err := f.ReadAt(frame, lastPos); err != nil {
		return checkpoint{}, fmt.Errorf("read its last record at byte offset %d: %w", lastPos, err)
	}
	if n, err := checkFrame(frame); err != nil || n != len(frame) {
		return checkpoint{}, fmt.Errorf("no intact record of %d bytes at byte offset %d, where its last record was", len(frame), lastPos)
	}
	if got := binary.LittleEndian.Uint32(frame[4:]); got != c.lastCRC {
		return checkpoint{}, fmt.Errorf("the record at byte offset %d has checksum %08x, the checkpoint's last record had %08x: another file", lastPos, got, c.lastCRC)
	}
	return c, nil
}

// writeCheckpoint saves the topic's index as its checkpoint, when it holds
// records that the one on disk does not cover: written to a temporary file,
// fsync'd, renamed over the old one and the directory fsync'd, so that a
// crash leaves the old checkpoint or the new one. It covers only records
// the writer has synced (those in the index), and takes the topic's lock
// only to copy the index: its blocks only grow by append, so their first
// positions never change. A topic that failed gets none, and
// none is written that would leave less than the free-space reserve.
func (t *topic) writeCheckpoint(fs fileSystem) error {
	t.checkpointMu.Lock()
	defer t.checkpointMu.Unlock()
	t.mu.Lock()
	index, covered, failed := t.index, t.size, t.failed
	index.blocks = index.blocks[:len(index.blocks):len(index.blocks)]
	t.mu.Unlock()
	if failed != nil || index.records <= t.checkpointed.Load() {
		return nil
	}
	start := time.Now()
	var last [4]byte
	if _, err := t.file.ReadAt(last[:], index.last+4); err != nil {
		return fmt.Errorf("write index checkpoint of %s: read the last record: %w", t.path, err)
	}
	data := encodeCheckpoint(index, covered, binary.LittleEndian.Uint32(last[:]))
	path := checkpointPath(t.path)
	if t.checkpointReserve != nil {
		if err := t.checkpointReserve.room(len(data)); err != nil {
			return fmt.Errorf("write index checkpoint of %s: %w", t.path, err)
		}
	}
	if err := writeFileAtomic(fs, path, data); err != nil {
		return fmt.Errorf("write index checkpoint of %s: %w", t.path, err)
	}
	t.checkpointed.Store(index.records)
	t.checkpointedBytes.Store(covered)
	t.logger.Debug().Str("file", path).Int64("records", index.records).Int64("bytes_covered", covered).
		Int("size", len(data)).Dur("took", time.Since(start)).Msg("index checkpoint written")
	return nil
}

// removeCheckpoint deletes the topic's checkpoint, so that the next Open
// scans the whole file (and finds what made the topic fail).
func (t *topic) removeCheckpoint() {
	t.checkpointMu.Lock()
	defer t.checkpointMu.Unlock()
	path := checkpointPath(t.path)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.logger.Error().Err(err).Str("file", path).Msg("cannot remove the index checkpoint")
	}
}

// writeFileAtomic replaces path with data: a temporary file beside it,
// written and fsync'd, renamed over it, and the directory fsync'd. On
// failure the temporary file is removed and path is as it was.
func writeFileAtomic(fs fileSystem, path string, data []byte) (err error) {
	tmp := path + tmpSuffix
	f, err := fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// tmpSuffix marks a checkpoint being written; one left by a crash is
// removed at Open.
const tmpSuffix = ".tmp"

// checkpointLoop writes the topic's checkpoint whenever the writer says one
// is due, one at a time, until closed. It is the writer's helper: the
// writer only signals (never waits), so a checkpoint never stalls a group
// commit.
func (t *topic) checkpointLoop(fs fileSystem, closed <-chan struct{}) {
	for {
		select {
		case <-t.checkpointDue:
		case <-closed:
			return
		}
		t.mu.Lock()
		due := t.checkpointDueLocked()
		t.mu.Unlock()
		if !due {
			continue
		}
		if err := t.writeCheckpoint(fs); err != nil {
			// Tried again when the next group is committed.
			t.logger.Warn().Err(err).Msg("index checkpoint not written; the next Open checks more of the file")
		}
	}
}

// checkpointDueLocked reports whether enough was appended since the last
// checkpoint for a new one. t.mu is held.
func (t *topic) checkpointDueLocked() bool {
	return t.index.records-t.checkpointed.Load() >= int64(t.checkpointEvery.records) ||
		t.size-t.checkpointedBytes.Load() >= t.checkpointEvery.bytes
}

// signalCheckpoint wakes the topic's checkpointLoop when a checkpoint is
// due. It never blocks: one signal waiting is enough. t.mu is held.
func (t *topic) signalCheckpointLocked() {
	if t.index.records == 0 || !t.checkpointDueLocked() {
		return
	}
	select {
	case t.checkpointDue <- struct{}{}:
	default:
	}
}
