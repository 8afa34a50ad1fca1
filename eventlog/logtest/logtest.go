// Package logtest is the conformance suite for eventlog.Log: every backend
// runs the same tests, so that the processor and the view can rely on the
// contract written on the interface rather than on one backend's habits.
// ReadAll and ReadValues read a topic back for the other packages' tests.
package logtest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"calculator/eventlog"
)

// Backend describes the log under test.
type Backend struct {
	// Open returns a log. Each test uses topics of its own.
	Open func(t *testing.T) eventlog.Log
	// Reopen closes l and opens the same storage again, as a restarted
	// process would.
	Reopen func(t *testing.T, l eventlog.Log) eventlog.Log
	// CreateTopic prepares a topic before use, or is nil when topics come
	// into being on first use.
	CreateTopic func(t *testing.T, name string)
	// ContiguousOffsets is true when a partition's offsets are 0, 1, 2, ...
	// without gaps (Kafka's transaction markers take offsets; the file
	// log has none).
	ContiguousOffsets bool
}

// Timeout bounds every wait in the suite.
var Timeout = 30 * time.Second

// CatchUpWithin bounds how long a Follow from offset 0 of a short topic may
// take to report CaughtUp while writers keep appending.
var CatchUpWithin = 10 * time.Second

var topicSeq atomic.Int64

func (b Backend) topic(t *testing.T) string {
	name := fmt.Sprintf("logtest-%d-%d", time.Now().UnixNano(), topicSeq.Add(1))
	if b.CreateTopic != nil {
		b.CreateTopic(t, name)
	}
	return name
}

// Run runs the suite.
func Run(t *testing.T, b Backend) {
	t.Run("EmptyTopicIsCaughtUp", func(t *testing.T) { testEmptyTopic(t, b) })
	t.Run("AppendThenFollowInOrder", func(t *testing.T) { testAppendThenFollow(t, b) })
	t.Run("FollowFromOffset", func(t *testing.T) { testFollowFromOffset(t, b) })
	t.Run("FollowSeesNewRecords", func(t *testing.T) { testFollowLive(t, b) })
	t.Run("NextReachesEnd", func(t *testing.T) { testNextReachesEnd(t, b) })
	t.Run("CaughtUpWhileAppending", func(t *testing.T) { testCaughtUpWhileAppending(t, b) })
	t.Run("ConcurrentAppendsKeepEachCallersOrder", func(t *testing.T) { testConcurrentAppends(t, b) })
	t.Run("EndCountsRecords", func(t *testing.T) { testEnd(t, b) })
	t.Run("CancelStopsFollow", func(t *testing.T) { testCancelFollow(t, b) })
	t.Run("CancelledAppendReturns", func(t *testing.T) { testCancelledAppend(t, b) })
	t.Run("CallbackErrorStopsFollow", func(t *testing.T) { testCallbackError(t, b) })
	t.Run("AppendsSurviveReopen", func(t *testing.T) { testReopen(t, b) })
	t.Run("CloseWakesFollowers", func(t *testing.T) { testCloseWakesFollow(t, b) })
	t.Run("ReadFindsRecordsByOffset", func(t *testing.T) { testRead(t, b) })
	t.Run("ReadOfAnOffsetWithoutARecord", func(t *testing.T) { testReadNoRecord(t, b) })
	t.Run("ReadChecksItsArguments", func(t *testing.T) { testReadArguments(t, b) })
	t.Run("ReadAfterReopen", func(t *testing.T) { testReadAfterReopen(t, b) })
	t.Run("ReadAfterClose", func(t *testing.T) { testReadAfterClose(t, b) })
}

