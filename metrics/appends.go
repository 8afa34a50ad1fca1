package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"calculator/domain"
	"calculator/eventlog"
)

// Appender is the part of eventlog.Log that the commander uses.
type Appender interface {
	Append(ctx context.Context, topic string, msgs ...eventlog.Message) error
}

// TimeAppends returns log with every Append timed
// (calculator_command_append_duration_seconds). It also notes when each
// command it stores was accepted (the append returned nil: the command is
// durable and the client gets its 202), for the accept-to-applied latency
// that Applied measures. The messages must be commands in the wire format;
// one that is not is stored all the same, and not followed.
func (m *Metrics) TimeAppends(log Appender) Appender { return &timedLog{next: log, m: m} }

type timedLog struct {
	next Appender
	m    *Metrics
}

func (l *timedLog) Append(ctx context.Context, topic string, msgs ...eventlog.Message) error {
	start := l.m.now()
	err := l.next.Append(ctx, topic, msgs...)
	end := l.m.now()
	l.m.appendSeconds.Observe((end - start).Seconds())
	if err == nil {
		for _, msg := range msgs {
			if id, ok := commandID(msg.Value); ok {
				l.m.accepted.put(id, end)
			}
		}
	}
	return err
}

// idPrefix is how the wire form of a command begins (domain's AppendJSON):
// its id comes first.
const idPrefix = `{"id":"`

// commandID returns the id of the command in its wire form. The
// commander's commands begin with their id, which is read in place (a
// twentieth of the time of decoding the whole command, on the path of
// every command); any other form is decoded.
func commandID(value []byte) (uuid.UUID, bool) {
	const end = len(idPrefix) + 36
	if len(value) > end && string(value[:len(idPrefix)]) == idPrefix && value[end] == '"' {
		if id, err := uuid.ParseBytes(value[len(idPrefix):end]); err == nil {
			return id, true
		}
	}
	cmd, err := domain.DecodeCommand(value)
	return cmd.ID, err == nil
}

// acceptTimesLimit bounds each generation of acceptTimes: a command waits
// there for its outcome, usually a few milliseconds, so 2×65,536 entries
// (about 5 MiB at most) are far more than are ever in flight. An entry
// whose outcome never comes to the view (a command id stored twice, whose
// second copy the processor skips) is forgotten two generations later.
const acceptTimesLimit = 1 << 16

// acceptTimes maps a command id to when it was accepted, in two generations:
// when the current one is full it becomes the old one, and the old one's
// entries are forgotten. So it stays bounded without a clock or a goroutine
// of its own, and an entry lives at least limit insertions.
type acceptTimes struct {
	mu       sync.Mutex
	cur, old map[uuid.UUID]time.Duration
	limit    int
}

func newAcceptTimes(limit int) *acceptTimes {
	return &acceptTimes{cur: make(map[uuid.UUID]time.Duration), old: make(map[uuid.UUID]time.Duration), limit: limit}
}

func (t *acceptTimes) put(id uuid.UUID, at time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.cur) >= t.limit {
		clear(t.old)
		t.cur, t.old = t.old, t.cur
	}
	t.cur[id] = at
}

// take removes and returns the time id was accepted, if it is held. The
// caller holds t.mu (Applied takes a whole batch under one lock).
func (t *acceptTimes) take(id uuid.UUID) (time.Duration, bool) {
	if at, ok := t.cur[id]; ok {
		delete(t.cur, id)
		return at, true
	}
	if at, ok := t.old[id]; ok {
		delete(t.old, id)
		return at, true
	}
	return 0, false
}

// len is the number of entries held.
func (t *acceptTimes) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.cur) + len(t.old)
}
