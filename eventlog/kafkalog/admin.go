package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"calculator/eventlog"
)

// CreateTopics creates the named topics that do not exist yet, with
// cfg.Partitions partitions and retention.ms=-1 (replay needs every record
// forever). Existing topics must have cfg.Partitions partitions, as must
// topics another process creates meanwhile, and must not be compacted: if
// not, nothing is created and the error wraps ErrMisconfigured (see
// check.go). An existing topic that would delete records by retention is
// accepted with a warning.
func (l *Log) CreateTopics(ctx context.Context, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	if l.isClosedNow() {
		return eventlog.ErrClosed
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()
	counts, err := l.partitionCounts(ctx, names, false)
	if err != nil {
		return err
	}
	if err := checkPartitions(counts, l.cfg.Partitions); err != nil {
		return err
	}
	var specs []kafka.TopicSpecification
	for _, name := range names {
		if _, ok := counts[name]; ok {
			continue
		}
		specs = append(specs, kafka.TopicSpecification{
			Topic:             name,
			NumPartitions:     l.cfg.Partitions,
			ReplicationFactor: l.cfg.ReplicationFactor,
			Config:            map[string]string{"retention.ms": "-1", "retention.bytes": "-1"},
		})
	}
	existing := slices.Collect(maps.Keys(counts))
	if len(specs) > 0 {
		results, err := l.admin.CreateTopics(ctx, specs)
		if err != nil {
			return fmt.Errorf("create topics %v: %w", names, err)
		}
		var raced []string // created by another process since we looked
		for _, r := range results {
			switch r.Error.Code() {
			case kafka.ErrNoError:
				l.logger.Info().Str("topic", r.Topic).Int("partitions", l.cfg.Partitions).Msg("created topic (retention.ms=-1)")
			case kafka.ErrTopicAlreadyExists:
				raced = append(raced, r.Topic)
			default:
				return fmt.Errorf("create topic %s: %w", r.Topic, r.Error)
			}
		}
		if len(raced) > 0 {
			more, err := l.partitionCounts(ctx, raced, true)
			if err != nil {
				return err
			}
			maps.Copy(counts, more)
			if err := checkPartitions(counts, l.cfg.Partitions); err != nil {
				return err
			}
			existing = append(existing, raced...)
		}
	}
	if len(existing) > 0 {
		if err := l.checkRetention(ctx, existing); err != nil {
			return err
		}
	}
	l.health.set(nil)
	return nil
}

// checkRetention warns about existing topics that Kafka would prune by
// retention, and fails (ErrMisconfigured) for a compacted one: compaction
// keeps only the last record of each key, and a key is a value id.
func (l *Log) checkRetention(ctx context.Context, names []string) error {
	resources := make([]kafka.ConfigResource, len(names))
	for i, name := range names {
		resources[i] = kafka.ConfigResource{Type: kafka.ResourceTopic, Name: name}
	}
	var results []kafka.ConfigResourceResult
	for b := metadataRetry.New(); ; {
		var err error
		results, err = l.admin.DescribeConfigs(ctx, resources)
		if err != nil {
			return fmt.Errorf("describe topics %v: %w", names, err)
		}
		if !slices.ContainsFunc(results, func(r kafka.ConfigResourceResult) bool {
			return r.Error.Code() == kafka.ErrUnknownTopicOrPart
		}) {
			break
		}
		// The topic exists (CreateTopics said so) but this broker's
		// metadata has not caught up with its creation yet.
		if err := l.wait(ctx, b); err != nil {
			return fmt.Errorf("describe topics %v: %w", names, err)
		}
	}
	for _, r := range results {
		if r.Error.Code() != kafka.ErrNoError {
			return fmt.Errorf("describe topic %s: %w", r.Name, r.Error)
		}
		policy := r.Config["cleanup.policy"].Value
		retentionMS, retentionBytes := r.Config["retention.ms"].Value, r.Config["retention.bytes"].Value
		var problems []string
		if strings.Contains(policy, "delete") && retentionMS != "-1" {
			problems = append(problems, "retention.ms="+retentionMS)
		}
		if strings.Contains(policy, "delete") && retentionBytes != "-1" && retentionBytes != "" {
			problems = append(problems, "retention.bytes="+retentionBytes)
		}
		if strings.Contains(policy, "compact") {
			return fmt.Errorf("%w: topic %s has cleanup.policy=%s: compaction keeps only the last record of each key (a value id) and replay needs every one; use a topic with cleanup.policy=delete and retention.ms=-1",
				ErrMisconfigured, r.Name, policy)
		}
		if len(problems) == 0 {
			l.logger.Info().Str("topic", r.Name).Msg("using existing topic")
			continue
		}
		l.logger.Warn().Str("topic", r.Name).Strs("settings", problems).
			Str("fix", "kafka-configs --alter --entity-type topics --entity-name "+r.Name+" --add-config retention.ms=-1,retention.bytes=-1").
			Msg("existing topic may delete records that replay needs")
	}
	return nil
}

// End implements eventlog.Log: the last stable offset of every partition
// (ListOffsets, read_committed), which is where a Follow's position ends up
// once it has read every committed record: the high watermark, unless a
// transaction is open. It retries what Kafka calls retriable (a partition without a leader yet,
// just after the topic was created, say) until ctx's deadline, or for the
// default request timeout, and then fails.
func (l *Log) End(ctx context.Context, topic string) (eventlog.Offsets, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if l.isClosedNow() {
		return nil, eventlog.ErrClosed
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()
	for b := metadataRetry.New(); ; {
		end, err := l.end(ctx, topic)
		if err == nil || !retriable(err) {
			return end, err
		}
		if werr := l.wait(ctx, b); errors.Is(werr, eventlog.ErrClosed) {
			return nil, werr
		} else if werr != nil {
			return nil, err // the last answer says more than "deadline exceeded"
		}
	}
}

func (l *Log) end(ctx context.Context, topic string) (eventlog.Offsets, error) {
	partitions, err := l.partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	request := make(map[kafka.TopicPartition]kafka.OffsetSpec, len(partitions))
	for _, p := range partitions {
		request[kafka.TopicPartition{Topic: &topic, Partition: p}] = kafka.LatestOffsetSpec
	}
	// Read committed: the last stable offset, what a read_committed reader
	// can reach. It counts transaction markers and aborted records.
	res, err := l.admin.ListOffsets(ctx, request, kafka.SetAdminIsolationLevel(kafka.IsolationLevelReadCommitted))
	if err != nil {
		return nil, fmt.Errorf("kafkalog: end of %s: %w", topic, err)
	}
	end := make(eventlog.Offsets, len(partitions))
	for tp, info := range res.ResultInfos {
		if info.Error.Code() != kafka.ErrNoError {
			return nil, fmt.Errorf("kafkalog: end of %s partition %d: %w", topic, tp.Partition, info.Error)
		}
		end[tp.Partition] = int64(info.Offset)
	}
	if len(end) != len(partitions) {
		return nil, fmt.Errorf("kafkalog: end of %s: %d of %d partitions answered", topic, len(end), len(partitions))
	}
	return end, nil
}

// retriable tells whether asking again may help: Kafka says so, or the
// partition's leader or the topic's metadata is not there yet.
func retriable(err error) bool {
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return false
	}
	switch ke.Code() {
	case kafka.ErrNotLeaderForPartition, kafka.ErrLeaderNotAvailable, kafka.ErrUnknownTopicOrPart,
		kafka.ErrUnknownPartition, kafka.ErrTimedOut, kafka.ErrTransport, kafka.ErrAllBrokersDown:
		return true
	}
	return ke.IsRetriable()
}

// partitions returns the partition ids of topic, from the broker's metadata.
func (l *Log) partitions(ctx context.Context, topic string) ([]int32, error) {
	md, err := l.admin.GetMetadata(&topic, false, l.timeoutMS(ctx))
	if err != nil {
		return nil, fmt.Errorf("kafkalog: metadata of %s: %w", topic, err)
	}
	return topicPartitions(md, topic)
}

func topicPartitions(md *kafka.Metadata, topic string) ([]int32, error) {
	tm, ok := md.Topics[topic]
	if !ok {
		return nil, fmt.Errorf("kafkalog: topic %s: not in the broker's metadata", topic)
	}
	if tm.Error.Code() != kafka.ErrNoError {
		return nil, fmt.Errorf("kafkalog: topic %s: %w", topic, tm.Error)
	}
	if len(tm.Partitions) == 0 {
		return nil, fmt.Errorf("kafkalog: topic %s has no partitions", topic)
	}
	ids := make([]int32, len(tm.Partitions))
	for i, p := range tm.Partitions {
		ids[i] = p.ID
	}
	return ids, nil
}
