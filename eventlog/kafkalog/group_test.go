package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"calculator/eventlog"
	"calculator/internal/await"
	"calculator/internal/kafkatest"
)

// A writer bound to a partition puts every message there, whatever its key.
func TestTxnWriterToOnePartition(t *testing.T) {
	l, brokers, topic := onNewTopic(t, "partition", 3)
	partition := int32(2)
	w, err := l.TransactionalWriter(kafkatest.Context(t, 60*time.Second), TxnConfig{TransactionalID: "partition-" + uuid.NewString(), Partition: &partition})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var msgs []eventlog.Message
	for i := range 30 {
		msgs = append(msgs, msg(uuid.NewString(), fmt.Sprint(i)))
	}
	if err := w.Append(kafkatest.Context(t, 30*time.Second), topic, msgs...); err != nil {
		t.Fatal(err)
	}
	got := kafkatest.ReadAll(t, brokers, topic)
	if len(got) != len(msgs) {
		t.Fatalf("the topic holds %d records, want %d", len(got), len(msgs))
	}
	for _, m := range got {
		if m.TopicPartition.Partition != partition {
			t.Fatalf("record %s with key %s is in partition %d, want %d", m.Value, m.Key, m.TopicPartition.Partition, partition)
		}
	}
}

// FollowPartitions reads the given partitions alone, and CaughtUp speaks of
// them alone.
func TestFollowPartitions(t *testing.T) {
	l, brokers, topic := onNewTopic(t, "follow-partitions", 3)
	ctx := kafkatest.Context(t, 60*time.Second)
	var msgs []eventlog.Message
	for i := range 60 {
		msgs = append(msgs, msg(uuid.NewString(), fmt.Sprint(i)))
	}
	if err := l.Append(ctx, topic, msgs...); err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, m := range kafkatest.ReadAll(t, brokers, topic) {
		if m.TopicPartition.Partition == 1 {
			want++
		}
	}
	if want == 0 || want == len(msgs) {
		t.Fatalf("%d of %d records in partition 1: the test needs some there and some elsewhere", want, len(msgs))
	}
	got := 0
	err := l.FollowPartitions(ctx, topic, []int32{1}, nil, func(b eventlog.Batch) error {
		for _, r := range b.Records {
			if r.Partition != 1 {
				return fmt.Errorf("record from partition %d", r.Partition)
			}
			got++
		}
		if b.CaughtUp {
			return eventlog.ErrStopFollowing
		}
		return nil
	})
	if !errors.Is(err, eventlog.ErrStopFollowing) || got != want {
		t.Fatalf("FollowPartitions(1) = %v after %d records, want caught up after the %d of partition 1", err, got, want)
	}
	err = l.FollowPartitions(ctx, topic, []int32{7}, nil, func(eventlog.Batch) error { return nil })
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("FollowPartitions of a partition the topic does not have = %v, want an error saying so", err)
	}
}

// member records what the group tells one member.
type member struct {
	mu      sync.Mutex
	owned   map[int32]bool
	revokes int
	// hold, when not nil, blocks revoked until it is closed.
	hold chan struct{}
	// revoking holds the partitions of a revoked call that is blocked.
	revoking []int32
}

func newMember() *member { return &member{owned: map[int32]bool{}} }

func (m *member) assigned(ps []int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range ps {
		m.owned[p] = true
	}
}

func (m *member) revoked(ps []int32, lost bool) {
	m.mu.Lock()
	hold := m.hold
	m.revoking = ps
	m.mu.Unlock()
	if hold != nil {
		<-hold
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range ps {
		delete(m.owned, p)
	}
	m.revoking = nil
	m.revokes++
}

func (m *member) partitions() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.owned))
}

func (m *member) blockedRevoking() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.revoking
}

// join runs g.Join for m until the returned stop is called.
func join(t *testing.T, g *Group, m *member) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Join(ctx, m.assigned, m.revoked) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// Two members of a group share the topic's partitions, one owner each. A
// partition that moves is given to the new member only after the old one's
// revoked has returned (cooperative rebalancing). A member that leaves
// revokes what it owns, and the other takes it all.
func TestGroupSharesPartitionsCooperatively(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic("group")
	kafkatest.CreateTopic(t, brokers, topic, 4)
	cfg := GroupConfig{ID: "group-" + uuid.NewString(), Topic: topic, SessionTimeout: 6 * time.Second}
	all := []int32{0, 1, 2, 3}

	first, second := newMember(), newMember()
	join(t, newT(t, Config{Brokers: brokers, Logger: kafkatest.Logger(t)}).Group(cfg), first)
	await.Until(t, time.Minute, "the first member owns every partition", func() bool { return slices.Equal(first.partitions(), all) })

	hold := make(chan struct{})
	first.mu.Lock()
	first.hold = hold
	first.mu.Unlock()
	stopSecond := join(t, newT(t, Config{Brokers: brokers, Logger: kafkatest.Logger(t)}).Group(cfg), second)
	await.Until(t, time.Minute, "the first member is asked to give up partitions", func() bool { return len(first.blockedRevoking()) > 0 })
	moving := first.blockedRevoking()
	// While the first member has not given them up, nobody else gets them.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		for _, p := range second.partitions() {
			if slices.Contains(moving, p) {
				t.Fatalf("partition %d was given to the second member while the first was still giving it up", p)
			}
		}
	}
	close(hold)
	await.Until(t, time.Minute, "the two members share the partitions", func() bool {
		a, b := first.partitions(), second.partitions()
		return len(a) > 0 && len(b) > 0 && slices.Equal(slices.Sorted(slices.Values(append(a, b...))), all)
	})
	if got := second.partitions(); !slices.Equal(got, moving) {
		t.Errorf("the second member got %v, want the partitions the first gave up, %v", got, moving)
	}

	if err := stopSecond(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Join after its context was cancelled = %v, want context.Canceled", err)
	}
	if got := second.partitions(); len(got) != 0 {
		t.Fatalf("the member that left still owns %v: Join must revoke everything before it returns", got)
	}
	await.Until(t, time.Minute, "the first member owns every partition again", func() bool { return slices.Equal(first.partitions(), all) })
}

// The follow watchdog of a FollowPartitions looks at the partitions it
// reads: records in the others are no sign that its consumer is wedged.
func TestFollowerStalledOnItsPartitionsOnly(t *testing.T) {
	topic := "t"
	now := time.Now()
	f := newFollower(topic, []kafka.TopicPartition{{Topic: &topic, Partition: 1, Offset: 4}}, eventlog.Offsets{0: 9, 1: 4})
	if end := (eventlog.Offsets{0: 20, 1: 4}); f.stalled(now, now.Add(-2*followStallAfter), f.assigned(end)) {
		t.Errorf("stalled with partition 1 at its end (4) and records in partition 0, which it does not read")
	}
	if end := (eventlog.Offsets{0: 20, 1: 6}); !f.stalled(now, now.Add(-2*followStallAfter), f.assigned(end)) {
		t.Errorf("not stalled with records past the reader's position in partition 1")
	}
}
