package snapshot_test

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"calculator/decided"
	"calculator/domain"
	"calculator/eventlog"
	"calculator/internal/loggen"
	"calculator/snapshot"
)

// foldOf folds every event of a log as the view does for a snapshot, and
// returns the fold and the values with their partitions.
func foldOf(t *testing.T, log eventlog.Log) (*snapshot.Fold, map[uuid.UUID]snapshot.Entry) {
	t.Helper()
	f := &snapshot.Fold{Position: eventlog.Offsets{}, Anchors: map[int32]snapshot.Anchor{}, Resume: eventlog.Offsets{}, Decided: map[int32]*decided.Ring{}}
	state := domain.NewState()
	values := map[uuid.UUID]snapshot.Entry{}
	err := log.Follow(context.Background(), "events", nil, func(b eventlog.Batch) error {
		for i := range b.Records {
			rec := &b.Records[i]
			f.Anchors[rec.Partition] = snapshot.AnchorOf(rec)
			e, err := domain.DecodeEvent(rec.Value)
			if err != nil {
				t.Fatal(err)
			}
			v, _, err := state.Apply(e)
			if err != nil {
				t.Fatal(err)
			}
			if v.Version > 0 {
				values[e.ValueID] = snapshot.Entry{ID: e.ValueID, Partition: rec.Partition, Value: v}
			}
			if f.Decided[rec.Partition] == nil {
				f.Decided[rec.Partition] = decided.NewRing(decided.Window{})
			}
			f.Decided[rec.Partition].Push(e.ParentID, e.Timestamp)
			if p, o, ok := eventlog.CommandPosition(rec.Headers); ok {
				f.Resume[p] = o + 1
			}
		}
		maps.Copy(f.Position, b.Next)
		if b.CaughtUp {
			return eventlog.ErrStopFollowing
		}
		return nil
	})
	if !errors.Is(err, eventlog.ErrStopFollowing) {
		t.Fatal(err)
	}
	return f, values
}

func encode(f *snapshot.Fold, values map[uuid.UUID]snapshot.Entry) []byte {
	var e snapshot.Encoder
	f.Encode(&e, func(yield func(snapshot.Entry) bool) {
		for _, v := range values {
			if !yield(v) {
				return
			}
		}
	})
	return e.Bytes()
}

// A fold decodes to what was encoded: positions, anchors, the window of
// decided ids, the values; keep selects partitions' values.
func TestFoldRoundTrip(t *testing.T) {
	log := loggen.FileLog(t, t.TempDir(), loggen.Spec{CommandsTopic: "commands", EventsTopic: "events", Values: 300, Updates: 2000, Seed: 1})
	f, values := foldOf(t, log)
	b := encode(f, values)

	got, state, err := snapshot.DecodeFold(snapshot.NewDecoder(b), decided.Window{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Position, f.Position) || !reflect.DeepEqual(got.Anchors, f.Anchors) || !reflect.DeepEqual(got.Resume, f.Resume) {
		t.Fatalf("decoded positions %v, anchors %v, resume %v; want %v, %v, %v", got.Position, got.Anchors, got.Resume, f.Position, f.Anchors, f.Resume)
	}
	if got.Resume[0] != 2300 || got.Position[0] != 2300 {
		t.Fatalf("resume %v, position %v: want 2300 commands answered and events read", got.Resume, got.Position)
	}
	var want, have []uuid.UUID
	for id := range f.Decided[0].All() {
		want = append(want, id)
	}
	for id := range got.Decided[0].All() {
		have = append(have, id)
	}
	if !reflect.DeepEqual(have, want) || len(have) != 2300 {
		t.Fatalf("decided ids: %d decoded, %d encoded (or not equal)", len(have), len(want))
	}
	if state.Len() != len(values) {
		t.Fatalf("%d values decoded, want %d", state.Len(), len(values))
	}
	for id, e := range values {
		if v, ok := state.Get(id); !ok || v != e.Value {
			t.Fatalf("value %s decoded as %+v, want %+v", id, v, e.Value)
		}
	}

	_, none, err := snapshot.DecodeFold(snapshot.NewDecoder(b), decided.Window{}, func(p int32) bool { return p != 0 })
	if err != nil || none.Len() != 0 {
		t.Fatalf("keeping no partition: %d values, %v", none.Len(), err)
	}
}

// Every cut of an encoded fold, and every flipped byte in its counts, is
// an error wrapping ErrCorrupt or decodes to something, never a panic.
func FuzzDecodeFold(f *testing.F) {
	fold := &snapshot.Fold{
		Position: eventlog.Offsets{0: 25}, Anchors: map[int32]snapshot.Anchor{0: {Offset: 24, Sum: 7}},
		Resume: eventlog.Offsets{0: 25}, Decided: map[int32]*decided.Ring{0: decided.NewRing(decided.Window{})},
	}
	fold.Decided[0].Push(uuid.New(), time.Now())
	values := map[uuid.UUID]snapshot.Entry{uuid.New(): {Partition: 0, Value: domain.Value{Value: domain.DecimalFromInt(42), Version: 3}}}
	f.Add(encode(fold, values))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, err := snapshot.DecodeFold(snapshot.NewDecoder(b), decided.Window{}, nil)
		if err != nil && !errors.Is(err, snapshot.ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
	})
}

// Verify accepts the log a fold was taken of, also after more events, and
// refuses another log, or one cut short.
func TestVerify(t *testing.T) {
	ctx := context.Background()
	spec := loggen.Spec{CommandsTopic: "commands", EventsTopic: "events", Values: 50, Updates: 200, Seed: 3}
	log := loggen.FileLog(t, t.TempDir(), spec)
	f, _ := foldOf(t, log)
	if err := f.Verify(ctx, log, "events", nil); err != nil {
		t.Fatalf("Verify on its own log: %v", err)
	}
	spec.Seed = 4
	other := loggen.FileLog(t, t.TempDir(), spec) // the same length, other events
	if err := f.Verify(ctx, other, "events", nil); !errors.Is(err, snapshot.ErrStale) {
		t.Fatalf("Verify on another log = %v, want ErrStale", err)
	}
	spec.Values, spec.Updates = 10, 10
	short := loggen.FileLog(t, t.TempDir(), spec)
	if err := f.Verify(ctx, short, "events", nil); !errors.Is(err, snapshot.ErrStale) {
		t.Fatalf("Verify on a shorter log = %v, want ErrStale", err)
	}
}
