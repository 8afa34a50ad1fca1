package subscriptions

import (
	"sync"

	"calculator/outcome"
)

// liveBatch is a batch of events as the view applied them. The Hub hands the
// same liveBatch to every events subscriber: it is read-only, and its SSE
// encoding is made once, by the first subscriber that writes it.
type liveBatch struct {
	items []outcome.Applied

	once   sync.Once
	frames [][]byte // "event: …\ndata: …\n\n" of each item; nil for an item that has none
}

// encoded returns the SSE encoding (without the id line) of each item.
func (b *liveBatch) encoded() [][]byte {
	b.once.Do(func() {
		b.frames = make([][]byte, len(b.items))
		for i := range b.items {
			b.frames[i] = eventFrame(nil, &b.items[i].Event)
		}
	})
	return b.frames
}

// queue is one subscriber's buffer between the view's goroutine (push) and
// the subscriber's HTTP handler (take). It is bounded: push never blocks, and
// a push that would take it over its limit marks it overflowed instead; the
// Hub then drops the subscriber, whose handler ends the stream. The client
// resumes with Last-Event-ID.
type queue struct {
	limit int           // events
	wake  chan struct{} // capacity 1: something to take, or overflowed

	mu         sync.Mutex
	batches    []*liveBatch
	pending    int // events in batches
	overflowed bool
}

func newQueue(limit int) *queue {
	return &queue{limit: limit, wake: make(chan struct{}, 1)}
}

// push adds b and reports whether it fit. A batch always fits an empty
// queue, so a subscriber that keeps up is never dropped for the size of one
// batch.
func (q *queue) push(b *liveBatch) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.overflowed {
		return false
	}
	if q.pending > 0 && q.pending+len(b.items) > q.limit {
		q.overflowed, q.batches, q.pending = true, nil, 0
		q.signal()
		return false
	}
	q.batches = append(q.batches, b)
	q.pending += len(b.items)
	q.signal()
	return true
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns what is queued, oldest first, and whether the queue
// overflowed (then nothing is returned: the subscriber must go).
func (q *queue) take() ([]*liveBatch, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	batches := q.batches
	q.batches, q.pending = nil, 0
	return batches, q.overflowed
}
