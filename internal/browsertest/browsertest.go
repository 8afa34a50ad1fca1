// Package browsertest finds the headless browser that the browser tests
// drive (Debian's chromium), with the project's rule for what is missing:
// skip, saying how to install it, except in CI (CI=true), where a browser
// test that cannot run fails.
package browsertest

import (
	"os"
	"os/exec"
	"testing"
)

// Chromium returns the path of the chromium binary, or skips (fails in CI)
// the test, saying what needs it.
func Chromium(tb testing.TB, neededBy string) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		tb.Fatal("chromium is not installed (apt-get install chromium)")
	}
	tb.Skipf("chromium is not installed: %s needs it (apt-get install chromium)", neededBy)
	return ""
}
