package view

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/snapshot"
)

// indexScript writes events as the view folds them into its index, in log
// order over three partitions: creates, updates (a fifth of them on a few
// values with long histories, so that their trails have marks),
// rejections, a rejection of an unknown value, now and then an event of a
// value in another partition than its own (a split history), and clocks
// that sometimes go back.
type indexScript struct {
	rng     *rand.Rand
	ids     []uuid.UUID
	hot     []uuid.UUID
	offsets [3]int64
	now     time.Time
}

func newIndexScript(seed uint64) *indexScript {
	return &indexScript{rng: rand.New(rand.NewPCG(seed, seed+1)), now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

// add folds n more events into each of xs, the same ones.
func (s *indexScript) add(n int, xs ...*indexed) {
	for range n {
		rec, e, _ := s.next()
		for _, x := range xs {
			x.fold(&rec, &e)
		}
	}
}

// indexed is an index with the state it stands beside.
type indexed struct {
	index
	s *domain.State
}

func newIndexed() *indexed { return newIndexedIn(newMemBlocks()) }

// newIndexedIn is an index whose blocks go to store.
func newIndexedIn(store blockStore) *indexed {
	return &indexed{index: newIndex(store), s: domain.NewState()}
}

// fold applies an event to the state, then to the index, as the view does.
func (x *indexed) fold(rec *eventlog.Record, e *domain.Event) {
	_, changed, err := x.s.Apply(*e)
	if err != nil {
		panic(err)
	}
	x.add(x.s, rec, e, changed)
}

// decodeIndexed decodes an index for the state s (a copy of it), with its
// blocks in store.
func decodeIndexed(d *snapshot.Decoder, s *domain.State, store blockStore) (*indexed, error) {
	s = s.Clone()
	x, err := decodeIndex(d, s, store)
	return &indexed{index: x, s: s}, err
}

func (s *indexScript) next() (eventlog.Record, domain.Event, bool) {
	s.now = s.now.Add(time.Duration(s.rng.IntN(1000)-50) * time.Microsecond)
	e := domain.Event{Timestamp: s.now}
	changed := true
	switch r := s.rng.IntN(100); {
	case len(s.ids) == 0 || r < 25:
		var id uuid.UUID
		for i := range id {
			id[i] = byte(s.rng.Uint32())
		}
		s.ids = append(s.ids, id)
		if len(s.hot) < 3 {
			s.hot = append(s.hot, id)
		}
		e.Action, e.ValueID = domain.ValueCreated, id
	case r < 45:
		e.Action, e.ValueID = domain.ValueUpdated, s.hot[s.rng.IntN(len(s.hot))]
	case r < 55:
		e.Action, e.ValueID, changed = domain.CommandRejected, s.ids[s.rng.IntN(len(s.ids))], false
	case r < 57:
		e.Action, e.ValueID, changed = domain.CommandRejected, s.hot[0], false
	case r < 58:
		e.Action, e.ValueID, changed = domain.CommandRejected, uuid.New(), false
	default:
		e.Action, e.ValueID = domain.ValueUpdated, s.ids[s.rng.IntN(len(s.ids))]
	}
	partition := int32(e.ValueID[0] % 3)
	if s.rng.IntN(500) == 0 {
		partition = (partition + 1) % 3
	}
	rec := eventlog.Record{Partition: partition, Offset: s.offsets[partition]}
	s.offsets[partition]++
	return rec, e, changed
}

// encodeIndex returns the bytes of x's encoding, with its store as it is.
func encodeIndex(x *indexed) []byte {
	var e snapshot.Encoder
	sid, err := x.store.id()
	if err != nil {
		panic(err)
	}
	x.encode(&e, x.s, sid, x.store.end())
	return e.Bytes()
}

// cloneStore returns a copy of a memBlocks: a decoded index given the copy
// goes on as the original, which goes on in the original, does.
func cloneStore(s blockStore) blockStore {
	m := s.(*memBlocks)
	c := &memBlocks{sid: m.sid, size: m.size}
	for _, b := range m.chunks {
		c.chunks = append(c.chunks, append(make([]byte, 0, memChunk), b...))
	}
	return c
}

// A decoded index holds what the encoded one held, answers every query the
// same, encodes to the same bytes, and goes on as the original does when
// more events come, new values included.
func TestIndexSnapshotRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name          string
		events, after int
	}{
		{"empty", 0, 50},
		{"one event", 1, 50},
		{"a few", 40, 200},
		{"blocks of ids", 4 * blockSize * 4, 8 * blockSize * 4}, // a quarter of the events create values
		{"long histories", 20_000, 20_000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newIndexScript(uint64(tt.events))
			want := newIndexed()
			s.add(tt.events, want)
			b := encodeIndex(want)
			d := snapshot.NewDecoder(b)
			got, err := decodeIndexed(d, want.s, cloneStore(want.store))
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Done(); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if len(want.versionBlocks) == 0 && tt.events >= 10_000 {
				t.Fatal("the script made no trail long enough for stored blocks")
			}
			sameIndex(t, got, want)
			if again := encodeIndex(got); !bytes.Equal(again, b) {
				t.Errorf("the decoded index encodes to %d other bytes than the %d it came from", len(again), len(b))
			}

			s.add(tt.after, got, want)
			sameIndex(t, got, want)
		})
	}
}

