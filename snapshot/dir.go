package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// FormatVersion is the version of the snapshot format this code writes and
// the only one it reads. A change of the layout of any part increments it:
// a snapshot of another version is skipped, and the start replays the log.
// Version 2: the view's history trails in the order of the values'
// numbers rather than of their ids; the statuses without the value after
// each command (read back from the view when asked). Version 3: the view's
// trails as refs to their completed blocks in the history file
// (history.blocks) and their unfinished block, with the file's id and end.
const FormatVersion = 3

// A snapshot file is a header and a body:
//
//	magic    8 bytes  "CALCSNAP"
//	version  4 bytes  FormatVersion, little-endian
//	length   8 bytes  of the body, little-endian
//	checksum 4 bytes  CRC-32C (Castagnoli) of the body, little-endian
//	body     length bytes
//
// Its name is snapshot-<sequence>.snap, the sequence a 16-digit decimal
// number that grows with every snapshot the directory has held: the
// newest is the one with the highest number.
const (
	magic      = "CALCSNAP"
	headerSize = 8 + 4 + 8 + 4
	prefix     = "snapshot-"
	suffix     = ".snap"
	tmpSuffix  = ".tmp"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors of Load.
var (
	// ErrNone: the directory holds no snapshot (that can be read).
	ErrNone = errors.New("snapshot: none")
	// ErrUnknownVersion: the file was written by another format version.
	ErrUnknownVersion = errors.New("snapshot: unknown format version")
)

// Dir is a directory of snapshot files. It keeps the newest few: a
// snapshot that turns out damaged leaves the one before it to start from.
type Dir struct {
	path   string
	keep   int
	logger zerolog.Logger
	// fsync is the file system's sync, a seam for tests that crash a write.
	fsync func(*os.File) error
	// keepFree is the free space a snapshot must leave (KeepFree); free
	// reads it, a seam for tests.
	keepFree int64
	free     func(path string) (int64, error)
}

// ErrNoSpace is wrapped by the error of a Write that would leave less free
// space than KeepFree asks.
var ErrNoSpace = errors.New("snapshot: not enough free space")

// KeepFree makes Write refuse a snapshot that would leave less than n bytes
// free on the directory's file system (when the log shares it, the room
// its free-space reserve keeps for outcomes is not a snapshot's to take).
func (d *Dir) KeepFree(n int64) { d.keepFree = n }

func freeSpace(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// DefaultKeep is how many snapshots a Dir keeps.
const DefaultKeep = 2

// OpenDir opens (creating it if needed) the directory of snapshots at path
// and deletes what a write that did not finish left there (a crash while
// a snapshot was written leaves a temporary file, never a partial
// snapshot: see Write).
func OpenDir(path string, logger zerolog.Logger) (*Dir, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("snapshot: create %s: %w", path, err)
	}
	d := &Dir{path: path, keep: DefaultKeep, logger: logger, fsync: (*os.File).Sync, free: freeSpace}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("snapshot: read %s: %w", path, err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), tmpSuffix) {
			if err := os.Remove(filepath.Join(path, e.Name())); err != nil {
				return nil, fmt.Errorf("snapshot: remove an unfinished snapshot: %w", err)
			}
			logger.Info().Str("file", e.Name()).Msg("removed a snapshot whose write did not finish")
		}
	}
	return d, nil
}

// NewestSize is the size of the newest snapshot file (0 when there is
// none): about the size of the next, for an encoder to reserve.
func (d *Dir) NewestSize() int64 {
	files, err := d.files()
	if err != nil || len(files) == 0 {
		return 0
	}
	return files[0].Size
}

// Path is the directory's path.
func (d *Dir) Path() string { return d.path }

// File is a snapshot file of a Dir.
type File struct {
	Name     string
	Sequence uint64
	Size     int64
}

// files lists the snapshot files, newest first.
func (d *Dir) files() ([]File, error) {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return nil, fmt.Errorf("snapshot: read %s: %w", d.path, err)
	}
	var files []File
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, suffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, prefix), suffix), 10, 64)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		files = append(files, File{Name: name, Sequence: seq, Size: info.Size()})
	}
	slices.SortFunc(files, func(a, b File) int { return -cmpUint(a.Sequence, b.Sequence) })
	return files, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Write stores body as the newest snapshot and deletes the older ones
