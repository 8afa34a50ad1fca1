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

// ErrNoSpace is wrapped by the error of an Append for which the log has no
// room: the disk is full, or the append would take the free space that the
// file log keeps in reserve for the records that must still be written (see
// filelog.Options.RefuseBelowReserve; the error then says how many bytes
// are free and needed). An append refused for the reserve stored nothing.
// It is a condition to wait out, not a bad request: answer 503.
var ErrNoSpace = errors.New("eventlog: no space left for new records")

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
