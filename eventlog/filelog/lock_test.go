package filelog

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// childDirEnv names, in the environment of a child process of the lock
// tests, the directory that the child opens.
const childDirEnv = "FILELOG_TEST_CHILD_OPENS"

// TestOpenInChild is the child process of the lock tests, not a test of its
// own: it opens the directory named by childDirEnv, says how that went and
// exits (0 opened, 3 refused).
func TestOpenInChild(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("the child process of the lock tests")
	}
	l, err := Open(dir, zerolog.Nop())
	if err != nil {
		fmt.Println("refused:", err)
		os.Exit(3)
	}
	l.Close()
	fmt.Println("opened")
	os.Exit(0)
}

// openInChild runs Open(dir) in another process, the test binary itself,
// and reports whether it opened, with what it said.
func openInChild(t *testing.T, dir string) (opened bool, out string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenInChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	b, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return true, string(b)
	case errors.As(err, &exit) && exit.ExitCode() == 3:
		return false, string(b)
	default:
		t.Fatalf("child process: %v\n%s", err, b)
		return false, ""
	}
}

// A second process is refused while the first has the directory open,
// whatever happens to one file in it: deleting the LOCK file (or a topic
// file) must not let a second writer in. Once the first closes, the second
// gets in.
func TestSecondProcessIsRefusedWhateverHappensToAFile(t *testing.T) {
	for _, name := range []string{"", lockName, "t" + fileSuffix} {
		t.Run("deleted "+name, func(t *testing.T) {
			dir := t.TempDir()
			l := openT(t, dir)
			appendValues(t, l, "t", "acknowledged")
			if name != "" {
				if err := os.Remove(filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
			opened, out := openInChild(t, dir)
			if opened {
				t.Fatalf("a second process opened the directory in use:\n%s", out)
			}
			if !strings.Contains(out, "in use by another process") {
				t.Fatalf("the second process was refused without saying why clearly:\n%s", out)
			}
			if _, err := Open(dir, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "in use by another process") {
				t.Fatalf("a second Open in the same process = %v, want an 'in use' error", err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if opened, out := openInChild(t, dir); !opened {
				t.Fatalf("after the first closed, a second process was still refused:\n%s", out)
			}
		})
	}
}