// beyond the few a Dir keeps. The body is written to a temporary file,
// synced, renamed to its name and the directory synced: a crash at any
// point leaves either the complete new snapshot or none of it (a
// temporary file that OpenDir deletes), and the older snapshots as they
// were.
func (d *Dir) Write(body []byte) (File, error) {
	files, err := d.files()
	if err != nil {
		return File{}, err
	}
	f := File{Sequence: 1, Size: int64(headerSize + len(body))}
	if d.keepFree > 0 {
		// A free space that cannot be read lets the write go: a full disk
		// still fails it.
		if free, err := d.free(d.path); err == nil && free-f.Size < d.keepFree {
			return File{}, fmt.Errorf("%w: a snapshot of %d bytes would leave %d of the %d to keep free on %s", ErrNoSpace, f.Size, free-f.Size, d.keepFree, d.path)
		}
	}
	if len(files) > 0 {
		f.Sequence = files[0].Sequence + 1
	}
	f.Name = fmt.Sprintf("%s%016d%s", prefix, f.Sequence, suffix)
	header := make([]byte, 0, headerSize)
	header = append(header, magic...)
	header = binary.LittleEndian.AppendUint32(header, FormatVersion)
	header = binary.LittleEndian.AppendUint64(header, uint64(len(body)))
	header = binary.LittleEndian.AppendUint32(header, crc32.Checksum(body, castagnoli))

	final := filepath.Join(d.path, f.Name)
	// The process id keeps two processes that share the directory (which
	// they should not) from writing one temporary file.
	tmp := fmt.Sprintf("%s.%d%s", final, os.Getpid(), tmpSuffix)
	if err := d.writeFile(tmp, header, body); err != nil {
		os.Remove(tmp)
		return File{}, err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return File{}, fmt.Errorf("snapshot: rename %s: %w", tmp, err)
	}
	if err := d.syncDir(); err != nil {
		return File{}, err
	}
	for _, old := range files[min(len(files), d.keep-1):] {
		if err := os.Remove(filepath.Join(d.path, old.Name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			d.logger.Warn().Err(err).Str("file", old.Name).Msg("could not delete an old snapshot")
		}
	}
	return f, nil
}

func (d *Dir) writeFile(path string, header, body []byte) error {
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("snapshot: create %s: %w", path, err)
	}
	_, err = file.Write(header)
	if err == nil {
		_, err = file.Write(body)
	}
	if err == nil {
		err = d.fsync(file)
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("snapshot: write %s: %w", path, err)
	}
	return nil
}

func (d *Dir) syncDir() error {
	dir, err := os.Open(d.path)
	if err != nil {
		return fmt.Errorf("snapshot: open %s: %w", d.path, err)
	}
	defer dir.Close()
	if err := d.fsync(dir); err != nil {
		return fmt.Errorf("snapshot: sync %s: %w", d.path, err)
	}
	return nil
}

// Load finds the newest snapshot that use accepts: it reads each snapshot
// file, newest first, checks its header and checksum, and hands its body
// to use. A file that is damaged, of another format version, or that use
// refuses (its content does not decode, or does not match the log) is
// logged and passed over for the next older one. It returns the file that
// use accepted, or ErrNone.
func (d *Dir) Load(use func(f File, body []byte) error) (File, error) {
	files, err := d.files()
	if err != nil {
		return File{}, err
	}
	for _, f := range files {
		began := time.Now()
		body, err := d.read(f)
		if err == nil {
			err = use(f, body)
		}
		if err == nil {
			d.logger.Debug().Str("file", f.Name).Dur("took", time.Since(began)).Msg("snapshot loaded")
			return f, nil
		}
		d.logger.Warn().Err(err).Str("file", f.Name).Msg("skipping a snapshot that cannot be used")
	}
	return File{}, ErrNone
}

// read returns the body of f after checking its header and checksum.
func (d *Dir) read(f File) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(d.path, f.Name))
	if err != nil {
		return nil, fmt.Errorf("snapshot: read %s: %w", f.Name, err)
	}
	if len(b) < headerSize || !bytes.Equal(b[:8], []byte(magic)) {
		return nil, fmt.Errorf("%w: %s is not a snapshot file", ErrCorrupt, f.Name)
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != FormatVersion {
		return nil, fmt.Errorf("%w: %s has version %d, this program reads version %d", ErrUnknownVersion, f.Name, v, FormatVersion)
	}
	length, sum := binary.LittleEndian.Uint64(b[12:]), binary.LittleEndian.Uint32(b[20:])
	body := b[headerSize:]
	if uint64(len(body)) != length {
		return nil, fmt.Errorf("%w: %s holds %d bytes of body, its header says %d", ErrCorrupt, f.Name, len(body), length)
	}
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: %s fails its checksum", ErrCorrupt, f.Name)
	}
	return body, nil
}
