package filelog

import (
	"io"
	"os"
	"syscall"
)

// fileSystem is what the log does to its topic files and asks of the file
// system beneath them: the operating system's (osFS) outside tests. It is
// the fault-injection seam: tests wrap it to make writes, truncates and
// fsyncs fail and to fake the free space (fs_test.go), so that the paths
// of a failing or full disk run in go test, not only by hand.
//
// The data directory itself (its lock, creation and fsync) goes to the
// operating system directly.
type fileSystem interface {
	// OpenFile opens a topic file, as os.OpenFile does.
	OpenFile(name string, flag int, perm os.FileMode) (file, error)
	// FreeSpace returns the bytes that this process may still write on the
	// file system holding dir.
	FreeSpace(dir string) (uint64, error)
}

// file is an open topic file.
type file interface {
	io.ReaderAt
	io.WriterAt
	Truncate(size int64) error
	Sync() error
	Stat() (os.FileInfo, error)
	Close() error
}

// osFS is the operating system's file system.
type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return f, nil
}

func (osFS) FreeSpace(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	return st.Bavail * uint64(st.Bsize), nil
}
