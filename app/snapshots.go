package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"calculator/decided"
	"calculator/domain"
	"calculator/snapshot"
	"calculator/view"
)

// Snapshots (package snapshot). The view takes them, between two of its
// batches, when Config.SnapshotEvery events have been folded since the
// last one (and SnapshotMinInterval has passed): it freezes its part (a
// copy of the fold, with what the processor needs, and of its index),
// takeSnapshot adds the subscriptions' statuses frozen at the same moment
// and the Idempotency-Key index as it is (it has a position of its own in
// the commands topic), and writeSnapshots encodes and writes the file in
// the background, one at a time. A body
// is four sections: the fold, the view's index, the subscriptions' Hub, the
// keys.
//
// At startup, restoreSnapshot gives the view, the Hub and the keys the
// newest snapshot whose parts all decode and whose fold matches the events
// topic, before they start; the processor loads the fold itself
// (loadFold), whenever a Run or a partition's owner starts, except that
// its first Run on the embedded log takes a copy of the fold that
// restoreSnapshot decoded (startFold). Without a usable snapshot each
// starts from offset 0, as it would without snapshots.

// snapshots is the App's share of the snapshots; nil when none are taken.
type snapshots struct {
	dir    *snapshot.Dir
	window decided.Window // the processor's, which the fold carries
	busy   atomic.Bool    // a snapshot is being encoded or written
	last   int            // the size of the last body encoded (writeSnapshots')
	writes chan frozen    // to writeSnapshots; at most one in flight
	start  startFold      // the fold restoreSnapshot decoded, for the processor
}

// startFold hands the processor's first load of the whole fold (loadFold
// on the embedded log, at startup) a copy of the fold that restoreSnapshot
// decoded for the view, so that the file is read and the fold decoded
// once. restoreSnapshot offers the first fold it decodes and checks, at
// once, so that the processor rebuilds its window while the view's parts
// are still being decoded. (Should a later part of that snapshot not
// decode, the view starts from an older one or from offset 0: each is the
// fold of the same log, only further back.)
type startFold struct {
	once    sync.Once
	ready   chan struct{} // closed once restoreSnapshot has offered a fold or has none
	mu      sync.Mutex
	offered bool
	fold    *snapshot.Fold // nil once taken
	state   *domain.State
}

// offer makes a copy of fold and state the one the processor takes, unless
// one was offered already.
func (s *startFold) offer(fold *snapshot.Fold, state *domain.State) {
	s.mu.Lock()
	if !s.offered {
		s.offered = true
		s.fold, s.state = fold.Clone(), state.Clone()
	}
	s.mu.Unlock()
	s.close()
}

// close says that no fold is offered, unless one was.
func (s *startFold) close() { s.once.Do(func() { close(s.ready) }) }

// take waits for restoreSnapshot's offer and takes it, once.
func (s *startFold) take(ctx context.Context) (*snapshot.Fold, *domain.State, bool) {
	select {
	case <-s.ready:
	case <-ctx.Done():
		return nil, nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fold, state := s.fold, s.state
	s.fold, s.state = nil, nil
	return fold, state, fold != nil
}

// frozen is a snapshot on its way to the disk: the copies its parts froze,
// with what encodes them.
type frozen struct {
	view       func(e *snapshot.Encoder) error // fails when the history file cannot be made durable
	hub        func(e *snapshot.Encoder)
	keys       []byte // encoded at once: a ring of the keys' hashes is as quick to encode as to copy
	freezeTook time.Duration
}

func (a *App) openSnapshots() error {
	if a.cfg.SnapshotEvery < 0 {
		return nil
	}
	dir, err := snapshot.OpenDir(filepath.Join(a.cfg.DataDir, "snapshots"), a.logger.With().Str("component", "snapshots").Logger())
	if err != nil {
		return err
	}
	if a.cfg.DiskReserve > 0 {
		dir.KeepFree(a.cfg.DiskReserve) // the outcomes' room on the embedded log's disk
	}
	a.snaps = &snapshots{dir: dir, writes: make(chan frozen, 1), last: int(dir.NewestSize()), start: startFold{ready: make(chan struct{})}}
	return nil
}

// takeSnapshot is the view's Snapshots.Take: on the view's goroutine, it
// freezes the view's part, the Hub's and the keys' (copies them: the view
// pauses that long), and hands them to writeSnapshots.
func (a *App) takeSnapshot(freeze func() func(e *snapshot.Encoder) error) bool {
	if !a.snaps.busy.CompareAndSwap(false, true) {
		return false
	}
	began := time.Now()
	var keys snapshot.Encoder
	a.keys.EncodeSnapshot(&keys)
	f := frozen{view: freeze(), hub: a.subs.FreezeSnapshot(), keys: keys.Bytes()}
	f.freezeTook = time.Since(began)
	a.snaps.writes <- f
	return true
}

// writeSnapshots encodes and writes the snapshots that takeSnapshot froze,
// one at a time, until ctx is done.
func (a *App) writeSnapshots(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-a.snaps.writes:
			began := time.Now()
			var e snapshot.Encoder
			e.Grow(a.snaps.last + a.snaps.last/8) // a body is about as large as the one before
			if err := s.view(&e); err != nil {
				a.snaps.busy.Store(false)
				a.logger.Error().Err(err).Msg("could not take a snapshot; the next one is tried after the next events")
				continue
			}
			e.Section(s.hub)
			e.Section(func(e *snapshot.Encoder) { e.Raw(s.keys) })
			a.snaps.last = e.Len()
			encodeTook := time.Since(began)
			f, err := a.snaps.dir.Write(e.Bytes())
			a.snaps.busy.Store(false)
			if err != nil {
				a.logger.Error().Err(err).Msg("could not write a snapshot; the next one is tried after the next events")
				continue
			}
			a.metrics.SnapshotWritten(f.Size, s.freezeTook, encodeTook, time.Since(began)-encodeTook)
			a.logger.Info().Str("file", f.Name).Int64("bytes", f.Size).Dur("freeze_took", s.freezeTook).
				Dur("encode_took", encodeTook).Dur("write_took", time.Since(began)-encodeTook).Msg("snapshot written")
		}
	}
}