func msg(key string, i int) eventlog.Message {
	return eventlog.Message{
		Key:     []byte(key),
		Value:   []byte(fmt.Sprintf(`{"n":%d}`, i)),
		Headers: []eventlog.Header{{Key: "n", Value: []byte(strconv.Itoa(i))}},
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// readUntil follows topic from the given offsets and collects records until
// done says it has enough (checked after every batch), or the timeout.
func readUntil(t testing.TB, l eventlog.Log, topic string, from eventlog.Offsets, done func([]eventlog.Record, bool) bool) []eventlog.Record {
	t.Helper()
	var got []eventlog.Record
	err := l.Follow(ctxT(t), topic, from, func(b eventlog.Batch) error {
		if err := checkNext(b); err != nil {
			return err
		}
		got = append(got, b.Records...)
		if done(got, b.CaughtUp) {
			return eventlog.ErrStopFollowing
		}
		return nil
	})
	if !errors.Is(err, eventlog.ErrStopFollowing) {
		t.Fatalf("Follow(%s) = %v after %d records, want it stopped by the callback", topic, err, len(got))
	}
	return got
}

func caughtUp(_ []eventlog.Record, c bool) bool { return c }

// ReadAll follows topic from its start until CaughtUp (within Timeout) and
// returns the records read: how a test reads a topic back.
func ReadAll(tb testing.TB, l eventlog.Log, topic string) []eventlog.Record {
	tb.Helper()
	return readUntil(tb, l, topic, nil, caughtUp)
}

// ReadValues is ReadAll's record values, as strings.
func ReadValues(tb testing.TB, l eventlog.Log, topic string) []string {
	tb.Helper()
	var values []string
	for _, r := range ReadAll(tb, l, topic) {
		values = append(values, string(r.Value))
	}
	return values
}

// checkNext checks that a batch's Next is past each of its records.
func checkNext(b eventlog.Batch) error {
	for _, r := range b.Records {
		next, ok := b.Next[r.Partition]
		if !ok || next <= r.Offset {
			return fmt.Errorf("batch with a record at partition %d offset %d has Next %v, want past it", r.Partition, r.Offset, b.Next)
		}
	}
	return nil
}

// checkReached checks that next has reached end in every partition.
func checkReached(next, end eventlog.Offsets) error {
	for p, e := range end {
		if next[p] < e {
			return fmt.Errorf("CaughtUp with Next %v, want at least the end at start %v in every partition", next, end)
		}
	}
	return nil
}

func atLeast(n int) func([]eventlog.Record, bool) bool {
	return func(r []eventlog.Record, _ bool) bool { return len(r) >= n }
}

func appendN(t *testing.T, l eventlog.Log, topic, key string, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := l.Append(ctxT(t), topic, msg(key, i)); err != nil {
			t.Fatalf("Append #%d: %v", i, err)
		}
	}
}

// checkSequence checks that records carry values 0..n-1 in order, with
// increasing offsets and the header and key that were written.
func checkSequence(t *testing.T, recs []eventlog.Record, first, n int, key string) {
	t.Helper()
	if len(recs) != n {
		t.Fatalf("got %d records, want %d", len(recs), n)
	}
	for i, r := range recs {
		want := msg(key, first+i)
		if string(r.Value) != string(want.Value) || string(r.Key) != key {
			t.Fatalf("record %d = key %q value %s, want key %q value %s", i, r.Key, r.Value, key, want.Value)
		}
		if h, ok := r.Header("n"); !ok || string(h) != strconv.Itoa(first+i) {
			t.Fatalf("record %d header n = %q (present %v), want %d", i, h, ok, first+i)
		}
		if i > 0 && r.Offset <= recs[i-1].Offset {
			t.Fatalf("record %d offset %d after offset %d: offsets must increase", i, r.Offset, recs[i-1].Offset)
		}
	}
}

func testEmptyTopic(t *testing.T, b Backend) {
	l := b.Open(t)
	got := readUntil(t, l, b.topic(t), nil, caughtUp)
	if len(got) != 0 {
		t.Fatalf("empty topic delivered %d records", len(got))
	}
}

func testAppendThenFollow(t *testing.T, b Backend) {
	l, topic := b.Open(t), b.topic(t)
	appendN(t, l, topic, "k", 0, 50)
	// One Append with several messages keeps their order too.
	batch := []eventlog.Message{msg("k", 50), msg("k", 51), msg("k", 52)}
	if err := l.Append(ctxT(t), topic, batch...); err != nil {
		t.Fatal(err)
	}
	got := readUntil(t, l, topic, nil, caughtUp)
	checkSequence(t, got, 0, 53, "k")
	if b.ContiguousOffsets {
		for i, r := range got {
			if r.Offset != int64(i) {
				t.Fatalf("record %d has offset %d, want %d", i, r.Offset, i)
			}
		}
	}
}

func testFollowFromOffset(t *testing.T, b Backend) {
	l, topic := b.Open(t), b.topic(t)
	appendN(t, l, topic, "k", 0, 20)
	all := readUntil(t, l, topic, nil, caughtUp)
	from := all[12]
	got := readUntil(t, l, topic, eventlog.Offsets{from.Partition: from.Offset}, caughtUp)
	checkSequence(t, got, 12, 8, "k")
}

func testFollowLive(t *testing.T, b Backend) {
	l, topic := b.Open(t), b.topic(t)
	appendN(t, l, topic, "k", 0, 3)
	var (
		mu        sync.Mutex
		got       []eventlog.Record
		caught    = make(chan struct{})
		caughtSet bool
	)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	go func() {
		done <- l.Follow(ctx, topic, nil, func(b eventlog.Batch) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, b.Records...)
			if b.CaughtUp && !caughtSet {
				caughtSet = true
				close(caught)
			}
			if len(got) == 10 {
				return eventlog.ErrStopFollowing
			}
			return nil
		})
	}()
	select {
	case <-caught:
	case <-time.After(Timeout):
		t.Fatal("no CaughtUp after replaying 3 records")
	}
	appendN(t, l, topic, "k", 3, 7)
	select {
	case err := <-done:
		if !errors.Is(err, eventlog.ErrStopFollowing) {
			t.Fatalf("Follow = %v", err)
		}
	case <-time.After(Timeout):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("follower saw %d of 10 records", len(got))
	}
	checkSequence(t, got, 0, 10, "k")
}

