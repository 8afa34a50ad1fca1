package kafkalog

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"calculator/eventlog"
)

// GroupConfig configures a Group.
type GroupConfig struct {
	// ID is the consumer group (group.id): the members of one group share
	// the topic's partitions, one owner per partition at a time.
	ID string
	// Topic is the topic whose partitions the group shares.
	Topic string
	// SessionTimeout is session.timeout.ms (default 10s): how long a member
	// may stay silent (crashed, paused, cut off) before the group gives its
	// partitions to the others. It bounds the takeover after a crash; the
	// broker accepts 6s to 30 min by default.
	SessionTimeout time.Duration
}

// Group is a membership of a Kafka consumer group that only shares out the
// partitions of a topic: it reads no record and commits no offset (the
// owner of a partition reads it with FollowPartitions, from a position it
// keeps itself). Assignment is cooperative-sticky: a rebalance moves only
// the partitions that must move, and the others keep working through it.
// Create it with (*Log).Group; one Join at a time.
type Group struct {
	log *Log
	cfg GroupConfig
}

// Group returns a membership of the consumer group cfg.ID for cfg.Topic. It
// contacts nobody until Join.
func (l *Log) Group(cfg GroupConfig) *Group {
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 10 * time.Second
	}
	return &Group{log: l, cfg: cfg}
}

// Join joins the group and serves its membership (heartbeats, rebalances)
// until ctx is done, the Log closes or the consumer fails for good.
//
// assigned and revoked are called from Join's goroutine, one call at a
// time. assigned gets the partitions this member owns from now on, in
// addition to those it has; its first call, possibly with none, says the
// member has joined. revoked gets the partitions taken away. A rebalance
// does not go on before revoked returns, so a member that stops writing a
// partition before revoked returns never writes while another member owns
// it, except when lost is true: the group took the partitions without
// asking, because this member missed its session timeout (a pause, a cut
// network), and another member may own them already. Only fencing (the
// writers' transactional ids) protects those.
//
// When Join ends it calls revoked with every partition still assigned, then
// leaves the group, so that the others take them over at once; it returns
// ctx.Err(), ErrClosed, or the consumer's fatal error.
func (g *Group) Join(ctx context.Context, assigned func(partitions []int32), revoked func(partitions []int32, lost bool)) error {
	l := g.log
	if !l.startReader() {
		return eventlog.ErrClosed
	}
	defer l.follows.Done()

	session := g.cfg.SessionTimeout
	c, err := kafka.NewConsumer(l.clientConfig("group-"+g.cfg.Topic, kafka.ConfigMap{
		"group.id":                      g.cfg.ID,
		"partition.assignment.strategy": "cooperative-sticky",
		"session.timeout.ms":            int(session.Milliseconds()),
		// A third of the session or less, as Kafka recommends: a member that
		// wakes up from a pause learns within one interval that it lost its
		// partitions.
		"heartbeat.interval.ms":    int(max(session/5, 100*time.Millisecond).Milliseconds()),
		"enable.auto.commit":       false,
		"enable.auto.offset.store": false,
		"auto.offset.reset":        "latest",
	}))
	if err != nil {
		return fmt.Errorf("kafkalog: join group %s: create consumer: %w", g.cfg.ID, err)
	}
	m := membership{group: g, owned: map[int32]bool{}, assigned: assigned, revoked: revoked}
	if err := c.SubscribeTopics([]string{g.cfg.Topic}, m.rebalance); err != nil {
		c.Close()
		return fmt.Errorf("kafkalog: join group %s: subscribe to %s: %w", g.cfg.ID, g.cfg.Topic, err)
	}
	err = m.serve(ctx, c)
	// Stop every owner before leaving, so that nobody else owns a partition
	// while it is still written here; Close then leaves the group.
	m.revokeAll()
	if cerr := c.Close(); cerr != nil {
		l.logger.Warn().Err(cerr).Str("group", g.cfg.ID).Msg("leaving the consumer group")
	}
	return err
}

// membership is the state of one Join, owned by its goroutine (rebalance
// callbacks run inside Poll, on that goroutine).
type membership struct {
	group    *Group
	owned    map[int32]bool
	assigned func([]int32)
	revoked  func([]int32, bool)
}

// serve polls the consumer, which runs the rebalance callbacks, until ctx
// is done, the Log closes or a fatal error.
func (m *membership) serve(ctx context.Context, c *kafka.Consumer) error {
	l := m.group.log
	for {
		if err := l.stopped(ctx); err != nil {
			return err
		}
		// Every assigned partition is paused: Poll only serves rebalances
		// and errors.
		if ev, ok := c.Poll(int(pollInterval.Milliseconds())).(kafka.Error); ok {
			if ev.IsFatal() {
				return fmt.Errorf("kafkalog: consumer group %s: %w", m.group.cfg.ID, ev)
			}
			l.clientError("group-"+m.group.cfg.Topic, ev)
		}
	}
}

func (m *membership) rebalance(c *kafka.Consumer, ev kafka.Event) error {
	l := m.group.log
	switch e := ev.(type) {
	case kafka.AssignedPartitions:
		// From the end and paused: this consumer never delivers a record.
		tps := make([]kafka.TopicPartition, len(e.Partitions))
		for i, tp := range e.Partitions {
			tps[i] = kafka.TopicPartition{Topic: tp.Topic, Partition: tp.Partition, Offset: kafka.OffsetEnd}
		}
		if err := c.IncrementalAssign(tps); err != nil {
			return m.fail("assign", err)
		}
		if err := c.Pause(tps); err != nil {
			return m.fail("pause", err)
		}
		ids := partitionIDs(e.Partitions)
		for _, p := range ids {
			m.owned[p] = true
		}
		m.assigned(ids)
	case kafka.RevokedPartitions:
		lost := c.AssignmentLost()
		var ids []int32
		for _, p := range partitionIDs(e.Partitions) {
			if m.owned[p] {
				ids = append(ids, p)
				delete(m.owned, p)
			}
		}
		if len(ids) > 0 {
			m.revoked(ids, lost)
		}
		if err := c.IncrementalUnassign(e.Partitions); err != nil {
			return m.fail("unassign", err)
		}
	default:
		l.logger.Debug().Str("event", ev.String()).Msg("unexpected rebalance event")
	}
	return nil
}

// fail logs an error of a rebalance step. librdkafka retries the rebalance
// when the member rejoins; there is nobody to return the error to.
func (m *membership) fail(step string, err error) error {
	err = fmt.Errorf("kafkalog: consumer group %s: %s: %w", m.group.cfg.ID, step, err)
	m.group.log.logger.Error().Err(err).Msg("rebalance")
	return err
}

func (m *membership) revokeAll() {
	if len(m.owned) == 0 {
		return
	}
	ids := slices.Sorted(maps.Keys(m.owned))
	clear(m.owned)
	m.revoked(ids, false)
}

func partitionIDs(tps []kafka.TopicPartition) []int32 {
	ids := make([]int32, len(tps))
	for i, tp := range tps {
		ids[i] = tp.Partition
	}
	slices.Sort(ids)
	return ids
}
