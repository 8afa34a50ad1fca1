package idempotency

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/eventlog/filelog"
	"calculator/internal/await"
	"calculator/internal/window"
)

// readyIndex is an Index over no log that is ready at once.
func readyIndex(opt Options) *Index {
	ix := New(nil, "commands", zerolog.Nop(), opt)
	ix.caughtUp.Store(true)
	return ix
}

func fingerprint(v int64) Fingerprint {
	return FingerprintOf(domain.Command{Action: domain.CreateValue, Value: domain.DecimalFromInt(v)})
}

func TestClaimBeforeTheLogIsReadIsRefused(t *testing.T) {
	ix := New(nil, "commands", zerolog.Nop(), Options{})
	if _, err := ix.Claim(context.Background(), "k", fingerprint(1)); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Claim = %v, want ErrNotReady", err)
	}
}

func TestClaim(t *testing.T) {
	ctx := context.Background()
	ix := readyIndex(Options{})
	first, err := ix.Claim(ctx, "k", fingerprint(1))
	if err != nil || first.Stored {
		t.Fatalf("first claim = %+v, %v; want the right to append", first, err)
	}
	// While the append is in flight, another request under the key is refused.
	if _, err := ix.Claim(ctx, "k", fingerprint(2)); !errors.Is(err, ErrKeyReused) {
		t.Fatalf("another request while the first is in flight: %v, want ErrKeyReused", err)
	}
	first.Done(true)
	if r, err := ix.Claim(ctx, "k", fingerprint(1)); err != nil || !r.Stored {
		t.Fatalf("repeat after a stored append = %+v, %v; want Stored", r, err)
	}
	if _, err := ix.Claim(ctx, "k", fingerprint(2)); !errors.Is(err, ErrKeyReused) {
		t.Fatalf("another request after the first was stored: %v, want ErrKeyReused", err)
	}
	if r, err := ix.Claim(ctx, "other key", fingerprint(2)); err != nil || r.Stored {
		t.Fatalf("another key = %+v, %v; want the right to append", r, err)
	}
}

// After a failed append the command may or may not be stored: the key stays
// with its request, and the next repeat appends again.
func TestClaimAfterAFailedAppend(t *testing.T) {
	ctx := context.Background()
	ix := readyIndex(Options{})
	r, _ := ix.Claim(ctx, "k", fingerprint(1))
	r.Done(false)
	if _, err := ix.Claim(ctx, "k", fingerprint(2)); !errors.Is(err, ErrKeyReused) {
		t.Fatalf("another request after a failed append: %v, want ErrKeyReused", err)
	}
	again, err := ix.Claim(ctx, "k", fingerprint(1))
	if err != nil || again.Stored {
		t.Fatalf("repeat after a failed append = %+v, %v; want the right to append again", again, err)
	}
	again.Done(true)
}

// Concurrent repeats of one request share one append: one claimer appends,
// the others wait for it and learn that the command is stored.
func TestConcurrentRepeatsShareOneAppend(t *testing.T) {
	ix := readyIndex(Options{})
	var appends, stored atomic.Int64
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			r, err := ix.Claim(context.Background(), "k", fingerprint(1))
			if err != nil {
				t.Error(err)
				return
			}
			if r.Stored {
				stored.Add(1)
				return
			}
			appends.Add(1)
			time.Sleep(time.Millisecond) // the append
			r.Done(true)
		})
	}
	wg.Wait()
	if appends.Load() != 1 || stored.Load() != 99 {
		t.Fatalf("%d appends and %d answered as stored, want 1 and 99", appends.Load(), stored.Load())
	}
}

