// Package eventlog defines the log that the calculator is built on: named
// topics of keyed records, appended durably and read in order from any offset.
// The commands and the events each live in one topic.
//
// Two backends implement Log: filelog (append-only files in a data directory,
// the default) and kafkalog (Apache Kafka). Package logtest holds the
// conformance suite that both pass.
package eventlog

import (
	"context"
	"errors"
	"fmt"
)

// Header is a key/value pair carried beside a record's value (a Kafka header).
type Header struct {
	Key   string
	Value []byte
}

// Message is a record to append: Key decides the partition (the value id, so
// that the records of one value keep their order), Value is the payload.
type Message struct {
	Key     []byte
	Value   []byte
	Headers []Header
}

// Record is a message as stored in a topic, with its position.
type Record struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
}

// Header returns the value of the record's first header with the given key.
func (r Record) Header(key string) ([]byte, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// Offsets maps a partition to an offset in it. As a starting point, a missing
// partition means offset 0.
type Offsets map[int32]int64

// Batch is what Follow delivers: the next records of a topic, in order within
// each partition.
type Batch struct {
	Records []Record
	// Next is the reader's position after these records: for every
	// partition of the topic, the offset it reads next. It is one past the
	// last record delivered, or further where offsets that hold no record
	// for a reader follow it (Kafka's transaction markers, and the records
	// of aborted transactions). Compare it with End, not with a count of
	// records.
	Next Offsets
	// CaughtUp marks the end of a replay: the first batch with CaughtUp set
	// is the first after which Next has reached, in every partition, the
	// end that the topic had when Follow began (End's answer then). Records
	// appended since do not delay it, so a replay ends even while writers
	// keep appending. Later batches set it again whenever the reader has
	// delivered everything it knows of. A batch may be empty when it only
	// carries the signal (an empty topic, say).
	CaughtUp bool
}

// ErrClosed is returned by the operations of a closed Log.
var ErrClosed = errors.New("eventlog: log closed")

// ErrNoRecord is wrapped by the error of a Read for an offset that holds no
// record a reader can see: one past the end of the partition, a Kafka
// transaction marker or a record of an aborted transaction, or a record
// that retention has removed.
var ErrNoRecord = errors.New("eventlog: no record at that offset")

// ErrNoSpace is wrapped by the error of an Append for which the log has no
// room: the disk is full, or the append would take the free space that the
// file log keeps in reserve for the records that must still be written (see
// filelog.Options.RefuseBelowReserve; the error then says how many bytes
// are free and needed). An append refused for the reserve stored nothing.
// It is a condition to wait out, not a bad request: answer 503.
var ErrNoSpace = errors.New("eventlog: no space left for new records")

// ErrFenced is wrapped by the error of a writer's Append when a newer
// writer with the same identity has been opened since: this one can never
// write again (Kafka fences a transactional producer this way). An owner of
// a partition whose writer is fenced has lost the partition to another
// owner, whether it has been told so yet or not.
var ErrFenced = errors.New("eventlog: writer fenced by a newer one")

// Log is an ordered, durable, replayable log of topics.
//
// Ordering: records appended by one Append call, and by Append calls that
// return one after the other, are stored in that order within a partition.
// Every reader sees a partition's records in offset order, each offset once.
//
// Durability: when Append returns nil, every message it was given is durable
// (fsync'd by the file log, acknowledged by all in-sync replicas on Kafka) and
// will be seen by every later Follow. When it returns an error, each message
// may or may not have been stored; callers that retry must tolerate
// duplicates (the processor does, by command id). Concurrent appends are
// batched by the backend, so many callers share one disk sync or one produce
// request.
//
// Cancelling: a cancelled context makes Append return ctx.Err() at once,
// without undoing messages already handed to the backend, and makes Follow
// return ctx.Err() between batches.
//
// Close waits for appends that are already being written, wakes every
// Follow (they return ErrClosed) and releases the log's resources. Calls
// after Close return ErrClosed.
type Log interface {
	// Append stores msgs at the end of topic, in order.
	Append(ctx context.Context, topic string, msgs ...Message) error
	// Follow reads topic from the given offsets on and calls fn with each
	// batch of records, then keeps following new records as they become
	// durable, without polling delays, until ctx is done or fn returns an
	// error (which Follow returns). The records of a batch, and their byte
	// slices, belong to fn: the log does not reuse them.
	Follow(ctx context.Context, topic string, from Offsets, fn func(Batch) error) error
	// Read returns the records at the given offsets of one partition of
	// topic, in the order of offsets, which must be increasing (an error
	// otherwise; none is no error and no records). It reads the log itself,
	// not a copy: it is how a reader that kept only positions (the view,
	// for a value's history) finds records again. Every offset must hold a
	// record that Follow delivers: when one does not, Read returns an error
	// wrapping ErrNoRecord, and no records. Like Follow it sees only durable
	// records (committed ones, on Kafka), so an offset that Follow has
	// delivered can always be read. A cancelled context makes it return
	// ctx.Err(). The records and their byte slices belong to the caller.
	Read(ctx context.Context, topic string, partition int32, offsets []int64) ([]Record, error)
	// End returns, for each partition of topic, the end that a reader can
	// reach now: the offset after the last record readable now, and after
	// the offsets without a readable record that follow it. On the file
	// log that is the number of records. On Kafka it is the last stable
	// offset: it counts transaction markers and aborted records, and stops
	// at the first record of a transaction still open, which a
	// read_committed reader cannot read yet. A Follow's Next reaches it.
	End(ctx context.Context, topic string) (Offsets, error)
	// Close releases the log. See above.
	Close() error
}

// ErrStopFollowing is a convenient error for a Follow callback that is done
// reading; callers compare with errors.Is and treat it as success.
var ErrStopFollowing = errors.New("eventlog: stop following")

// CheckReadOffsets returns an error unless offsets are at least 0 and
// increasing, as Read requires: the check both backends make first.
func CheckReadOffsets(offsets []int64) error {
	for i, o := range offsets {
		if o < 0 {
			return fmt.Errorf("eventlog: read at negative offset %d", o)
		}
		if i > 0 && o <= offsets[i-1] {
			return fmt.Errorf("eventlog: read offsets must increase: %d after %d", o, offsets[i-1])
		}
	}
	return nil
}