func testConcurrentAppends(t *testing.T, b Backend) {
	l, topic := b.Open(t), b.topic(t)
	const writers, each = 8, 100
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("writer-%d", w)
			for i := range each {
				if err := l.Append(ctxT(t), topic, msg(key, i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := readUntil(t, l, topic, nil, atLeast(writers*each))
	perKey := map[string][]eventlog.Record{}
	for _, r := range got {
		perKey[string(r.Key)] = append(perKey[string(r.Key)], r)
	}
	for w := range writers {
		key := fmt.Sprintf("writer-%d", w)
		checkSequence(t, perKey[key], 0, each, key)
	}
}

func testEnd(t *testing.T, b Backend) {
	l, topic := b.Open(t), b.topic(t)
	end, err := l.End(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	if sum(end) != 0 {
		t.Fatalf("End of an empty topic = %v, want 0 in every partition", end)
	}
	appendN(t, l, topic, "k", 0, 5)
	end, err = l.End(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	if b.ContiguousOffsets && sum(end) != 5 || sum(end) < 5 {
		t.Fatalf("End after 5 appends = %v", end)
	}
}

func sum(o eventlog.Offsets) int64 {
	var s int64
	for _, v := range o {
		s += v
	}
	return s
}

func testCancelFollow(t *testing.T, b Backend) {
	l, topic := b.Open(t), b.topic(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	done := followCaughtUp(t, ctx, l, topic)
	cancel()
	checkFollowReturns(t, done, context.Canceled, "its context was cancelled")
}

// followCaughtUp starts a Follow of topic from its start, to run until it
// fails, and waits for its first CaughtUp. The Follow's error comes on the
// channel it returns.
func followCaughtUp(t *testing.T, ctx context.Context, l eventlog.Log, topic string) <-chan error {
	t.Helper()
	caught := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- l.Follow(ctx, topic, nil, func(b eventlog.Batch) error {
			if b.CaughtUp {
				select {
				case caught <- struct{}{}:
				default:
				}
			}
			return nil
		})
	}()
	select {
	case <-caught:
	case <-time.After(Timeout):
		t.Fatal("no CaughtUp")
	}
	return done
}

// checkFollowReturns waits for a Follow's error from done, and checks that
// it is want, the error of what happened (after ...).
func checkFollowReturns(t *testing.T, done <-chan error, want error, after string) {
	t.Helper()
	select {
	case err := <-done:
		if !errors.Is(err, want) {
			t.Fatalf("Follow after %s = %v, want %v", after, err, want)
		}
	case <-time.After(Timeout):
		t.Fatalf("Follow did not return after %s", after)
	}
}

func testCancelledAppend(t *testing.T, b Backend) {
	l, topic := b.Open(t), b.topic(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Append(ctx, topic, msg("k", 0)); !errors.Is(err, context.Canceled) {
		// A backend may have stored it before looking at ctx; it must not
		// report success for a context that was already done.
		t.Fatalf("Append with a cancelled context = %v, want context.Canceled", err)
	}
}

func testCallbackError(t *testing.T, b Backend) {
	l, topic := b.Open(t), b.topic(t)
	appendN(t, l, topic, "k", 0, 3)
	boom := errors.New("boom")
	err := l.Follow(ctxT(t), topic, nil, func(eventlog.Batch) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Follow = %v, want the callback's error", err)
	}
}

func testReopen(t *testing.T, b Backend) {
	l, topic := b.Open(t), b.topic(t)
	appendN(t, l, topic, "k", 0, 10)
	l = b.Reopen(t, l)
	got := readUntil(t, l, topic, nil, caughtUp)
	checkSequence(t, got, 0, 10, "k")
	appendN(t, l, topic, "k", 10, 2)
	got = readUntil(t, l, topic, nil, caughtUp)
	checkSequence(t, got, 0, 12, "k")
}

func testCloseWakesFollow(t *testing.T, b Backend) {
	l, topic := b.Open(t), b.topic(t)
	done := followCaughtUp(t, ctxT(t), l, topic)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkFollowReturns(t, done, eventlog.ErrClosed, "Close")
	if err := l.Append(ctxT(t), topic, msg("k", 0)); !errors.Is(err, eventlog.ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
}

// testNextReachesEnd: the batch that says CaughtUp has Next at End, in End's
// unit (offsets, transaction markers included), not short of it.
func testNextReachesEnd(t *testing.T, b Backend) {
	l, topic := b.Open(t), b.topic(t)
	appendN(t, l, topic, "k", 0, 10)
	if err := l.Append(ctxT(t), topic, msg("j", 10), msg("k", 11)); err != nil {
		t.Fatal(err)
	}
	end, err := l.End(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	var (
		next eventlog.Offsets
		got  []eventlog.Record
	)
	err = l.Follow(ctxT(t), topic, nil, func(batch eventlog.Batch) error {
		if err := checkNext(batch); err != nil {
			return err
		}
		got = append(got, batch.Records...)
		if batch.CaughtUp {
			next = batch.Next
			return eventlog.ErrStopFollowing
		}
		return nil
	})
	if !errors.Is(err, eventlog.ErrStopFollowing) {
		t.Fatalf("Follow = %v", err)
	}
	if len(got) != 12 {
		t.Fatalf("read %d records before CaughtUp, want 12", len(got))
	}
	if err := checkReached(next, end); err != nil {
		t.Fatal(err)
	}
	if b.ContiguousOffsets && sum(next) != 12 {
		t.Fatalf("Next after 12 records = %v, want 12 in all", next)
	}
}

// testCaughtUpWhileAppending is the replay of a restarted process while
// clients keep writing: a Follow from offset 0 must report CaughtUp once it
// has read what the topic held when it began, although the end keeps moving
// (issue 13.1: on Kafka, waiting for the very end never ended under load).
// The history is longer than one batch, so that the test can learn, at the
// first batch, an end that is at least the one Follow began with: every
// batch that reaches it must carry CaughtUp, or come after one that did.
func testCaughtUpWhileAppending(t *testing.T, b Backend) {
	l, topic := b.Open(t), b.topic(t)
	const history, writers = 10000, 4
	for i := 0; i < history; i += 500 {
		batch := make([]eventlog.Message, 500)
		for j := range batch {
			batch[j] = msg("history", i+j)
		}
		if err := l.Append(ctxT(t), topic, batch...); err != nil {
			t.Fatal(err)
		}
	}
	ctx, stop := context.WithCancel(ctxT(t))
	var (
		appended atomic.Int64
		wg       sync.WaitGroup
		failed   = make(chan error, writers)
	)
	for w := range writers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				if err := l.Append(ctx, topic, msg(fmt.Sprintf("writer-%d", w), i)); err != nil {
					if ctx.Err() == nil {
						failed <- err
					}
					return
				}
				appended.Add(1)
			}
		})
	}
	defer func() {
		stop()
		wg.Wait()
		select {
		case err := <-failed:
			t.Errorf("Append while following: %v", err)
		default:
		}
	}()
	for appended.Load() < 10 { // the writers are going
		select {
		case err := <-failed:
			t.Fatalf("Append: %v", err)
		case <-time.After(time.Millisecond):
		}
	}

	before := history + int(appended.Load()) // all stored before End is asked
	endBefore, err := l.End(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	follow, cancel := context.WithTimeout(ctxT(t), CatchUpWithin)
	defer cancel()
	var (
		read, batches int
		endAfter      eventlog.Offsets // End once Follow has begun: at least the end it began with
	)
	err = l.Follow(follow, topic, nil, func(batch eventlog.Batch) error {
		if err := checkNext(batch); err != nil {
			return err
		}
		read += len(batch.Records)
		batches++
		if endAfter == nil {
			var err error
			if endAfter, err = l.End(follow, topic); err != nil {
				return err
			}
		}
		if !batch.CaughtUp {
			if checkReached(batch.Next, endAfter) == nil {
				return fmt.Errorf("batch %d reached %v, past the end Follow began with, without CaughtUp (Next %v)", batches, endAfter, batch.Next)
			}
			return nil
		}
		if err := checkReached(batch.Next, endBefore); err != nil {
			return err
		}
		return eventlog.ErrStopFollowing
	})
	took := time.Since(began)
	if !errors.Is(err, eventlog.ErrStopFollowing) {
		t.Fatalf("Follow from 0 while %d writers append: %v after %s and %d records (%d appended meanwhile), want CaughtUp within %s",
			writers, err, took.Round(time.Millisecond), read, int(appended.Load())+history-before, CatchUpWithin)
	}
	if read < before {
		t.Fatalf("CaughtUp after %d records, want at least the %d stored before Follow began", read, before)
	}
	t.Logf("CaughtUp after %s, %d batches and %d records; %d appended before, %d by the time it was over",
		took.Round(time.Millisecond), batches, read, before, int(appended.Load())+history-before)
}

// byPartition groups records by partition, in the order given.
func byPartition(recs []eventlog.Record) map[int32][]eventlog.Record {
	out := map[int32][]eventlog.Record{}
	for _, r := range recs {
		out[r.Partition] = append(out[r.Partition], r)
	}
	return out
}

// checkRead reads the records of want (all of one partition, in offset
// order) again by their offsets and checks that Read gives back each one
// as Follow delivered it.
func checkRead(t *testing.T, l eventlog.Log, topic string, want []eventlog.Record) {
	t.Helper()
	if len(want) == 0 {
		return
	}
	offsets := make([]int64, len(want))
	for i, r := range want {
		offsets[i] = r.Offset
	}
	got, err := l.Read(ctxT(t), topic, want[0].Partition, offsets)
	if err != nil {
		t.Fatalf("Read(partition %d, %d offsets from %d to %d): %v", want[0].Partition, len(offsets), offsets[0], offsets[len(offsets)-1], err)
	}
	if len(got) != len(want) {
		t.Fatalf("Read of %d offsets returned %d records", len(want), len(got))
	}
	for i, r := range got {
		w := want[i]
		if r.Partition != w.Partition || r.Offset != w.Offset || string(r.Key) != string(w.Key) || string(r.Value) != string(w.Value) {
			t.Fatalf("Read record %d = partition %d offset %d key %q value %s, want partition %d offset %d key %q value %s",
				i, r.Partition, r.Offset, r.Key, r.Value, w.Partition, w.Offset, w.Key, w.Value)
		}
		if fmt.Sprint(r.Headers) != fmt.Sprint(w.Headers) {
			t.Fatalf("Read record %d headers %v, want %v", i, r.Headers, w.Headers)
		}
	}
}

// every returns every step-th record of recs, starting with the first,
// and the last.
func every(recs []eventlog.Record, step int) []eventlog.Record {
	var out []eventlog.Record
	for i := 0; i < len(recs); i += step {
		out = append(out, recs[i])
	}
	if len(recs) > 0 && (len(recs)-1)%step != 0 {
		out = append(out, recs[len(recs)-1])
	}
	return out
}

// testRead reads back, by offset, single records, runs of neighbours and
// records far apart (600 records a partition: far enough for a backend to
// seek between them rather than read through).
func testRead(t *testing.T, b Backend) {
	l, topic := b.Open(t), b.topic(t)
	var msgs []eventlog.Message
	for i := range 1800 {
		msgs = append(msgs, msg(fmt.Sprintf("key-%d", i%3), i))
	}
	if err := l.Append(ctxT(t), topic, msgs...); err != nil {
		t.Fatal(err)
	}
	all := readUntil(t, l, topic, nil, atLeast(len(msgs)))
	for p, recs := range byPartition(all) {
		t.Logf("partition %d: %d records, offsets %d to %d", p, len(recs), recs[0].Offset, recs[len(recs)-1].Offset)
		checkRead(t, l, topic, recs[:1])                        // the first
		checkRead(t, l, topic, recs[len(recs)-1:])              // the last
		checkRead(t, l, topic, recs[len(recs)/2:len(recs)/2+1]) // one in the middle
		checkRead(t, l, topic, recs)                            // all of them
		checkRead(t, l, topic, recs[10:40])                     // a run
		checkRead(t, l, topic, every(recs, 7))                  // near neighbours
		checkRead(t, l, topic, every(recs, 290))                // far apart
	}
}

// testReadNoRecord reads offsets that hold no record: past the end, and
// (where offsets are not contiguous) the gaps between records, which hold
// transaction markers.
func testReadNoRecord(t *testing.T, b Backend) {
	l, topic := b.Open(t), b.topic(t)
	appendN(t, l, topic, "k", 0, 5)
	all := readUntil(t, l, topic, nil, atLeast(5))
	p, last := all[0].Partition, all[len(all)-1]
	end, err := l.End(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, offsets := range [][]int64{{end[p]}, {end[p] + 100}, {all[0].Offset, end[p] + 1}} {
		if got, err := l.Read(ctxT(t), topic, p, offsets); !errors.Is(err, eventlog.ErrNoRecord) || got != nil {
			t.Errorf("Read(%v) past the end (%d) = %d records, %v; want ErrNoRecord and none", offsets, end[p], len(got), err)
		}
	}
	gaps := 0
	for i := 1; i < len(all); i++ {
		for o := all[i-1].Offset + 1; o < all[i].Offset; o++ {
			gaps++
			if _, err := l.Read(ctxT(t), topic, p, []int64{o}); !errors.Is(err, eventlog.ErrNoRecord) {
				t.Errorf("Read(%d), between records at %d and %d, = %v; want ErrNoRecord", o, all[i-1].Offset, all[i].Offset, err)
			}
			if _, err := l.Read(ctxT(t), topic, p, []int64{o, last.Offset}); !errors.Is(err, eventlog.ErrNoRecord) {
				t.Errorf("Read(%d, %d) = %v; want ErrNoRecord", o, last.Offset, err)
			}
		}
	}
	if b.ContiguousOffsets != (gaps == 0) {
		t.Errorf("%d offsets between records; the backend says contiguous: %v", gaps, b.ContiguousOffsets)
	}
	checkRead(t, l, topic, all) // and the records themselves are still there
}

func testReadArguments(t *testing.T, b Backend) {
	l, topic := b.Open(t), b.topic(t)
	appendN(t, l, topic, "k", 0, 3)
	all := readUntil(t, l, topic, nil, atLeast(3))
	p := all[0].Partition
	if got, err := l.Read(ctxT(t), topic, p, nil); err != nil || len(got) != 0 {
		t.Errorf("Read of no offsets = %d records, %v; want none and no error", len(got), err)
	}
	for _, offsets := range [][]int64{{all[1].Offset, all[0].Offset}, {all[0].Offset, all[0].Offset}, {-1}} {
		got, err := l.Read(ctxT(t), topic, p, offsets)
		if err == nil || errors.Is(err, eventlog.ErrNoRecord) || got != nil {
			t.Errorf("Read(%v) = %d records, %v; want an error about the offsets", offsets, len(got), err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Read(ctx, topic, p, []int64{all[0].Offset}); !errors.Is(err, context.Canceled) {
		t.Errorf("Read with a cancelled context = %v, want context.Canceled", err)
	}
}

func testReadAfterReopen(t *testing.T, b Backend) {
	l, topic := b.Open(t), b.topic(t)
	appendN(t, l, topic, "k", 0, 10)
	all := readUntil(t, l, topic, nil, atLeast(10))
	l = b.Reopen(t, l)
	checkRead(t, l, topic, every(all, 3))
}

func testReadAfterClose(t *testing.T, b Backend) {
	l, topic := b.Open(t), b.topic(t)
	appendN(t, l, topic, "k", 0, 2)
	all := readUntil(t, l, topic, nil, atLeast(2))
	checkRead(t, l, topic, all) // a backend that keeps readers now has one
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := l.Read(ctxT(t), topic, all[0].Partition, []int64{all[0].Offset}); !errors.Is(err, eventlog.ErrClosed) {
		t.Fatalf("Read after Close = %v, want ErrClosed", err)
	}
}
