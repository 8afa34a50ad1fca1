package filelog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// dirLock keeps every other Open, in this process or another, out of a data
// directory. It is flock(2) on the directory itself: a running process
// holds the directory open, and nothing done to a file in it (deleting
// LOCK, say) releases the lock; the kernel releases it when the process
// ends, kill -9 included.
//
// The LOCK file beside the logs is locked as well: it holds the owner's pid
// for the "in use" message, and older binaries, which locked only that
// file, are kept out too.
type dirLock struct {
	dir, file *os.File
}

// lockDir locks dir or says which process holds it.
func lockDir(dir string) (*dirLock, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open data directory: %w", err)
	}
	if err := flock(d); err != nil {
		d.Close()
		return nil, lockError(dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := flock(f); err != nil {
		f.Close()
		d.Close()
		return nil, lockError(dir, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{dir: d, file: f}, nil
}

// Close releases the lock.
func (k *dirLock) Close() error {
	return errors.Join(k.file.Close(), k.dir.Close())
}

// flock takes an exclusive lock on f without waiting.
func flock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// lockError explains a failed flock: another owner, named by the pid in its
// LOCK file when there is one, or another problem.
func lockError(dir string, err error) error {
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	owner := "unknown"
	if f, err := os.Open(filepath.Join(dir, lockName)); err == nil {
		b, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		if pid := strings.TrimSpace(string(b)); pid != "" {
			owner = pid
		}
	}
	return fmt.Errorf("data directory %s is in use by another process (pid %s); stop it or choose another -data-dir", dir, owner)
}
