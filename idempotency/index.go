package idempotency

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"calculator/eventlog"
	"calculator/internal/window"
)

// The defaults of Options: SPEC §3 asks for at least 24 h or the last
// 1,000,000 commands, whichever is larger.
const (
	DefaultWindow  = 24 * time.Hour
	DefaultMinKeys = 1_000_000
	DefaultMaxKeys = 5_000_000
)

// Options bound what the Index remembers; the zero value means the
// defaults. A key is remembered until it is older than Window and MinKeys
// newer keys are held, or until MaxKeys newer keys are held.
type Options struct {
	Window  time.Duration
	MinKeys int
	MaxKeys int
}

// bounds are the Options as the table's ring takes them, defaults filled in.
func (o Options) bounds() window.Bounds {
	b := window.Bounds{Age: o.Window, Min: o.MinKeys, Max: o.MaxKeys}
	return b.Or(window.Bounds{Age: DefaultWindow, Min: DefaultMinKeys, Max: DefaultMaxKeys})
}

// Errors of Claim.
var (
	// ErrKeyReused: the key was used first for another request.
	ErrKeyReused = errors.New("idempotency: the key was used for another request")
	// ErrNotReady: the Index has not yet read the commands log to its end,
	// so it cannot tell whether a key was used before.
	ErrNotReady = errors.New("idempotency: the keys are being read from the commands log")
)

// Log is what the Index needs of the log: it reads the commands topic.
type Log interface {
	Follow(ctx context.Context, topic string, from eventlog.Offsets, fn func(eventlog.Batch) error) error
}

// Index remembers which request first used each Idempotency-Key. Create it
// with New and call Run once (it reads the commands topic, follow.go);
// Claim and Stats may be called from any goroutine.
type Index struct {
	log      Log
	topic    string
	logger   zerolog.Logger
	now      func() time.Time
	secret   [32]byte         // keys are hashed with a random secret (keyHash): nobody can aim collisions
	next     eventlog.Offsets // where Run reads the commands topic next; guarded by mu
	caughtUp atomic.Bool

	mu      sync.Mutex
	table   *table
	flights map[uint64]*flight // keys whose command is being appended
}

// flight is an append in progress under a key; done is closed when it ends.
type flight struct{ done chan struct{} }

// New returns an Index of the keyed commands in topic. It reads nothing
// until Run.
func New(log Log, topic string, logger zerolog.Logger, opt Options) *Index {
	ix := &Index{
		log:     log,
		topic:   topic,
		logger:  logger.With().Str("component", "idempotency").Logger(),
		now:     time.Now,
		next:    eventlog.Offsets{},
		table:   newTable(opt.bounds()),
		flights: make(map[uint64]*flight),
	}
	if _, err := rand.Read(ix.secret[:]); err != nil {
		panic(fmt.Sprintf("idempotency: no randomness for the key hash: %v", err))
	}
	return ix
}

// keyHash is the table's hash of a key: the first 8 bytes of the SHA-256
// of the Index's secret and the key. The secret is random and goes into
// snapshots with the table, so that a restored table finds its keys.
func keyHash[K string | []byte](secret *[32]byte, key K) uint64 {
	var buf [32 + MaxKeyLength]byte
	n := copy(buf[32:], key)
	copy(buf[:32], secret[:])
	sum := sha256.Sum256(buf[:32+n])
	return binary.LittleEndian.Uint64(sum[:8])
}

// Ready reports whether the Index has read the commands topic up to its
// end once, and so knows every key used before this process started.
func (ix *Index) Ready() bool { return ix.caughtUp.Load() }

// Reservation is the right to append the command of a request under its
// key, or the news that it is in the log already. See Claim.
type Reservation struct {
	// Stored reports that a command of this request is durable in the log
	// already: it need not be appended again.
	Stored bool
	ix     *Index
	hash   uint64
	prefix uint64
	f      *flight
}

// Claim reserves key for the request with fingerprint fp before its
// command is appended. It returns
//
//   - ErrKeyReused when the key was used first for another request, which
//     includes a request under the same key whose append is in flight: of
//     two concurrent requests with one key and different bodies, one is
//     refused;
//   - a Reservation with Stored set when a command of this very request is
//     known to be durable in the log (an earlier append returned, or the log
//     holds it): the caller answers without appending;
//   - otherwise a Reservation that the caller must end with Done once its
//     append has returned. Concurrent claims of the same request wait for it
//     (or for ctx): a repeat whose first append is in flight shares that
//     append's fate instead of writing the command again;
//   - ErrNotReady before the Index has read the commands log to its end, and
//     ctx.Err() when ctx ends while it waits.
func (ix *Index) Claim(ctx context.Context, key string, fp Fingerprint) (Reservation, error) {
	if !ix.Ready() {
		return Reservation{}, ErrNotReady
	}
	h, want := keyHash(&ix.secret, key), fp.prefix()
	ix.mu.Lock()
	for {
		v, known := ix.table.entries[h]
		if known && v&^flagMask != want {
			ix.mu.Unlock()
			return Reservation{}, ErrKeyReused
		}
		f := ix.flights[h]
		if f == nil {
			if known && v&flagDurable != 0 {
				ix.mu.Unlock()
				return Reservation{Stored: true}, nil
			}
			if !known {
				now := ix.now()
				ix.table.add(h, want, now, now)
			}
			f = &flight{done: make(chan struct{})}
			ix.flights[h] = f
			ix.mu.Unlock()
			return Reservation{ix: ix, hash: h, prefix: want, f: f}, nil
		}
		ix.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return Reservation{}, ctx.Err()
		}
		ix.mu.Lock()
	}
}

// Done ends a reservation that was not Stored; stored says whether the
// append returned nil. After a failed append the key stays reserved for
// this request (the command may have been stored all the same), and the
// next claim of the request appends again. Done does nothing on a Stored
// reservation or the zero Reservation.
func (r Reservation) Done(stored bool) {
	if r.f == nil {
		return
	}
	ix := r.ix
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if v, ok := ix.table.entries[r.hash]; stored && ok && v&^flagMask == r.prefix {
		ix.table.entries[r.hash] = v | flagDurable
	}
	delete(ix.flights, r.hash)
	close(r.f.done)
}

// Stats are the Index's counters.
type Stats struct {
	Keys           int   // keys remembered now
	Forgotten      int64 // keys forgotten since start
	ForgottenEarly int64 // of which before Window was over, because MaxKeys were held
	Conflicts      int64 // keyed records in the log whose key a different request had used first
}

// Stats returns the Index's counters.
func (ix *Index) Stats() Stats {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	forgotten, early := ix.table.order.Forgotten()
	return Stats{Keys: ix.table.order.Len(), Forgotten: forgotten, ForgottenEarly: early, Conflicts: ix.table.conflicts}
}
