package view

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"calculator/decided"
	"calculator/eventlog/filelog"
	"calculator/internal/await"
	"calculator/internal/loggen"
	"calculator/snapshot"
)

// A history file is one process's: a second open of it (here in the same
// process, as flock works per open file) fails and says why.
func TestHistoryFileIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "history.blocks") // the directory is made
	first, err := openFileBlocks(path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openFileBlocks(path, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("a second open: %v, want in use", err)
	}
	first.close()
	second, err := openFileBlocks(path, zerolog.Nop())
	if err != nil {
		t.Fatalf("an open after the first closed: %v", err)
	}
	second.close()
}

// A store keeps its blocks at the positions add returned, readable at
// once; reset starts it afresh with another id; a file store opened again
// has the same id and end.
func TestBlockStores(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s := open()
			id, err := s.id()
			if err != nil {
				t.Fatal(err)
			}
			var positions []int64
			for i := range 100 {
				b := []byte(strings.Repeat(string(rune('a'+i%26)), 1+i*7))
				pos := s.add(b)
				got := make([]byte, len(b))
				if err := s.readAt(got, pos); err != nil || string(got) != string(b) {
					t.Fatalf("block %d at %d: read %q, %v", i, pos, got, err)
				}
				positions = append(positions, pos)
			}
			for i := 1; i < len(positions); i++ {
				if positions[i] < positions[i-1]+int64(1+(i-1)*7) {
					t.Fatalf("block %d at %d overlaps the one before at %d", i, positions[i], positions[i-1])
				}
			}
			if err := s.sync(); err != nil {
				t.Fatal(err)
			}
			if f, ok := s.(*fileBlocks); ok {
				end := s.end()
				f.close()
				again, err := openFileBlocks(f.path, zerolog.Nop())
				if err != nil {
					t.Fatal(err)
				}
				defer again.close()
				if got, err := again.id(); err != nil || got != id || again.end() != end {
					t.Fatalf("opened again: id %s (%v), end %d; want %s, %d", got, err, again.end(), id, end)
				}
				s = again
			}
			if err := s.reset(); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.id(); got == id {
				t.Fatal("reset kept the id")
			}
			if err := s.readAt(make([]byte, 10), positions[50]); err == nil {
				t.Fatal("a block of before the reset still reads")
			}
		})
	}
}

// failingFile is a history file whose writes fail while fail is set (a
// full disk).
type failingFile struct {
	blockFile
	fail atomic.Bool
}

func (f *failingFile) WriteAt(b []byte, off int64) (int, error) {
	if f.fail.Load() {
		return 0, syscall.ENOSPC
	}
	return f.blockFile.WriteAt(b, off)
}

