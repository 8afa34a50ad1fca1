package app

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"calculator/eventlog"
	"calculator/eventlog/kafkalog"
	"calculator/internal/retry"
	"calculator/processor"
)

// The Kafka wiring. A process may start while the brokers are away: New
// contacts nobody, connect prepares the topics in the background (retrying
// with backoff, /readyz saying why), and only then do the view and the
// processor start. Every client reconnects by itself after an outage.

// openKafka makes a.log a Kafka log, without contacting the brokers.
func (a *App) openKafka() error {
	log, err := kafkalog.New(kafkalog.Config{
		Brokers:           a.cfg.Brokers,
		Partitions:        a.cfg.Partitions,
		ReplicationFactor: a.cfg.ReplicationFactor,
		Properties:        a.cfg.KafkaConfig,
		Debug:             a.cfg.KafkaDebug,
		Logger:            a.cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("open the Kafka log: %w", err)
	}
	a.log, a.kafka = log, log
	a.logger.Info().Str("brokers", a.cfg.Brokers).Str("commands_topic", a.cfg.CommandsTopic).
		Str("events_topic", a.cfg.EventsTopic).Msg("using Kafka")
	return nil
}

// connect creates the topics if they are missing, retrying until the
// brokers answer or ctx is done, and then opens a.logReady. Topics that
// cannot be used as they are (kafkalog.ErrMisconfigured: partition counts
// that differ, compaction) are not retried: connect returns the error, and
// the process stops with it.
func (a *App) connect(ctx context.Context) error {
	backoff := retry.Default.New()
	for {
		attempt, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := a.kafka.CreateTopics(attempt, a.cfg.CommandsTopic, a.cfg.EventsTopic)
		cancel()
		if err == nil {
			a.connectErr.Store(nil)
			close(a.logReady)
			a.logger.Info().Msg("connected to Kafka")
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, kafkalog.ErrMisconfigured) {
			err = fmt.Errorf("cannot use the Kafka topics on %s: %w", a.cfg.Brokers, err)
			a.connectErr.Store(&err)
			a.logger.Error().Err(err).Msg("cannot start")
			return err
		}
		err = fmt.Errorf("cannot prepare the Kafka topics on %s: %w", a.cfg.Brokers, err)
		a.connectErr.Store(&err)
		wait := backoff.Next()
		a.logger.Warn().Err(err).Dur("retry_in", wait).Msg("Kafka not available yet; retrying")
		if retry.Sleep(ctx, wait) != nil {
			return nil
		}
	}
}

// waitLog waits until the log can be used; false means ctx ended first.
func (a *App) waitLog(ctx context.Context) bool {
	select {
	case <-a.logReady:
		return true
	case <-ctx.Done():
		return false
	}
}

// logStatus describes the log for /readyz, and returns why it cannot be
// used now, if it cannot.
func (a *App) logStatus() (map[string]any, error) {
	if a.kafka == nil {
		status := map[string]any{"backend": "embedded", "data_dir": a.cfg.DataDir}
		// Below the free-space reserve (new commands refused) or a topic
		// file failed: that is what is wrong, not the replay.
		err := a.file.Healthy()
		if err != nil {
			status["error"] = err.Error()
		}
		return status, err
	}
	status := map[string]any{"backend": "kafka", "brokers": a.cfg.Brokers}
	var err error
	select {
	case <-a.logReady:
		err = a.kafka.Healthy()
	default:
		if p := a.connectErr.Load(); p != nil {
			err = *p
		} else if err = a.kafka.Healthy(); err == nil {
			err = errors.New("creating the Kafka topics")
		}
	}
	status["reachable"] = err == nil
	if err != nil {
		status["error"] = err.Error()
	}
	return status, err
}

// PartitionTransactionalID is the transactional id of the writer of one
// events partition: every instance derives the same from the events topic
// and the partition, so the next owner of a partition fences the last.
func PartitionTransactionalID(eventsTopic string, partition int32) string {
	return "calculator-" + eventsTopic + "-" + strconv.Itoa(int(partition))
}

// processorGroup puts the processor in partitioned mode (SPEC §6): it
// decides the commands partitions that the consumer group a.cfg.Group gives
// this instance, each through its own transactional writer.
func (a *App) processorGroup() processor.Option {
	group := a.kafka.Group(kafkalog.GroupConfig{
		ID: a.cfg.Group, Topic: a.cfg.CommandsTopic, SessionTimeout: a.cfg.GroupSessionTimeout,
	})
	return processor.WithGroup(group, a.kafka, a.openPartitionWriter, 2*a.cfg.GroupSessionTimeout)
}

// openPartitionWriter gives the owner of a partition a transactional writer
// of the events partition of the same number; opening it fences the
// partition's former owner (see processor's partitioned mode and
// docs/scaling.md).
//
// The owner's position is in the events themselves, so the writer does not
// also send offsets to a consumer group (TxnConfig.OffsetsGroup): with
// librdkafka 2.15 that call can hang for good after a broker restart
// (librdkafka issue #5511, reproduced by TestKafkaOutages). /readyz reports
// the processor's lag instead (commands_behind).
func (a *App) openPartitionWriter(ctx context.Context, partition int32) (processor.EventWriter, error) {
	w, err := a.kafka.TransactionalWriter(ctx, kafkalog.TxnConfig{
		TransactionalID: PartitionTransactionalID(a.cfg.EventsTopic, partition),
		Partition:       &partition,
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// patientEnd is the log as the view sees it on Kafka: End waits out an
// outage (retrying with backoff until ctx is done), because the view asks
// it once at startup and cannot start without it.
type patientEnd struct {
	eventlog.Log
	logger zerolog.Logger
}

func (p patientEnd) End(ctx context.Context, topic string) (eventlog.Offsets, error) {
	backoff := retry.Default.New()
	for {
		end, err := p.Log.End(ctx, topic)
		if err == nil || ctx.Err() != nil {
			return end, err
		}
		wait := backoff.Next()
		p.logger.Warn().Err(err).Str("topic", topic).Dur("retry_in", wait).Msg("cannot read the end of the topic; retrying")
		if err := retry.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}
