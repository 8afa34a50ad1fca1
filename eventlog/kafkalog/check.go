package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// ErrMisconfigured is wrapped by the error of CreateTopics when the topics
// cannot be used as they are, and asking again will not change that: their
// partition counts differ from each other or from Config.Partitions, or one
// is compacted. The error says which topic and what to do.
var ErrMisconfigured = errors.New("kafkalog: misconfigured topics")

// partitionCounts returns the partition count of each of the named topics
// that exists; a missing topic is absent from the map. With mustExist, a
// topic the brokers do not know yet is asked for again (metadataRetry) until
// ctx is done: one just created elsewhere may take a moment to reach every
// broker's metadata.
func (l *Log) partitionCounts(ctx context.Context, names []string, mustExist bool) (map[string]int, error) {
	counts := make(map[string]int, len(names))
	for b := metadataRetry.New(); ; {
		res, err := l.admin.DescribeTopics(ctx, kafka.NewTopicCollectionOfTopicNames(names))
		if err != nil {
			return nil, fmt.Errorf("kafkalog: describe topics %v: %w", names, err)
		}
		unknown := false
		for _, d := range res.TopicDescriptions {
			switch d.Error.Code() {
			case kafka.ErrNoError:
				counts[d.Name] = len(d.Partitions)
			case kafka.ErrUnknownTopicOrPart:
				unknown = true
			default:
				return nil, fmt.Errorf("kafkalog: describe topic %s: %w", d.Name, d.Error)
			}
		}
		if !unknown || !mustExist {
			return counts, nil
		}
		if err := l.wait(ctx, b); err != nil {
			return nil, fmt.Errorf("kafkalog: describe topics %v: not known to the brokers yet: %w", names, err)
		}
	}
}

// checkPartitions returns an error wrapping ErrMisconfigured unless every
// topic in counts has want partitions. The processors rely on it: an event
// goes to the partition of its command, so that the owner of a commands
// partition rebuilds its state from the events partition of the same number.
func checkPartitions(counts map[string]int, want int) error {
	names := slices.Sorted(maps.Keys(counts))
	distinct := map[int]bool{}
	for _, n := range names {
		distinct[counts[n]] = true
	}
	switch {
	case len(distinct) > 1:
		described := make([]string, len(names))
		for i, n := range names {
			described[i] = fmt.Sprintf("%s has %d", n, counts[n])
		}
		return fmt.Errorf("%w: their partition counts differ (%s): an event goes to the partition of its command, so the commands and events topics need the same count; recreate one of them, or use other topics",
			ErrMisconfigured, strings.Join(described, ", "))
	case len(names) > 0 && counts[names[0]] != want:
		have := counts[names[0]]
		return fmt.Errorf("%w: %s %s %d partitions, but -partitions is %d: start with -partitions %d, or use other topics",
			ErrMisconfigured, strings.Join(names, " and "), plural(len(names), "has", "have"), have, want, have)
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