// Blocks that cannot be written stay readable in memory, and sync fails
// (so no snapshot refers to them) until they are written, before the next
// block, once writes succeed again; then the file holds every block where
// its ref says.
func TestHistoryFileWriteFailure(t *testing.T) {
	s := newFileStore(t)
	file := &failingFile{blockFile: s.f}
	s.f = file
	type written struct {
		pos   int64
		block []byte
	}
	var blocks []written
	add := func(i int) {
		b := []byte(strings.Repeat(string(rune('a'+i)), 100+i))
		blocks = append(blocks, written{s.add(b), b})
	}
	readAll := func(s blockStore) {
		t.Helper()
		for i, w := range blocks {
			got := make([]byte, len(w.block))
			if err := s.readAt(got, w.pos); err != nil || string(got) != string(w.block) {
				t.Fatalf("block %d at %d: %q, %v; want %q", i, w.pos, got, err, w.block)
			}
		}
	}
	add(0)
	file.fail.Store(true)
	add(1)
	add(2)
	readAll(s)
	if err := s.sync(); err == nil {
		t.Fatal("sync succeeded with blocks not written")
	}
	file.fail.Store(false)
	add(3)
	readAll(s)
	if len(s.unwritten) != 0 {
		t.Fatalf("%d blocks still in memory after a write succeeded", len(s.unwritten))
	}
	if err := s.sync(); err != nil {
		t.Fatal(err)
	}
	file.fail.Store(true)
	add(4)
	file.fail.Store(false)
	if err := s.sync(); err != nil { // sync writes them too
		t.Fatal(err)
	}
	s.close()
	again, err := openFileBlocks(s.path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer again.close()
	readAll(again)
}

// viewSnapshot folds a log with long histories into a view whose history
// file is at path, stops it, and returns a snapshot of it (the fold and
// the view's part).
func viewSnapshot(t *testing.T, log *filelog.Log, path string) []byte {
	t.Helper()
	v := New(log, "events", zerolog.Nop(), nil)
	if err := v.WithHistoryFile(path); err != nil {
		t.Fatal(err)
	}
	v.WithSnapshots(Snapshots{}) // none due: freezeSnapshot is called below
	runUntilRead(t, v)
	var e snapshot.Encoder
	if err := v.freezeSnapshot()(&e); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	return e.Bytes()
}

// runUntilRead runs v until it has read the whole log, then stops it.
func runUntilRead(t *testing.T, v *View) {
	t.Helper()
	end, err := v.log.End(context.Background(), "events")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	await.Until(t, 10*time.Second, "the view read the log", func() bool { return v.Ready() && v.Progress().Position == end[0] })
	cancel()
	<-done
}

// restoreFrom restores a new view, its history file at path, from a
// snapshot that viewSnapshot took, and returns Restore's error.
func restoreFrom(t *testing.T, log *filelog.Log, path string, body []byte) error {
	t.Helper()
	d := snapshot.NewDecoder(body)
	fold, state, err := snapshot.DecodeFold(d.Section(), decided.Window{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	part, err := DecodeSnapshotPart(d.Section())
	if err != nil {
		t.Fatal(err)
	}
	v := New(log, "events", zerolog.Nop(), nil)
	if err := v.WithHistoryFile(path); err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	_, err = v.Restore(fold, state, part)
	return err
}

// Restore takes a snapshot only with the history file it refers to: the
// same id, at least as long, and its last block intact; otherwise it says
// why, and the app passes the snapshot over.
func TestRestoreChecksTheHistoryFile(t *testing.T) {
	dir := t.TempDir()
	log := loggen.FileLog(t, dir, loggen.Spec{EventsTopic: "events", Values: 3, Updates: 2000, Seed: 1})
	path := filepath.Join(dir, "history.blocks")
	body := viewSnapshot(t, log, path)
	intact, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := snapshot.NewDecoder(body)
	d.Section()
	part, err := DecodeSnapshotPart(d.Section())
	if err != nil {
		t.Fatal(err)
	}
	last, end := part.index.lastBlock, part.index.end
	if last == nil || end != int64(len(intact)) {
		t.Fatalf("the snapshot's last block %v, end %d; want a block, and the file's %d bytes", last, end, len(intact))
	}

	for _, tt := range []struct {
		name   string
		change func(t *testing.T, b []byte) []byte
		want   string // in the error; "" for none
	}{
		{"intact", func(_ *testing.T, b []byte) []byte { return b }, ""},
		{"longer (blocks written after the snapshot)", func(_ *testing.T, b []byte) []byte { return append(b, make([]byte, 5000)...) }, ""},
		{"a block before the last damaged (read, and refused, when a query needs it)", func(_ *testing.T, b []byte) []byte { b[historyHeaderSize+3] ^= 1; return b }, ""},
		{"shorter", func(_ *testing.T, b []byte) []byte { return b[:end-1] }, "bytes long, the snapshot refers to"},
		{"its last block damaged", func(_ *testing.T, b []byte) []byte { b[last.pos+int64(last.length)/2] ^= 1; return b }, "fail their checksum"},
		{"not a history file", func(_ *testing.T, b []byte) []byte { b[0] = 'X'; return b }, "not a history file"},
		{"its header damaged", func(_ *testing.T, b []byte) []byte { b[14] ^= 1; return b }, "header"},
		{"started afresh since (a replay from offset 0)", func(t *testing.T, _ []byte) []byte {
			v := New(log, "events", zerolog.Nop(), nil)
			if err := v.WithHistoryFile(path); err != nil {
				t.Fatal(err)
			}
			runUntilRead(t, v)
			v.Close()
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, "the file's id is"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, intact, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tt.change(t, append([]byte(nil), intact...)), 0o644); err != nil {
				t.Fatal(err)
			}
			err := restoreFrom(t, log, path, body)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Restore: %v", err)
			case tt.want != "" && (!errors.Is(err, errHistoryStore) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Restore: %v, want an error saying %q", err, tt.want)
			}
		})
	}
}