// sameIndex fails unless got holds what want holds and answers its queries
// the same; got's ids must be well-formed blocks.
func sameIndex(t *testing.T, got, want *indexed) {
	t.Helper()
	checkBlocks(t, &got.ids)
	gotIDs, wantIDs := got.ids.page(nil, got.ids.len()+1), want.ids.page(nil, want.ids.len()+1)
	if got.ids.len() != want.ids.len() || !slices.Equal(gotIDs, wantIDs) {
		t.Fatalf("ids: %d, want %d (in order: %v)", got.ids.len(), want.ids.len(), slices.Equal(gotIDs, wantIDs))
	}
	if !reflect.DeepEqual(got.versions, want.versions) {
		t.Fatalf("versions differ (%d values, want %d)", got.versions.Len(), want.versions.Len())
	}
	if !reflect.DeepEqual(got.versionBlocks, want.versionBlocks) {
		t.Fatalf("the versions' blocks differ (%d values, want %d)", len(got.versionBlocks), len(want.versionBlocks))
	}
	if !reflect.DeepEqual(got.rejected, want.rejected) {
		t.Fatalf("rejections differ (%d values, want %d)", len(got.rejected), len(want.rejected))
	}

	// The queries the view asks: a page after each tenth id, and for each
	// value its entries and the searches by time and offset around them.
	for i := 0; i < len(wantIDs); i += 10 {
		if g, w := got.ids.page(&wantIDs[i], 7), want.ids.page(&wantIDs[i], 7); !slices.Equal(g, w) {
			t.Fatalf("page after %s: %v, want %v", wantIDs[i], g, w)
		}
	}
	for _, id := range wantIDs {
		gv, gr, gFound := got.history(got.s, id)
		wv, wr, wFound := want.history(want.s, id)
		if gFound != wFound || gv.partition != wv.partition || gr.partition != wr.partition {
			t.Fatalf("history(%s): found %v in %d/%d, want %v in %d/%d", id, gFound, gv.partition, gr.partition, wFound, wv.partition, wr.partition)
		}
		for _, l := range [][2]lookup{{gv, wv}, {gr, wr}} {
			g, w := l[0], l[1]
			if g.len() != w.len() {
				t.Fatalf("%s: %d entries, want %d", id, g.len(), w.len())
			}
			err := w.from(0, func(i int, p point) bool {
				if gp := mustAt(t, g, i); gp != p {
					t.Fatalf("%s: entry %d = %+v, want %+v", id, i, gp, p)
				}
				for _, delta := range []int64{-1, 0, 1} {
					if g, w := mustCountUntil(t, g, p.time+delta), mustCountUntil(t, w, p.time+delta); g != w {
						t.Fatalf("%s: countUntil(%d) = %d, want %d", id, p.time+delta, g, w)
					}
					if g, w := mustAfter(t, g, p.offset+delta), mustAfter(t, w, p.offset+delta); g != w {
						t.Fatalf("%s: after(%d) = %d, want %d", id, p.offset+delta, g, w)
					}
				}
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// checkBlocks fails unless s's blocks are non-empty, at most blockSize
// long, in increasing order and count n ids.
func checkBlocks(t *testing.T, s *sortedIDs) {
	t.Helper()
	n := 0
	var last *uuid.UUID
	for i, b := range s.blocks {
		if len(b) == 0 || len(b) > blockSize {
			t.Fatalf("block %d of %d holds %d ids", i, len(s.blocks), len(b))
		}
		for j := range b {
			if last != nil && compareIDs(*last, b[j]) >= 0 {
				t.Fatalf("block %d: id %d is not above the one before", i, j)
			}
			last = &b[j]
		}
		n += len(b)
	}
	if n != s.n {
		t.Fatalf("the blocks hold %d ids, n says %d", n, s.n)
	}
}

// The blocks a decode builds have room to grow in place, and split as
// inserted ones do when full; inserting after a decode keeps the ids in
// order, at every size around a block's fill.
func TestIndexSnapshotIDBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	randomID := func() (id uuid.UUID) {
		for i := range id {
			id[i] = byte(rng.Uint32())
		}
		return id
	}
	for _, n := range []int{0, 1, idsFill - 1, idsFill, idsFill + 1, 3*idsFill + 5} {
		var want sortedIDs
		var raw []byte
		for range n {
			want.insert(randomID())
		}
		for _, id := range want.page(nil, n) {
			raw = append(raw, id[:]...)
		}
		got := idsOf(raw)
		checkBlocks(t, &got)
		for i, b := range got.blocks {
			if cap(b) != blockSize {
				t.Fatalf("n=%d: block %d has room for %d ids, want %d", n, i, cap(b), blockSize)
			}
		}
		for range 4 * blockSize {
			id := randomID()
			got.insert(id)
			want.insert(id)
		}
		checkBlocks(t, &got)
		if g, w := got.page(nil, got.len()+1), want.page(nil, want.len()+1); !slices.Equal(g, w) {
			t.Fatalf("n=%d: after inserts, %d ids, want %d in the same order", n, len(g), len(w))
		}
	}
}

// Every way the bytes can be wrong is an error that wraps ErrCorrupt: a
// truncation anywhere, and each field out of its range.
func TestDecodeIndexCorrupt(t *testing.T) {
	s := newIndexScript(1)
	x := newIndexed()
	s.add(400, x)
	b := encodeIndex(x)
	for n := range len(b) {
		if _, err := decodeIndexed(snapshot.NewDecoder(b[:n]), x.s, x.store); !errors.Is(err, snapshot.ErrCorrupt) {
			t.Fatalf("the first %d of %d bytes: error %v, want ErrCorrupt", n, len(b), err)
		}
	}

	// One value whose trail is changed after it was encoded well.
	id := uuid.UUID{1}
	other := uuid.UUID{2}
	for _, tt := range []struct {
		name   string
		modify func(x *indexed, t *trail)
		// afterEncoding: modify changes x after it is encoded, before it is
		// decoded, instead of before it is encoded.
		afterEncoding bool
	}{
		{"a wrong entry count", func(_ *indexed, t *trail) { t.n++ }, false},
		{"a wrong last point", func(_ *indexed, t *trail) { t.last.time++ }, false},
		{"a partition below -1", func(_ *indexed, t *trail) { t.partition = -2 }, false},
		{"a trail of no entries", func(_ *indexed, t *trail) { *t = trail{} }, false},
		{"data left over", func(_ *indexed, t *trail) { t.data = append(t.data, 0, 0) }, false},
		{"an offset that goes back", func(_ *indexed, t *trail) { t.data[2] = 0 }, false},
		{"a truncated entry", func(_ *indexed, t *trail) { t.data[len(t.data)-1] |= 0x80 }, false},
		{"a block beyond the store's end", func(x *indexed, _ *trail) { x.versionBlocks[id][1].pos = x.store.end() }, false},
		{"a block of no bytes", func(x *indexed, _ *trail) { x.versionBlocks[id][1].length = 0 }, false},
		{"blocks out of order", func(x *indexed, _ *trail) {
			b := x.versionBlocks[id]
			b[0], b[1] = b[1], b[0]
		}, false},
		{"a stored block missing", func(x *indexed, _ *trail) { x.versionBlocks[id] = x.versionBlocks[id][1:] }, false},
		{"an unfinished block that does not start where the stored ones end", func(x *indexed, _ *trail) { x.versionBlocks[id][1].last.offset-- }, false},
		{"ids out of order", func(x *indexed, _ *trail) {
			x.ids.blocks[0][0], x.ids.blocks[0][1] = x.ids.blocks[0][1], x.ids.blocks[0][0]
		}, false},
		{"a value the state does not hold", func(x *indexed, _ *trail) {
			// The index is encoded with the state it stands beside, then
			// decoded for another one.
			x.s = stateWith(id, uuid.UUID{3})
		}, true},
		{"a value fewer than the state", func(x *indexed, _ *trail) { x.s = stateWith(id, other, uuid.UUID{4}) }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			x := newIndexed()
			for i := range 2*markEvery + 10 {
				e := domain.Event{Action: domain.ValueUpdated, ValueID: id, Timestamp: time.Unix(int64(i), 0)}
				if i == 0 {
					e.Action = domain.ValueCreated
				}
				x.fold(&eventlog.Record{Offset: int64(i)}, &e)
			}
			e := domain.Event{Action: domain.ValueCreated, ValueID: other}
			x.fold(&eventlog.Record{Offset: 1000}, &e)
			if _, err := decodeIndexed(snapshot.NewDecoder(encodeIndex(x)), x.s, x.store); err != nil {
				t.Fatalf("before the change: %v", err)
			}
			k, _ := x.s.Number(id)
			var encoded []byte
			if tt.afterEncoding {
				encoded = encodeIndex(x)
			}
			tt.modify(x, x.versions.At(k))
			if !tt.afterEncoding {
				encoded = encodeIndex(x)
			}
			if _, err := decodeIndexed(snapshot.NewDecoder(encoded), x.s, x.store); !errors.Is(err, snapshot.ErrCorrupt) {
				t.Fatalf("error %v, want ErrCorrupt", err)
			}
		})
	}
}

// FuzzDecodeIndex: whatever the bytes, decodeIndex returns an index or an
// error that wraps ErrCorrupt, never panics, and an index it returns
// answers every query without panicking and takes more events.
func FuzzDecodeIndex(f *testing.F) {
	for _, n := range []int{0, 1, 300, 3000} { // 3000: trails with stored blocks
		s := newIndexScript(uint64(n))
		x := newIndexed()
		s.add(n, x)
		f.Add(encodeIndex(x))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// The blocks are not in this store: the lookups that need them
		// fail, the others answer.
		x, err := decodeIndexed(snapshot.NewDecoder(b), stateOfIDs(b), newMemBlocks())
		if err != nil {
			if !errors.Is(err, snapshot.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		for _, id := range x.ids.page(nil, x.ids.len()) {
			versions, rejected, found := x.history(x.s, id)
			if !found {
				t.Fatalf("value %s is in the ids, not in the versions", id)
			}
			for _, l := range []lookup{versions, rejected} {
				l.from(0, func(i int, p point) bool {
					l.at(i)
					l.countUntil(p.time)
					l.after(p.offset)
					return true
				})
				l.countUntil(1 << 62)
				l.after(1 << 62)
			}
		}
		newIndexScript(7).add(50, x)
		checkBlocks(t, &x.ids)
	})
}

// BenchmarkIndexSnapshot encodes and decodes the index of 100,000 values
// of 10 events each (the replay benchmark's mix).
func BenchmarkIndexSnapshot(b *testing.B) {
	const values = 100_000
	events, s := historyOf(10*values, values, 0)
	x := indexOf(s, events)
	encoded := encodeIndex(&indexed{index: *x, s: s})
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encodeIndex(&indexed{index: *x, s: s})
		}
		b.ReportMetric(float64(len(encoded)), "bytes")
		b.ReportMetric(float64(len(encoded))/values, "bytes/value")
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeIndex(snapshot.NewDecoder(encoded), s, x.store); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// stateOfIDs returns a state that holds the values whose ids an encoded
// index starts with (as many as it can read), in their order, for the
// fuzzer: a snapshot's index comes with the state of its fold.
func stateOfIDs(b []byte) *domain.State {
	d := snapshot.NewDecoder(b)
	d.UUID()
	d.Uvarint()
	n := d.Int(16 + 7)
	raw := d.Raw(16 * n)
	var ids []uuid.UUID
	for i := 0; i+16 <= len(raw); i += 16 {
		ids = append(ids, uuid.UUID(raw[i:i+16]))
	}
	return stateWith(ids...)
}

// stateWith returns a state of values with the given ids, in that order
// (an id given twice once).
func stateWith(ids ...uuid.UUID) *domain.State {
	s, _ := domain.StateOf(func(yield func(uuid.UUID, domain.Value) bool) {
		seen := map[uuid.UUID]bool{}
		for _, id := range ids {
			if !seen[id] && !yield(id, domain.Value{Version: 1}) {
				return
			}
			seen[id] = true
		}
	})
	return s
}

// decodeIndex reads what encode wrote, for the State s that the snapshot's
// fold holds, with its blocks in store, as DecodeSnapshotPart and Restore
// do in two steps (without Restore's check of the store).
func decodeIndex(d *snapshot.Decoder, s *domain.State, store blockStore) (index, error) {
	p, err := decodeIndexPart(d)
	if err != nil {
		return index{}, err
	}
	return p.attach(s, store)
}
