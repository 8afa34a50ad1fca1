package idempotency

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"calculator/eventlog/filelog"
	"calculator/internal/await"
	"calculator/snapshot"
)

// An Index restored from a snapshot knows every key the snapshot's Index
// had read in the log, but not a key only reserved, and reads on from
// where the snapshot was taken.
func TestIndexSnapshot(t *testing.T) {
	ctx := context.Background()
	log, ix := indexOfKeys(t, 'A', 50)
	pending, err := ix.Claim(ctx, "pending", fingerprint(1)) // its append never ends
	if err != nil {
		t.Fatal(err)
	}
	defer pending.Done(false)
	var e snapshot.Encoder
	ix.EncodeSnapshot(&e)

	// Commands after the snapshot: the restored Index reads them.
	late, headers := keyedCommand("late", 7, time.Now())
	appendCommand(t, log, late, headers...)

	restored := New(log, "commands", zerolog.Nop(), Options{})
	if err := snapshot.Restore(restored.DecodeSnapshot, snapshot.NewDecoder(e.Bytes())); err != nil {
		t.Fatal(err)
	}
	if n := restored.Stats().Keys; n != 50 {
		t.Fatalf("restored %d keys, want the 50 read in the log", n)
	}
	run(t, restored)
	await.Until(t, 10*time.Second, "the key after the snapshot read", func() bool { return restored.remembers("late") })
	for i := range 50 {
		key := string(rune('A' + i))
		if r, err := restored.Claim(ctx, key, fingerprint(int64(i))); err != nil || !r.Stored {
			t.Fatalf("the request under %q again: %+v, %v; want Stored", key, r, err)
		}
		if _, err := restored.Claim(ctx, key, fingerprint(int64(i+1))); !errors.Is(err, ErrKeyReused) {
			t.Fatalf("another request under %q: %v, want ErrKeyReused", key, err)
		}
	}
	if r, err := restored.Claim(ctx, "pending", fingerprint(2)); err != nil || r.Stored {
		t.Fatalf("a key only reserved before the snapshot: %+v, %v; want a new reservation", r, err)
	} else {
		r.Done(false)
	}
}

// A damaged snapshot part is an error that leaves the Index as it was.
func TestIndexSnapshotDamaged(t *testing.T) {
	log, ix := indexOfKeys(t, 'a', 5)
	var e snapshot.Encoder
	ix.EncodeSnapshot(&e)
	b := e.Bytes()
	for cut := range len(b) {
		fresh := New(log, "commands", zerolog.Nop(), Options{})
		if err := snapshot.Restore(fresh.DecodeSnapshot, snapshot.NewDecoder(b[:cut])); !errors.Is(err, snapshot.ErrCorrupt) {
			t.Fatalf("cut at %d of %d: %v, want ErrCorrupt", cut, len(b), err)
		}
		if fresh.Stats().Keys != 0 || len(fresh.next) != 0 {
			t.Fatalf("cut at %d: a failed restore left %d keys", cut, fresh.Stats().Keys)
		}
	}
}

// indexOfKeys returns a log of n keyed commands, under the keys first,
// first+1..., the i-th with the value i, and a running Index that has read
// them.
func indexOfKeys(t *testing.T, first rune, n int) (*filelog.Log, *Index) {
	t.Helper()
	log := openLog(t)
	now := time.Now()
	for i := range n {
		cmd, headers := keyedCommand(string(first+rune(i)), int64(i), now)
		appendCommand(t, log, cmd, headers...)
	}
	ix := runIndex(t, log, Options{})
	await.Until(t, 10*time.Second, fmt.Sprintf("%d keys read", n), func() bool { return ix.Stats().Keys == n })
	return log, ix
}
