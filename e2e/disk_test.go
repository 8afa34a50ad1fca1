package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// mountSmallDisk mounts a tmpfs of the given size (bytes) in a temporary
// directory for the test, and returns it. It skips the test where mounting
// is not allowed (it needs root, or CAP_SYS_ADMIN).
func mountSmallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(size)); err != nil {
		t.Skipf("cannot mount a %d-byte tmpfs for the full-disk test (it needs root): %v", size, err)
	}
	// Cleanups run last in, first out: registered before start's, this one
	// unmounts after the process is gone.
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// freeBytes is the space left for an unprivileged writer on dir's file
// system.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// TestFullDiskRefusesCommandsAndKeepsOutcomes (issue 13.6): the data
// directory's disk fills up. Below the free-space reserve (-disk-reserve)
// new commands get 503 with Retry-After and a problem saying the disk is
// full, /readyz says so too (not "replaying the log"), and every command
// accepted before still gets its outcome, written into the reserve. Once
// space is freed, commands are accepted again and the process is ready.
func TestFullDiskRefusesCommandsAndKeepsOutcomes(t *testing.T) {
	const reserveMiB = 2
	disk := mountSmallDisk(t, 16<<20)
	dataDir := filepath.Join(disk, "data")
	s := start(t, dataDir, "-disk-reserve", strconv.Itoa(reserveMiB))

	// Leave 300 KiB above the reserve: room for a thousand commands or so.
	filler := filepath.Join(disk, "filler")
	if err := os.WriteFile(filler, make([]byte, freeBytes(t, disk)-(reserveMiB<<20)-(300<<10)), 0o644); err != nil {
		t.Fatal(err)
	}

	acknowledged := map[string]bool{}
	var (
		mu       sync.Mutex
		refusals []response
		wg       sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for {
				r, err := s.do("POST", "/values", "application/json", `{"value":1}`)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				switch r.Status {
				case http.StatusAccepted:
					acknowledged[r.Body["command_id"].(string)] = true
				default:
					refusals = append(refusals, r)
				}
				done := len(refusals) > 0
				mu.Unlock()
				if done {
					return
				}
			}
		})
	}
	wg.Wait()
	if len(acknowledged) == 0 {
		t.Fatal("no command was accepted before the disk filled up")
	}
	for _, r := range refusals {
		if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" ||
			r.Body["type"] != "urn:calculator:problem:insufficient-storage" || !strings.Contains(r.Raw, "kept for outcomes") {
			t.Errorf("a command refused for a full disk got %d (Retry-After %q) %s, want 503 insufficient-storage with Retry-After, naming the reserve kept for outcomes",
				r.Status, r.Header.Get("Retry-After"), r.Raw)
		}
	}
	t.Logf("%d commands accepted, then %d refused: %s", len(acknowledged), len(refusals), refusals[0].Raw)

	// /readyz says why, and every command accepted gets its outcome.
	var ready response
	eventually(t, "readyz says the disk is below the reserve", func() bool {
		ready = s.must("GET", "/readyz", "")
		return ready.Status == http.StatusServiceUnavailable && strings.Contains(ready.Body["detail"].(string), "below the reserve")
	})
	t.Logf("readyz: %s", ready.Raw)
	eventually(t, "every accepted command has its outcome", func() bool {
		r := s.must("GET", "/readyz", "")
		proc, _ := r.Body["processor"].(map[string]any)
		return proc["commands_behind"] == 0.0
	})
	if len(s.logged("free space below the reserve: refusing appends to this topic until there is room")) == 0 {
		t.Errorf("the log does not say that the disk is below the reserve\n%s", s.logText())
	}

	// Space comes back: commands are accepted again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	s.waitReady()
	_, id := s.create(5)
	s.waitValue(id, 1)
	s.waitCaughtUp()
	if _, err := s.stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	checkExactlyOnce(t, dataDir, acknowledged)
}