// restoreSnapshot prepares the view, the Hub and the keys from the newest
// usable snapshot, before they run.
func (a *App) restoreSnapshot(ctx context.Context) {
	if a.snaps == nil {
		return
	}
	defer a.snaps.start.close()
	began := time.Now()
	var values int
	f, err := a.snaps.dir.Load(func(f snapshot.File, body []byte) error {
		d := snapshot.NewDecoder(body)
		foldPart, viewPart, hubPart, keysPart := d.Section(), d.Section(), d.Section(), d.Section()
		if err := d.Done(); err != nil {
			return err
		}
		// The view's, the Hub's and the keys' parts do not need the
		// fold: they are decoded beside it, on the other core.
		var others errgroup.Group
		var viewSnap *view.SnapshotPart
		var installHub, installKeys func()
		others.Go(func() (err error) {
			if installHub, err = decodeWhole(a.subs.DecodeSnapshot, hubPart); err != nil {
				return fmt.Errorf("the subscriptions' part: %w", err)
			}
			if installKeys, err = decodeWhole(a.keys.DecodeSnapshot, keysPart); err != nil {
				return fmt.Errorf("the Idempotency-Key index's part: %w", err)
			}
			if viewSnap, err = view.DecodeSnapshotPart(viewPart); err != nil {
				return fmt.Errorf("the view's part: %w", err)
			}
			return nil
		})
		fold, state, err := a.decodeFold(ctx, foldPart, nil)
		if err == nil && a.kafka == nil { // on Kafka each partition's owner loads its own
			a.snaps.start.offer(fold, state)
		}
		if err := errors.Join(err, others.Wait()); err != nil {
			return err
		}
		install, err := a.view.Restore(fold, state, viewSnap)
		if err != nil {
			return fmt.Errorf("the view's part: %w", err)
		}
		// Every part decoded: nothing was changed before this.
		install()
		installHub()
		installKeys()
		values = state.Len()
		return nil
	})
	switch {
	case errors.Is(err, snapshot.ErrNone):
		a.logger.Info().Str("dir", a.snaps.dir.Path()).Msg("no snapshot to start from: replaying the logs from offset 0")
	case err != nil:
		a.logger.Warn().Err(err).Msg("reading the snapshots failed: replaying the logs from offset 0")
	default:
		a.logger.Info().Str("file", f.Name).Int("values", values).Dur("took", time.Since(began)).
			Msg("view and subscriptions start from a snapshot")
	}
}

// decodeWhole decodes a part and checks that it was read to its end.
func decodeWhole(decode func(*snapshot.Decoder) (func(), error), part *snapshot.Decoder) (install func(), err error) {
	if install, err = decode(part); err != nil {
		return nil, err
	}
	return install, part.Done()
}

// loadFold is the processor's Snapshot: the fold of the newest usable
// snapshot, with the values of the given events partitions (all when nil).
func (a *App) loadFold(ctx context.Context, partitions []int32) (*snapshot.Fold, *domain.State, error) {
	if a.snaps == nil {
		return nil, nil, snapshot.ErrNone
	}
	if partitions == nil {
		if fold, state, ok := a.snaps.start.take(ctx); ok {
			return fold, state, nil
		}
	}
	var fold *snapshot.Fold
	var state *domain.State
	_, err := a.snaps.dir.Load(func(f snapshot.File, body []byte) (err error) {
		fold, state, err = a.decodeFold(ctx, snapshot.NewDecoder(body).Section(), partitions)
		return err
	})
	return fold, state, err
}

// decodeFold decodes a fold and checks it against the events topic, for
// the given partitions (all when nil).
func (a *App) decodeFold(ctx context.Context, d *snapshot.Decoder, partitions []int32) (*snapshot.Fold, *domain.State, error) {
	var keep func(int32) bool
	if partitions != nil {
		keep = func(p int32) bool { return slices.Contains(partitions, p) }
	}
	fold, state, err := snapshot.DecodeFold(d, a.snaps.window, keep)
	if err != nil {
		return nil, nil, err
	}
	if partitions != nil && fold.Split > 0 {
		return nil, nil, fmt.Errorf("%d values have events in more than one partition: a partition's state cannot be told apart", fold.Split)
	}
	if err := fold.Verify(ctx, a.log, a.cfg.EventsTopic, partitions); err != nil {
		return nil, nil, err
	}
	return fold, state, nil
}
