package view

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/rs/zerolog"
)

// The history index keeps each trail's completed blocks (markEvery entries,
// a few hundred bytes) in a blockStore and only a blockRef to each in
// memory, so that its memory follows the values rather than the events:
// under steady updates on a fixed set of values, the only per-event growth
// left is a blockRef per markEvery events.
//
// The store is append-only: a block, once added, stays where it is and is
// never overwritten, so a ref is valid for as long as the store's id is the
// same. A file store (WithHistoryFile) is started afresh, with a new id, at
// each start without a snapshot; a start from a snapshot keeps the file and
// appends after its end (Restore checks that the file is the snapshot's).

// blockRef is where a completed block of a trail is in the store.
type blockRef struct {
	// last is the point of the block's last entry: the one before the
	// next block's first, from which that block's deltas start.
	last   point
	pos    int64  // in the store
	length uint32 // of the block, in bytes
	crc    uint32 // CRC-32C of the block's bytes
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maxBlockLen bounds a block's length: markEvery entries of two uvarints
// of at most ten bytes each.
const maxBlockLen = markEvery * 2 * binary.MaxVarintLen64

// storeID tells one store (one fresh start of it) from another: random,
// and in the snapshots that refer to its blocks.
type storeID [16]byte

func (id storeID) String() string { return hex.EncodeToString(id[:]) }

func newStoreID() (id storeID) {
	rand.Read(id[:]) // never fails (crypto/rand)
	return id
}

// blockStore holds the completed blocks of the trails. add is called by
// one goroutine at a time (the view's, under its lock); readAt, end and id
// from any goroutine, also while a block is added; sync from the goroutine
// that encodes a snapshot.
type blockStore interface {
	// add appends a block and returns its position. It does not fail: a
	// block the store cannot write yet is kept in memory, readable, until
	// it can (sync then fails: see fileBlocks).
	add(block []byte) (pos int64)
	// readAt reads len(p) bytes at pos.
	readAt(p []byte, pos int64) error
	// end is the position after the last block added.
	end() int64
	// id is the store's id, or why it has none (a file whose header
	// cannot be read: no snapshot can refer to it).
	id() (storeID, error)
	// sync makes every block added so far durable.
	sync() error
	// reset empties the store and gives it a new id.
	reset() error
	// close releases the store; reads after it fail.
	close() error
}

// blockError is a block of the history index that could not be read back:
// the index cannot answer for that value without it.
type blockError struct {
	pos    int64
	length uint32
	err    error
}

func (e *blockError) Error() string {
	return fmt.Sprintf("the history index's block of %d bytes at byte %d: %v", e.length, e.pos, e.err)
}

func (e *blockError) Unwrap() error { return e.err }

// errBlockChecksum: a block read back is not the block that was written.
var errBlockChecksum = errors.New("the bytes read back fail their checksum")

// readBlock reads the block r refers to and checks it.
func readBlock(s blockStore, r blockRef) ([]byte, error) {
	b := make([]byte, r.length)
	if err := s.readAt(b, r.pos); err != nil {
		return nil, &blockError{pos: r.pos, length: r.length, err: err}
	}
	if sum := crc32.Checksum(b, castagnoli); sum != r.crc {
		return nil, &blockError{pos: r.pos, length: r.length, err: fmt.Errorf("%w (CRC-32C %08x, the index has %08x)", errBlockChecksum, sum, r.crc)}
	}
	return b, nil
}

// memBlocks is a blockStore in memory, for a view without a history file:
// the blocks take as much heap as the trails did before they had blocks.
type memBlocks struct {
	mu     sync.RWMutex
	sid    storeID
	chunks [][]byte // of memChunk bytes each (the last one filling up); a block never straddles two
	size   int64
}

// memChunk is the size of memBlocks' chunks: large against a block, small
// enough not to matter when mostly empty.
const memChunk = 1 << 20

func newMemBlocks() *memBlocks { return &memBlocks{sid: newStoreID()} }

func (s *memBlocks) add(block []byte) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.chunks)
	if n == 0 || len(s.chunks[n-1])+len(block) > memChunk {
		s.chunks = append(s.chunks, make([]byte, 0, memChunk))
		s.size, n = int64(n)*memChunk, n+1
	}
	s.chunks[n-1] = append(s.chunks[n-1], block...)
	pos := s.size
	s.size += int64(len(block))
	return pos
}

func (s *memBlocks) readAt(p []byte, pos int64) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, at := pos/memChunk, pos%memChunk
	if pos < 0 || k >= int64(len(s.chunks)) || at+int64(len(p)) > int64(len(s.chunks[k])) {
		return fmt.Errorf("no block of %d bytes at %d in memory", len(p), pos)
	}
	copy(p, s.chunks[k][at:])
	return nil
}

func (s *memBlocks) end() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.size
}

func (s *memBlocks) id() (storeID, error) { return s.sid, nil }
func (s *memBlocks) sync() error          { return nil }
func (s *memBlocks) close() error         { return nil }

func (s *memBlocks) reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sid, s.chunks, s.size = newStoreID(), nil, 0
	return nil
}

// The history file: a header, then the blocks one after the other, each
// where its ref says (nothing frames them: a block is found only through
// its ref, and checked by its CRC).
//
//	magic    8 bytes  "CALCHIST"
//	version  4 bytes  historyFileVersion, little-endian
//	id      16 bytes  the storeID
//	crc      4 bytes  CRC-32C of the 28 bytes before it
const (
	historyFileMagic   = "CALCHIST"
	historyFileVersion = 1
	historyHeaderSize  = 32
)

