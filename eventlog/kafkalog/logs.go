package kafkalog

import (
	"context"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/rs/zerolog"
)

// drainLogs writes librdkafka's log lines, from every client of the Log,
// to the zerolog logger until ctx is done (Close cancels it once it has closed
// them all), and then what they left in the channel.
func (l *Log) drainLogs(ctx context.Context) {
	logger := l.cfg.Logger.With().Str("component", "librdkafka").Logger()
	for {
		select {
		case ev := <-l.logs:
			writeLog(logger, ev)
		case <-ctx.Done():
			for {
				select {
				case ev := <-l.logs:
					writeLog(logger, ev)
				default:
					return
				}
			}
		}
	}
}

func writeLog(logger zerolog.Logger, ev kafka.LogEvent) {
	logger.WithLevel(logLevel(ev.Level)).Str("client", ev.Name).Str("tag", ev.Tag).Msg(ev.Message)
}

// logLevel maps a syslog level (librdkafka's) to zerolog's. librdkafka
// logs a broker it cannot reach at LOG_ERR and retries by itself; the
// application reports the consequences (503, /readyz), so that is a
// warning here, not an error.
func logLevel(syslog int) zerolog.Level {
	switch {
	case syslog <= 2: // emerg, alert, crit
		return zerolog.ErrorLevel
	case syslog <= 4: // err, warning
		return zerolog.WarnLevel
	case syslog == 5: // notice
		return zerolog.InfoLevel
	case syslog == 6: // info
		return zerolog.DebugLevel
	default: // debug
		return zerolog.TraceLevel
	}
}
