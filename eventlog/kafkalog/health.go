package kafkalog

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Healthy returns nil when the brokers answered the last probe (one
// metadata request every second), and otherwise why they are considered
// unreachable.
func (l *Log) Healthy() error { return l.health.get() }

// Stall watchdog: librdkafka 2.15's clients can stay wedged after the
// broker restarts (a broker handle decommissioned while the client still
// depends on it; see librdkafka issue #5511). When messages have been
// waiting for stallAfter with no acknowledgement at all, while the brokers
// have answered every probe for healthyFor, the producer is replaced.
const (
	stallAfter = 20 * time.Second
	healthyFor = 10 * time.Second
)

// probe keeps the health status current: one cheap metadata request a
// second. librdkafka's "all brokers down" event marks the log unhealthy at
// once (drainProducerEvents); this notices when it is back. It also runs
// the stall watchdog. It runs until ctx is done.
func (l *Log) probe(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var healthySince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := l.admin.GetMetadata(nil, false, 2000); err != nil {
			l.health.set(fmt.Errorf("brokers %s unreachable: %w", l.cfg.Brokers, err))
			healthySince = time.Time{}
			continue
		}
		l.health.set(nil)
		now := time.Now()
		if healthySince.IsZero() {
			healthySince = now
		}
		waiting := l.currentProducer().Len()
		sinceDelivery := now.Sub(time.Unix(0, l.lastDelivery.Load()))
		if waiting > 0 && sinceDelivery > stallAfter && now.Sub(healthySince) > healthyFor {
			l.logger.Error().Int("waiting", waiting).Dur("since_last_delivery", sinceDelivery).
				Msg("the producer delivers nothing although the brokers answer; replacing it")
			if err := l.replaceProducer(); err != nil {
				l.logger.Error().Err(err).Msg("cannot replace the producer")
			}
		}
	}
}

// clientError records an error event of a client. librdkafka has already
// logged it (through drainLogs) and retries by itself; only a fatal error is
// the application's business, and it is returned by the failing call too.
func (l *Log) clientError(role string, e kafka.Error) {
	switch {
	case e.IsFatal():
		l.logger.Error().Err(e).Str("client", role).Msg("fatal Kafka client error")
		if role == "producer" {
			l.health.setFatal(fmt.Errorf("the Kafka producer failed (restart the process): %w", e))
		}
	case e.Code() == kafka.ErrAllBrokersDown:
		l.health.set(fmt.Errorf("brokers %s unreachable: %w", l.cfg.Brokers, e))
		l.logger.Debug().Err(e).Str("client", role).Msg("Kafka client error")
	default:
		l.logger.Debug().Err(e).Str("client", role).Msg("Kafka client error")
	}
}

// health is the last known reachability of the brokers, and a fatal
// error of the shared producer, which no probe clears.
type health struct{ err, fatal atomic.Pointer[error] }

func (h *health) set(err error) {
	if err == nil {
		h.err.Store(nil)
		return
	}
	h.err.Store(&err)
}

func (h *health) setFatal(err error) { h.fatal.Store(&err) }

func (h *health) get() error {
	if p := h.fatal.Load(); p != nil {
		return *p
	}
	if p := h.err.Load(); p != nil {
		return *p
	}
	return nil
}
