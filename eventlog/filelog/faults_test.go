package filelog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"calculator/eventlog"
	"calculator/eventlog/logtest"
	"calculator/internal/testlog"
)

// faultyFS is the operating system's file system with faults that a test
// switches on and off: while writeErr is set, each write writes half its
// bytes and fails with it (a write cut short by a full or failing disk);
// while truncateErr or syncErr is set, each truncate or fsync fails with
// it; while free is set, FreeSpace answers it.
type faultyFS struct {
	osFS
	mu                             sync.Mutex
	writeErr, truncateErr, syncErr error
	free                           *uint64
}

func (fs *faultyFS) set(change func(*faultyFS)) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	change(fs)
}

func (fs *faultyFS) get(field *error) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return *field
}

func (fs *faultyFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	f, err := fs.osFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultyFile{file: f, fs: fs}, nil
}

func (fs *faultyFS) FreeSpace(dir string) (uint64, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.free != nil {
		return *fs.free, nil
	}
	return fs.osFS.FreeSpace(dir)
}

type faultyFile struct {
	file
	fs *faultyFS
}

func (f *faultyFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.get(&f.fs.writeErr); err != nil {
		n, _ := f.file.WriteAt(p[:len(p)/2], off)
		return n, err
	}
	return f.file.WriteAt(p, off)
}

func (f *faultyFile) Truncate(size int64) error {
	if err := f.fs.get(&f.fs.truncateErr); err != nil {
		return err
	}
	return f.file.Truncate(size)
}

func (f *faultyFile) Sync() error {
	if err := f.fs.get(&f.fs.syncErr); err != nil {
		return err
	}
	return f.file.Sync()
}

