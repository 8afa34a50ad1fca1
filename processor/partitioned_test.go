package processor_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/eventlog/kafkalog"
	"calculator/internal/await"
	"calculator/internal/kafkatest"
	"calculator/processor"
)

// The partitioned mode on a real broker: processors that share the
// commands topic through a consumer group, or that are told they own a
// partition they have lost.

// instance is one processor in partitioned mode, with a Kafka log of its own.
type instance struct {
	p    *processor.Processor
	stop func()
}

func startInstance(t testing.TB, brokers, commands, events string, group func(*kafkalog.Log) processor.Group, fencedWait time.Duration) *instance {
	t.Helper()
	l, err := kafkalog.New(kafkalog.Config{Brokers: brokers, Logger: kafkatest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	open := func(ctx context.Context, partition int32) (processor.EventWriter, error) {
		return l.TransactionalWriter(ctx, kafkalog.TxnConfig{
			TransactionalID: fmt.Sprintf("test-%s-%d", events, partition), Partition: &partition,
		})
	}
	p := processor.New(l, commands, events, kafkatest.Logger(t), processor.WithGroup(group(l), l, open, fencedWait))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
		l.Close()
	}
	t.Cleanup(stop)
	return &instance{p: p, stop: stop}
}

func (in *instance) owned() []int32 {
	own, ok := in.p.Ownership()
	if !ok {
		panic("not in partitioned mode")
	}
	if len(own.Replaying) > 0 {
		return nil // not settled yet
	}
	return own.Partitions
}

// commandLog appends commands with a plain product Log and remembers them.
type commandLog struct {
	t        *testing.T
	l        *kafkalog.Log
	topic    string
	commands []domain.Command
}

func (c *commandLog) send(action domain.Action, op domain.Operation, value int64, ids ...uuid.UUID) {
	c.t.Helper()
	msgs := make([]eventlog.Message, len(ids))
	for i, id := range ids {
		cmd := domain.Command{ID: uuid.New(), Action: action, ValueID: id, Operation: op, Value: domain.DecimalFromInt(value), Timestamp: time.Now()}
		c.commands = append(c.commands, cmd)
		msgs[i] = eventlog.Message{Key: []byte(id.String()), Value: cmd.AppendJSON(nil)}
	}
	if err := c.l.Append(kafkatest.Context(c.t, 30*time.Second), c.topic, msgs...); err != nil {
		c.t.Fatal(err)
	}
}

// outcomesOf reads the events topic with a client that is not the product
// and checks that each event is in the partition of its command.
func outcomesOf(t *testing.T, brokers, events string) []*kafka.Message {
	t.Helper()
	msgs := kafkatest.ReadAll(t, brokers, events)
	for _, m := range msgs {
		var headers []eventlog.Header
		for _, h := range m.Headers {
			headers = append(headers, eventlog.Header{Key: h.Key, Value: h.Value})
		}
		partition, _, ok := eventlog.CommandPosition(headers)
		if !ok || partition != m.TopicPartition.Partition {
			t.Fatalf("event %s is in partition %d, its command in %d (position header found: %v)", m.Value, m.TopicPartition.Partition, partition, ok)
		}
	}
	return msgs
}

// checkOnce checks that every command has exactly one outcome and none was
// rejected, and returns the fold of the events.
func checkOnce(t *testing.T, commands []domain.Command, msgs []*kafka.Message) *domain.State {
	t.Helper()
	state, count := domain.NewState(), map[uuid.UUID]int{}
	for _, m := range msgs {
		e, err := domain.DecodeEvent(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		count[e.ParentID]++
		if e.Action == domain.CommandRejected {
			t.Errorf("command %s rejected (%s): its partition's state was not rebuilt by its new owner", e.ParentID, e.Reason)
		}
		if _, _, err := state.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range commands {
		if count[c.ID] != 1 {
			t.Errorf("command %s has %d outcomes, want 1", c.ID, count[c.ID])
		}
	}
	if len(count) != len(commands) {
		t.Errorf("%d commands have outcomes, %d were sent", len(count), len(commands))
	}
	return state
}

// Two processors in one group split the partitions; when the second joins,
// and when the first leaves, the partitions that move are rebuilt by their
// new owner from their events partition alone, and every command gets
// exactly one outcome, in the events partition of its command.
func TestPartitionedOwnersDecideEachCommandOnce(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	commands, events := kafkatest.Topic("commands"), kafkatest.Topic("events")
	kafkatest.CreateTopic(t, brokers, commands, 4)
	kafkatest.CreateTopic(t, brokers, events, 4)
	groupID := "processor-" + uuid.NewString()
	inGroup := func(l *kafkalog.Log) processor.Group {
		return l.Group(kafkalog.GroupConfig{ID: groupID, Topic: commands, SessionTimeout: 6 * time.Second})
	}
	producer, err := kafkalog.New(kafkalog.Config{Brokers: brokers, Logger: kafkatest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	sent := &commandLog{t: t, l: producer, topic: commands}
	all := []int32{0, 1, 2, 3}
	waitOutcomes := func(n int) {
		t.Helper()
		await.Until(t, time.Minute, fmt.Sprintf("%d outcomes", n), func() bool { return len(kafkatest.ReadAll(t, brokers, events)) >= n })
	}

	first := startInstance(t, brokers, commands, events, inGroup, 0)
	await.Until(t, time.Minute, "the first processor owns every partition", func() bool { return slices.Equal(first.owned(), all) })
	values := make([]uuid.UUID, 40)
	for i := range values {
		values[i] = uuid.New()
	}
	sent.send(domain.CreateValue, "", 1, values...)
	waitOutcomes(len(sent.commands))

	second := startInstance(t, brokers, commands, events, inGroup, 0)
	await.Until(t, time.Minute, "the two processors share the partitions", func() bool {
		a, b := first.owned(), second.owned()
		return len(a) > 0 && len(b) > 0 && slices.Equal(slices.Sorted(slices.Values(append(a, b...))), all)
	})
	sent.send(domain.UpdateValue, domain.Add, 1, values...)
	waitOutcomes(len(sent.commands))
	// Each is behind by nothing in the partitions it owns, and does not
	// count the other's.
	end, err := producer.End(kafkatest.Context(t, 30*time.Second), commands)
	if err != nil {
		t.Fatal(err)
	}
	await.Until(t, time.Minute, "neither processor is behind in its own partitions", func() bool {
		return first.p.Behind(end) == 0 && second.p.Behind(end) == 0
	})

	first.stop()
	await.Until(t, time.Minute, "the second processor owns every partition", func() bool { return slices.Equal(second.owned(), all) })
	sent.send(domain.UpdateValue, domain.Multiply, 5, values...)
	waitOutcomes(len(sent.commands))
	second.stop()

	state := checkOnce(t, sent.commands, outcomesOf(t, brokers, events))
	for _, id := range values {
		if v, _ := state.Get(id); v.Value != domain.DecimalFromInt(10) || v.Version != 3 {
			t.Errorf("value %s = %+v, want 10 at version 3 ((1+1)*5)", id, v)
		}
	}
}

// staticGroup tells its member that it owns the given partitions, and never
// takes them back: what a paused instance believes when it wakes up after
// the real group has given its partitions to another.
type staticGroup []int32

func (g staticGroup) Join(ctx context.Context, assigned func([]int32), revoked func([]int32, bool)) error {
	assigned(g)
	<-ctx.Done()
	revoked(g, false)
	return ctx.Err()
}

// A zombie: an owner that has lost its partition without knowing it keeps
// deciding commands, but the new owner's writer has fenced its writer, so
// none of its outcomes becomes visible: every command still has exactly one
// outcome, the new owner's.
func TestFencedOwnerAddsNoOutcome(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	commands, events := kafkatest.Topic("commands"), kafkatest.Topic("events")
	kafkatest.CreateTopic(t, brokers, commands, 1)
	kafkatest.CreateTopic(t, brokers, events, 1)
	owns0 := func(*kafkalog.Log) processor.Group { return staticGroup{0} }
	producer, err := kafkalog.New(kafkalog.Config{Brokers: brokers, Logger: kafkatest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	sent := &commandLog{t: t, l: producer, topic: commands}
	id := uuid.New()

	zombie := startInstance(t, brokers, commands, events, owns0, time.Hour)
	await.Until(t, time.Minute, "the first owner has replayed", func() bool { return len(zombie.owned()) == 1 })
	sent.send(domain.CreateValue, "", 2, id)
	await.Until(t, time.Minute, "the first owner decided the create", func() bool { return len(kafkatest.ReadAll(t, brokers, events)) == 1 })

	current := startInstance(t, brokers, commands, events, owns0, time.Hour)
	await.Until(t, time.Minute, "the new owner has opened its writer and replayed", func() bool { return len(current.owned()) == 1 })
	// Both read this command; both decide it; only one may write.
	sent.send(domain.UpdateValue, domain.Add, 3, id)
	await.Until(t, time.Minute, "the zombie found its writer fenced", func() bool {
		own, _ := zombie.p.Ownership()
		return own.Fenced > 0
	})
	sent.send(domain.UpdateValue, domain.Multiply, 2, id)
	await.Until(t, time.Minute, "the new owner decided every command", func() bool { return len(kafkatest.ReadAll(t, brokers, events)) == 3 })
	zombie.stop()
	current.stop()

	msgs := outcomesOf(t, brokers, events)
	state := checkOnce(t, sent.commands, msgs)
	if v, _ := state.Get(id); v.Value != domain.DecimalFromInt(10) || v.Version != 3 {
		t.Errorf("value = %+v, want 10 at version 3 ((2+3)*2)", v)
	}
	t.Logf("%d committed events, %d records in all (the rest: aborted transactions)",
		len(msgs), len(kafkatest.ReadUncommitted(t, brokers, events)))
}
