package app

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"calculator/commander"
	"calculator/eventlog"
)

// commandsGate holds the commander's appends until the processor has
// checked, once, that the commands log holds every command the events log
// answers (processor.Checked; issue 13.2). Until then nobody knows whether
// the commands log lost acknowledged commands at its end; if it did, a new
// command would take the offset of one the events log says is decided, and
// never be decided. So no command is acknowledged before the check: an
// append waits for it (a replay is short) within the commander's append
// timeout, and fails at once, with the reason, when the check failed.
type commandsGate struct {
	log    commander.Log
	passed <-chan struct{} // closed when the check passed

	once   sync.Once
	failed chan struct{} // closed when the check failed, err then set
	err    error
}

func newCommandsGate(log commander.Log, passed <-chan struct{}) *commandsGate {
	return &commandsGate{log: log, passed: passed, failed: make(chan struct{})}
}

// fail makes every waiting and later append return err.
func (g *commandsGate) fail(err error) {
	g.once.Do(func() {
		g.err = err
		close(g.failed)
	})
}

// Append implements commander.Log.
func (g *commandsGate) Append(ctx context.Context, topic string, msgs ...eventlog.Message) error {
	select {
	case <-g.passed:
	case <-g.failed:
		return g.err
	case <-ctx.Done():
		return fmt.Errorf("the processor has not yet checked the commands log against the events log: %w", ctx.Err())
	}
	select {
	case <-g.failed: // a later Run found commands lost: the process stops
		return g.err
	default:
		return g.log.Append(ctx, topic, msgs...)
	}
}

// topicName names a topic in errors: its file on the embedded log.
func (a *App) topicName(topic string) string {
	if a.kafka != nil {
		return "Kafka topic " + topic
	}
	// The embedded log keeps topic T in the file T.log (see filelog).
	return filepath.Join(a.cfg.DataDir, topic+".log")
}