// fileBlocks is a blockStore in a file. Each block is written with one
// pwrite at the end (no buffer in between, so it is readable at once) and
// never written again. A block that cannot be written (a full disk) is kept
// in memory and written before the next one; until it is, reads find it in
// memory and sync fails, so that no snapshot refers to it.
//
// The file is locked (flock) while open: one process at a time.
type fileBlocks struct {
	f      blockFile
	path   string
	logger zerolog.Logger

	mu        sync.Mutex
	sid       storeID
	bad       error // why the file found at open has no id (nil: it has)
	size      int64 // where the next block goes
	unwritten []unwrittenBlock
}

// blockFile is what fileBlocks needs of its file: an *os.File (tests wrap
// it to make writes fail).
type blockFile interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Truncate(size int64) error
	Close() error
}

type unwrittenBlock struct {
	pos   int64
	block []byte
}

// openFileBlocks opens (or creates) the history file at path and locks it.
// It keeps what the file holds: Restore checks it against a snapshot, and
// reset starts it afresh.
func openFileBlocks(path string, logger zerolog.Logger) (*fileBlocks, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("history file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("history file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("history file %s is in use by another process; each instance needs its own -data-dir", path)
		}
		return nil, fmt.Errorf("lock history file %s: %w", path, err)
	}
	s := &fileBlocks{f: f, path: path, logger: logger}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("history file: %w", err)
	}
	s.size = info.Size()
	s.sid, s.bad = readHistoryHeader(f, path, s.size)
	return s, nil
}

// readHistoryHeader returns the id in the header of f (at path), size
// bytes long, or why it has none.
func readHistoryHeader(f io.ReaderAt, path string, size int64) (storeID, error) {
	if size < historyHeaderSize {
		return storeID{}, fmt.Errorf("%s is %d bytes long, shorter than its header", path, size)
	}
	h := make([]byte, historyHeaderSize)
	if _, err := f.ReadAt(h, 0); err != nil {
		return storeID{}, fmt.Errorf("read the header of %s: %w", path, err)
	}
	switch {
	case !bytes.Equal(h[:8], []byte(historyFileMagic)):
		return storeID{}, fmt.Errorf("%s is not a history file", path)
	case binary.LittleEndian.Uint32(h[28:]) != crc32.Checksum(h[:28], castagnoli):
		return storeID{}, fmt.Errorf("the header of %s fails its checksum", path)
	case binary.LittleEndian.Uint32(h[8:]) != historyFileVersion:
		return storeID{}, fmt.Errorf("%s has version %d, this program reads version %d", path, binary.LittleEndian.Uint32(h[8:]), historyFileVersion)
	}
	return storeID(h[12:28]), nil
}

func (s *fileBlocks) add(block []byte) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	pos := s.size
	s.size += int64(len(block))
	if s.writeUnwritten() {
		_, err := s.f.WriteAt(block, pos)
		if err == nil {
			return pos
		}
		s.logger.Error().Err(err).Str("file", s.path).Int64("position", pos).
			Msg("cannot write the history index's blocks: keeping them in memory until they can be written; no snapshot is taken meanwhile")
	}
	s.unwritten = append(s.unwritten, unwrittenBlock{pos: pos, block: bytes.Clone(block)})
	return pos
}

// writeUnwritten writes the blocks kept in memory, in order, and reports
// whether none is left. The caller holds mu.
func (s *fileBlocks) writeUnwritten() bool {
	if len(s.unwritten) == 0 {
		return true
	}
	for len(s.unwritten) > 0 {
		u := s.unwritten[0]
		if _, err := s.f.WriteAt(u.block, u.pos); err != nil {
			return false
		}
		s.unwritten = s.unwritten[1:]
	}
	s.unwritten = nil
	s.logger.Info().Str("file", s.path).Msg("the history index's blocks kept in memory are written")
	return true
}

func (s *fileBlocks) readAt(p []byte, pos int64) error {
	s.mu.Lock()
	for _, u := range s.unwritten {
		if u.pos == pos && len(u.block) == len(p) {
			copy(p, u.block)
			s.mu.Unlock()
			return nil
		}
	}
	s.mu.Unlock()
	if _, err := s.f.ReadAt(p, pos); err != nil {
		return fmt.Errorf("read %s: %w", s.path, err)
	}
	return nil
}

func (s *fileBlocks) end() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

func (s *fileBlocks) id() (storeID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sid, s.bad
}

// sync writes what add could not, then fsyncs the file; add is not held
// up by the fsync.
func (s *fileBlocks) sync() error {
	s.mu.Lock()
	written := s.writeUnwritten()
	s.mu.Unlock()
	if !written {
		return fmt.Errorf("history file %s: blocks of the index could not be written", s.path)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", s.path, err)
	}
	return nil
}

// reset truncates the file and writes a header with a new id, durably.
func (s *fileBlocks) reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sid := newStoreID()
	h := make([]byte, 0, historyHeaderSize)
	h = append(h, historyFileMagic...)
	h = binary.LittleEndian.AppendUint32(h, historyFileVersion)
	h = append(h, sid[:]...)
	h = binary.LittleEndian.AppendUint32(h, crc32.Checksum(h, castagnoli))
	if err := s.f.Truncate(0); err != nil {
		return fmt.Errorf("history file: %w", err)
	}
	if _, err := s.f.WriteAt(h, 0); err != nil {
		return fmt.Errorf("history file: %w", err)
	}
	// The new header is durable before any block is written after it: a
	// crash cannot leave the old id over new blocks.
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", s.path, err)
	}
	s.sid, s.bad, s.size, s.unwritten = sid, nil, historyHeaderSize, nil
	return nil
}

func (s *fileBlocks) close() error { return s.f.Close() }
