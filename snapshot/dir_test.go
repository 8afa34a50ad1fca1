package snapshot

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rs/zerolog"
)

func openDir(t *testing.T, path string) *Dir {
	t.Helper()
	d, err := OpenDir(path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// load returns the body of the snapshot that Load picks, or nil.
func load(t *testing.T, d *Dir) []byte {
	t.Helper()
	var got []byte
	_, err := d.Load(func(_ File, body []byte) error {
		got = slices.Clone(body)
		return nil
	})
	if errors.Is(err, ErrNone) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n []string
	for _, e := range entries {
		n = append(n, e.Name())
	}
	return n
}

// The newest snapshot is loaded; a Dir keeps the newest DefaultKeep.
func TestWriteLoadAndKeep(t *testing.T) {
	path := t.TempDir()
	d := openDir(t, path)
	if got := load(t, d); got != nil {
		t.Fatalf("an empty directory gave a snapshot: %q", got)
	}
	for _, body := range []string{"one", "two", "three"} {
		if _, err := d.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if got := load(t, d); string(got) != "three" {
		t.Fatalf("loaded %q, want the newest, three", got)
	}
	if n := names(t, path); !slices.Equal(n, []string{"snapshot-0000000000000002.snap", "snapshot-0000000000000003.snap"}) {
		t.Fatalf("the directory holds %v, want the newest two", n)
	}
}

// A damaged or foreign newest snapshot is passed over for the one before
// it; with none usable, Load says ErrNone.
func TestDamagedSnapshotsArePassedOver(t *testing.T) {
	damages := map[string]func(b []byte) []byte{
		"a bit flipped in the body":   func(b []byte) []byte { b[len(b)-1] ^= 1; return b },
		"a bit flipped in the header": func(b []byte) []byte { b[13] ^= 1; return b },
		"cut short":                   func(b []byte) []byte { return b[:len(b)-3] },
		"cut in the header":           func(b []byte) []byte { return b[:10] },
		"empty":                       func([]byte) []byte { return nil },
		"another version":             func(b []byte) []byte { b[8] = FormatVersion + 1; return b },
		"not a snapshot":              func(b []byte) []byte { return bytes.Repeat([]byte("x"), len(b)) },
	}
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			path := t.TempDir()
			d := openDir(t, path)
			if _, err := d.Write([]byte("older")); err != nil {
				t.Fatal(err)
			}
			f, err := d.Write([]byte("newer"))
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(path, f.Name)
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, damage(b), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := load(t, d); string(got) != "older" {
				t.Fatalf("loaded %q, want the older snapshot", got)
			}
			if err := os.Remove(filepath.Join(path, "snapshot-0000000000000001.snap")); err != nil {
				t.Fatal(err)
			}
			if got := load(t, d); got != nil {
				t.Fatalf("loaded %q from a damaged snapshot", got)
			}
		})
	}
}

// A snapshot whose content the caller refuses is passed over too.
func TestRefusedSnapshotIsPassedOver(t *testing.T) {
	d := openDir(t, t.TempDir())
	for _, body := range []string{"good", "refused"} {
		if _, err := d.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	f, err := d.Load(func(_ File, body []byte) error {
		seen = append(seen, string(body))
		if string(body) == "refused" {
			return errors.New("does not match the log")
		}
		return nil
	})
	if err != nil || f.Sequence != 1 || !slices.Equal(seen, []string{"refused", "good"}) {
		t.Fatalf("Load = %+v, %v after seeing %v; want the first snapshot after refusing the second", f, err, seen)
	}
}

// A crash while a snapshot is written leaves a temporary file at most
// (the snapshot is renamed into place only once it is synced): the
// snapshots before it are intact, and OpenDir removes the leftover.
func TestCrashWhileWriting(t *testing.T) {
	path := t.TempDir()
	d := openDir(t, path)
	if _, err := d.Write([]byte("before the crash")); err != nil {
		t.Fatal(err)
	}
	// The write "crashes" at its fsync: the process dies there, before the
	// rename, with the body (partly) in the temporary file.
	crash := errors.New("crash")
	d.fsync = func(f *os.File) error {
		if filepath.Ext(f.Name()) == tmpSuffix {
			return crash
		}
		return f.Sync()
	}
	if _, err := d.Write([]byte("never complete")); !errors.Is(err, crash) {
		t.Fatalf("Write = %v, want the crash", err)
	}
	// What a killed process leaves behind: the temporary file.
	leftover := filepath.Join(path, "snapshot-0000000000000002.snap"+tmpSuffix)
	if err := os.WriteFile(leftover, []byte("CALCSNAP\x01\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	d = openDir(t, path)
	if n := names(t, path); !slices.Equal(n, []string{"snapshot-0000000000000001.snap"}) {
		t.Fatalf("after a crash and OpenDir the directory holds %v", n)
	}
	if got := load(t, d); string(got) != "before the crash" {
		t.Fatalf("loaded %q, want the snapshot before the crash", got)
	}
}

// A snapshot that would leave less than KeepFree free is not written, and
// the ones before it stay.
func TestWriteKeepsFreeSpace(t *testing.T) {
	d := openDir(t, t.TempDir())
	if _, err := d.Write([]byte("fits")); err != nil {
		t.Fatal(err)
	}
	d.KeepFree(1000)
	d.free = func(string) (int64, error) { return 1000 + headerSize + 4, nil } // room for 4 bytes of body
	if _, err := d.Write([]byte("five!")); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Write of 5 bytes with room for 4 = %v, want ErrNoSpace", err)
	}
	if _, err := d.Write([]byte("four")); err != nil {
		t.Fatalf("Write of 4 bytes with room for 4: %v", err)
	}
	if got := load(t, d); string(got) != "four" {
		t.Fatalf("loaded %q", got)
	}
}