func TestClaimWaitingForAnAppendEndsWithItsContext(t *testing.T) {
	ix := readyIndex(Options{})
	first, _ := ix.Claim(context.Background(), "k", fingerprint(1))
	defer first.Done(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := ix.Claim(ctx, "k", fingerprint(1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Claim while the first append hangs = %v, want the context's error", err)
	}
}

// A key is forgotten only when it is both older than the window and more
// than MinKeys newer ones are held, or when more than MaxKeys are held.
func TestWindow(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ix := readyIndex(Options{Window: time.Hour, MinKeys: 3, MaxKeys: 6})
	ix.now = func() time.Time { return now }
	claim := func(key string) {
		t.Helper()
		r, err := ix.Claim(context.Background(), key, fingerprint(1))
		if err != nil {
			t.Fatal(err)
		}
		r.Done(true)
	}
	remembered := func(key string) bool { return ix.remembers(key) }
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		claim(k)
	}
	if ix.Stats().Keys != 5 || !remembered("a") {
		t.Fatalf("5 keys within the hour: %+v, want all 5 remembered", ix.Stats())
	}
	now = now.Add(time.Hour + time.Second)
	claim("f") // a, b and c are out of the window; the 3 newest stay
	if st := ix.Stats(); st.Keys != 3 || st.Forgotten != 3 || remembered("c") || !remembered("d") {
		t.Fatalf("after the hour: %+v, c remembered %v, d remembered %v; want d, e, f only", st, remembered("c"), remembered("d"))
	}
	for _, k := range []string{"g", "h", "i", "j", "k", "l"} { // d and e go, then f..l are 7 within the window: over MaxKeys
		claim(k)
	}
	if st := ix.Stats(); st.Keys != 6 || st.ForgottenEarly != 1 || remembered("f") || !remembered("g") {
		t.Fatalf("over MaxKeys: %+v, want 6 keys, f forgotten early", st)
	}
}

// appendCommand appends a command record with the given headers.
func appendCommand(t *testing.T, log eventlog.Log, cmd domain.Command, headers ...eventlog.Header) {
	t.Helper()
	msg := eventlog.Message{Key: []byte(cmd.ValueID.String()), Value: cmd.AppendJSON(nil), Headers: headers}
	if err := log.Append(context.Background(), "commands", msg); err != nil {
		t.Fatal(err)
	}
}

// runIndex runs an Index over log until the test ends, and waits until it
// is ready.
func runIndex(t *testing.T, log eventlog.Log, opt Options) *Index {
	t.Helper()
	return run(t, New(log, "commands", zerolog.Nop(), opt))
}

// run runs ix until the test ends, and returns it once it is Ready.
func run(t *testing.T, ix *Index) *Index {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !ix.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("the Index did not read the commands log within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	return ix
}

func openLog(t *testing.T) *filelog.Log {
	t.Helper()
	l, err := filelog.Open(t.TempDir(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// keyedCommand is the command of a POST under key, as the commander writes it.
func keyedCommand(key string, v int64, at time.Time) (domain.Command, []eventlog.Header) {
	cmd := domain.Command{Action: domain.CreateValue, Value: domain.DecimalFromInt(v), Timestamp: at}
	fp := FingerprintOf(cmd)
	cmd.ID, cmd.ValueID = fp.CommandID(key), fp.ValueID(key)
	return cmd, Headers(key, fp)
}

// The Index rebuilds the keys from the commands log: what a process wrote
// before it restarted, what another client wrote, and what arrives later.
func TestIndexReadsTheCommandsLog(t *testing.T) {
	ctx := context.Background()
	log := openLog(t)
	now := time.Now()
	// Before the Index starts: a keyed command, an unkeyed one, one whose
	// writer sent the key without the request hash, and a day-old one
	// (kept: fewer than MinKeys keys are held).
	cmd, headers := keyedCommand("before", 1, now)
	appendCommand(t, log, cmd, headers...)
	appendCommand(t, log, domain.Command{ID: uuid.New(), Action: domain.CreateValue, ValueID: uuid.New(), Value: domain.DecimalFromInt(1), Timestamp: now})
	foreign, headers := keyedCommand("foreign", 1, now)
	appendCommand(t, log, foreign, headers[0])
	old, headers := keyedCommand("old", 1, now.Add(-48*time.Hour))
	appendCommand(t, log, old, headers...)

	ix := runIndex(t, log, Options{})
	for _, key := range []string{"before", "foreign", "old"} {
		if r, err := ix.Claim(ctx, key, fingerprint(1)); err != nil || !r.Stored {
			t.Errorf("repeat of the request logged under %q = %+v, %v; want Stored", key, r, err)
		}
		if _, err := ix.Claim(ctx, key, fingerprint(2)); !errors.Is(err, ErrKeyReused) {
			t.Errorf("another request under %q = %v, want ErrKeyReused", key, err)
		}
	}

	// Live: a reservation of this process that the log contradicts (another
	// process wrote the key first) gives way to the log.
	mine, err := ix.Claim(ctx, "race", fingerprint(1))
	if err != nil {
		t.Fatal(err)
	}
	theirs, headers := keyedCommand("race", 2, now)
	appendCommand(t, log, theirs, headers...)
	await.Until(t, 10*time.Second, "the Index reads the other process's command", func() bool {
		ix.mu.Lock()
		defer ix.mu.Unlock()
		return ix.table.entries[keyHash(&ix.secret, "race")]&^flagMask == fingerprint(2).prefix()
	})
	mine.Done(true)
	if _, err := ix.Claim(ctx, "race", fingerprint(1)); !errors.Is(err, ErrKeyReused) {
		t.Errorf("this process's request after the log gave the key to another: %v, want ErrKeyReused", err)
	}
	// This process's command reaches the log second: counted, the first keeps the key.
	cmd, headers = keyedCommand("race", 1, now)
	appendCommand(t, log, cmd, headers...)
	await.Until(t, 10*time.Second, "the conflict is counted", func() bool { return ix.Stats().Conflicts == 1 })
	if r, err := ix.Claim(ctx, "race", fingerprint(2)); err != nil || !r.Stored {
		t.Errorf("the first request under the key after the conflict = %+v, %v; want Stored", r, err)
	}
}

// Replaying a log longer than the window forgets the old keys as it goes.
func TestIndexForgetsOldKeysOfTheLog(t *testing.T) {
	log := openLog(t)
	now := time.Now()
	for i, at := range []time.Time{now.Add(-72 * time.Hour), now.Add(-48 * time.Hour), now.Add(-time.Hour), now} {
		cmd, headers := keyedCommand(string(rune('a'+i)), 1, at)
		appendCommand(t, log, cmd, headers...)
	}
	ix := runIndex(t, log, Options{Window: 24 * time.Hour, MinKeys: 1})
	if st := ix.Stats(); st.Keys != 2 || st.Forgotten != 2 {
		t.Fatalf("after the replay: %+v, want the 2 keys of the last 24 h", st)
	}
	if ix.remembers("a") || ix.remembers("b") || !ix.remembers("c") || !ix.remembers("d") {
		t.Error("want the keys older than the window forgotten, the others remembered")
	}
}

// remembers reports whether the Index holds key.
func (ix *Index) remembers(key string) bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	_, ok := ix.table.entries[keyHash(&ix.secret, key)]
	return ok
}

// TestMemoryPerKey measures what a remembered key costs, for the README.
func TestMemoryPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("fills an index with 1,000,000 keys")
	}
	const keys = 1_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tab := newTable(window.Bounds{Age: 24 * time.Hour, Min: keys, Max: keys})
	now := time.Now()
	for i := range uint64(keys) {
		tab.add(i*0x9e3779b97f4a7c15, i, now, now)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perKey := float64(after.HeapAlloc-before.HeapAlloc) / keys
	t.Logf("%d keys: %.1f bytes a key (%.0f MiB)", keys, perKey, perKey*keys/(1<<20))
	if perKey > 64 {
		t.Errorf("%.1f bytes a key, want at most 64", perKey)
	}
	runtime.KeepAlive(tab)
}