func openWith(t *testing.T, dir string, opts Options) *Log {
	t.Helper()
	l, err := OpenWith(dir, opts)
	if err != nil {
		t.Fatalf("OpenWith(%s): %v", dir, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func appendValue(l *Log, topic, value string) error {
	return l.Append(context.Background(), topic, eventlog.Message{Key: []byte("k"), Value: []byte(value)})
}

// liveReader follows topic from the start in the background, as the view
// and the subscriptions do, and collects what it is given.
type liveReader struct {
	mu     sync.Mutex
	values []string
}

func follow(t *testing.T, l *Log, topic string) *liveReader {
	t.Helper()
	r := &liveReader{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Follow(ctx, topic, nil, func(b eventlog.Batch) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			for _, rec := range b.Records {
				r.values = append(r.values, string(rec.Value))
			}
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// waitFor polls until the reader has n values, and returns them.
func (r *liveReader) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		got := slices.Clone(r.values)
		r.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(time.Millisecond)
	}
}

// checkFile checks that the topic file holds exactly the given records,
// frame after frame, with nothing after them.
func checkFile(t *testing.T, dir, topic string, want ...string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, topic+fileSuffix))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(data) > 0 {
		rec, size, err := decodeFrame(data)
		if err != nil {
			t.Fatalf("file after %q: %v (%d bytes left)", got, err, len(data))
		}
		got = append(got, string(rec.Value))
		data = data[size:]
	}
	if !slices.Equal(got, want) {
		t.Fatalf("file holds %q, want %q", got, want)
	}
}

// openFaulty opens a log on a faulty file system (no fault yet) with one
// acknowledged record, "one", in topic t, which a live reader follows.
func openFaulty(t *testing.T) (*faultyFS, string, *Log, *liveReader) {
	t.Helper()
	fs := &faultyFS{}
	dir := t.TempDir()
	l := openWith(t, dir, Options{fs: fs})
	if err := appendValue(l, "t", "one"); err != nil {
		t.Fatal(err)
	}
	return fs, dir, l, follow(t, l, "t")
}

func end(t *testing.T, l *Log, topic string) int64 {
	t.Helper()
	e, err := l.End(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	return e[0]
}

// A write that fails part-way (an I/O error, a full disk) is never
// acknowledged and never seen: Append fails, no reader sees any of the
// record, the partial bytes are cut off the file, appends fail cleanly while
// the fault lasts and work once it is gone, and a reopen finds exactly the
// acknowledged records.
func TestFailedWriteIsNeverAcknowledged(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EIO, syscall.ENOSPC} {
		t.Run(errno.Error(), func(t *testing.T) {
			fs, dir, l, reader := openFaulty(t)

			fs.set(func(fs *faultyFS) { fs.writeErr = errno })
			for range 2 { // a full disk stays full for a while
				err := appendValue(l, "t", "lost")
				if !errors.Is(err, errno) {
					t.Fatalf("Append with failing writes = %v, want %v", err, errno)
				}
				if noSpace := errors.Is(err, eventlog.ErrNoSpace); noSpace != (errno == syscall.ENOSPC) {
					t.Fatalf("Append error %q: errors.Is(err, eventlog.ErrNoSpace) = %v", err, noSpace)
				}
			}
			if got := end(t, l, "t"); got != 1 {
				t.Fatalf("End = %d after failed appends, want 1", got)
			}
			checkFile(t, dir, "t", "one") // the partial writes were cut off
			if err := l.Healthy(); err != nil {
				t.Fatalf("Healthy() = %v: a write that was cut off leaves the topic sound", err)
			}

			fs.set(func(fs *faultyFS) { fs.writeErr = nil })
			if err := appendValue(l, "t", "two"); err != nil {
				t.Fatalf("Append after the fault: %v", err)
			}
			if got := reader.waitFor(t, 2); !slices.Equal(got, []string{"one", "two"}) {
				t.Fatalf("a live reader saw %q, want [one two]", got)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openT(t, dir)
			if got := logtest.ReadValues(t, l, "t"); !slices.Equal(got, []string{"one", "two"}) {
				t.Fatalf("after reopen read %q, want [one two]", got)
			}
		})
	}
}

// A failed fsync (the kernel may have dropped the pages it did not write),
// or a failed write whose partial bytes cannot be cut off, leaves the file's
// end unknown: the append fails, the topic refuses every later append (also
// once the disk is well again) and Healthy names the file; readers see only
// what was acknowledged, and other topics go on. A restart recovers it: the
// acknowledged records come first, and then at most the unacknowledged one
// whole (a failed Append may or may not have stored its messages), never a
// damaged one.
func TestFailedTopicRefusesAppendsUntilRestart(t *testing.T) {
	cases := []struct {
		name  string
		fault func(fs *faultyFS, err error)
	}{
		{"fsync fails", func(fs *faultyFS, err error) { fs.syncErr = err }},
		{"write and cut fail", func(fs *faultyFS, err error) { fs.writeErr, fs.truncateErr = err, err }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs, dir, l, reader := openFaulty(t)
			fs.set(func(fs *faultyFS) { c.fault(fs, syscall.EIO) })
			if err := appendValue(l, "t", "unacknowledged"); !errors.Is(err, syscall.EIO) {
				t.Fatalf("Append = %v, want EIO", err)
			}
			fs.set(func(fs *faultyFS) { c.fault(fs, nil) })
			err := appendValue(l, "t", "refused")
			if err == nil || !strings.Contains(err.Error(), "refuses appends until restart") {
				t.Fatalf("Append after the topic failed = %v, want a refusal until restart", err)
			}
			health := l.Healthy()
			if health == nil || !strings.Contains(health.Error(), filepath.Join(dir, "t.log")) {
				t.Fatalf("Healthy() = %v, want the failed topic's file named", health)
			}
			if got := end(t, l, "t"); got != 1 {
				t.Fatalf("End = %d, want 1", got)
			}
			if err := appendValue(l, "other", "fine"); err != nil {
				t.Fatalf("another topic is not affected: %v", err)
			}
			if got := reader.waitFor(t, 1); !slices.Equal(got, []string{"one"}) {
				t.Fatalf("a live reader saw %q, want [one]", got)
			}
			l.Close()

			l = openT(t, dir)
			got := logtest.ReadValues(t, l, "t")
			if !slices.Equal(got, []string{"one"}) && !slices.Equal(got, []string{"one", "unacknowledged"}) {
				t.Fatalf("after reopen read %q, want [one] or [one unacknowledged]", got)
			}
			if err := appendValue(l, "t", "two"); err != nil {
				t.Fatal(err)
			}
			if got := logtest.ReadValues(t, l, "t"); got[len(got)-1] != "two" {
				t.Fatalf("after reopen and append read %q", got)
			}
		})
	}
}

// While the free space is below the reserve, appends to the commands topic
// are refused with ErrNoSpace, saying how much is free and needed, and
// store nothing; appends to the events topic go on; Healthy and the log say
// why. Once there is room again, commands are taken again.
func TestAppendsBelowTheReserveAreRefused(t *testing.T) {
	const reserve = 1 << 20
	free := uint64(1 << 30)
	fs := &faultyFS{free: &free}
	setFree := func(n uint64) { fs.set(func(*faultyFS) { free = n }) }
	dir := t.TempDir()
	var logs testlog.Buffer
	l := openWith(t, dir, Options{
		fs: fs, Logger: zerolog.New(&logs),
		RefuseBelowReserve: []string{"commands"}, FreeSpaceReserve: reserve,
	})
	if err := appendValue(l, "commands", "c1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Healthy(); err != nil {
		t.Fatalf("Healthy() = %v with room to spare", err)
	}

	// Room for the reserve, not for the record as well.
	setFree(reserve + 10)
	err := appendValue(l, "commands", "c2")
	if !errors.Is(err, eventlog.ErrNoSpace) {
		t.Fatalf("Append of a command below the reserve = %v, want ErrNoSpace", err)
	}
	needed := reserve + len(appendFrame(nil, eventlog.Message{Key: []byte("k"), Value: []byte("c2")}))
	for _, want := range []string{fmt.Sprintf("%d bytes free", reserve+10), fmt.Sprintf("%d needed", needed)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if err := appendValue(l, "events", "e1"); err != nil {
		t.Fatalf("Append of an event below the reserve = %v: outcomes are never refused for the reserve", err)
	}
	if got := end(t, l, "commands"); got != 1 {
		t.Fatalf("End(commands) = %d: the refused append stored something", got)
	}
	checkFile(t, dir, "commands", "c1")
	if !strings.Contains(logs.String(), "free space below the reserve") {
		t.Errorf("the log does not say why commands are refused:\n%s", logs.String())
	}

	// Exactly the reserve free, as block-counted free space often stops:
	// every append is refused, and Healthy says so.
	setFree(reserve)
	if health := l.Healthy(); !errors.Is(health, eventlog.ErrNoSpace) {
		t.Fatalf("Healthy() = %v with exactly the reserve free, want ErrNoSpace", health)
	}
	setFree(reserve - 1)
	health := l.Healthy()
	if !errors.Is(health, eventlog.ErrNoSpace) || !strings.Contains(health.Error(), fmt.Sprintf("reserve of %d bytes", reserve)) {
		t.Fatalf("Healthy() = %v below the reserve, want ErrNoSpace naming the reserve", health)
	}

	setFree(1 << 30)
	if err := appendValue(l, "commands", "c3"); err != nil {
		t.Fatalf("Append of a command with room again: %v", err)
	}
	if err := l.Healthy(); err != nil {
		t.Fatalf("Healthy() = %v with room again", err)
	}
	if got := logtest.ReadValues(t, l, "commands"); !slices.Equal(got, []string{"c1", "c3"}) {
		t.Fatalf("commands topic holds %q, want [c1 c3]", got)
	}
	if !strings.Contains(logs.String(), "free space above the reserve again") {
		t.Errorf("the log does not say commands are taken again:\n%s", logs.String())
	}
}

// The reserve is DefaultFreeSpaceReserve unless set, and a negative one
// turns the check off; Open (no RefuseBelowReserve topics) never refuses.
func TestReserveDefaults(t *testing.T) {
	free := uint64(DefaultFreeSpaceReserve - 1)
	cases := []struct {
		name    string
		opts    Options
		refused bool
	}{
		{"default reserve", Options{RefuseBelowReserve: []string{"commands"}}, true},
		{"reserve off", Options{RefuseBelowReserve: []string{"commands"}, FreeSpaceReserve: -1}, false},
		{"no topic refused", Options{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.fs = &faultyFS{free: &free}
			l := openWith(t, t.TempDir(), c.opts)
			err := appendValue(l, "commands", "c")
			if refused := errors.Is(err, eventlog.ErrNoSpace); refused != c.refused || (err != nil && !refused) {
				t.Fatalf("Append with %d bytes free = %v, want refused %v", free, err, c.refused)
			}
		})
	}
}
