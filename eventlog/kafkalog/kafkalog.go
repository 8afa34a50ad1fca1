// Package kafkalog is the Apache Kafka backend of eventlog.Log, built on
// confluent-kafka-go (librdkafka).
//
// Topics are Kafka topics, records are Kafka messages keyed by Message.Key
// (murmur2 partitioning, as Java clients do, so that any client writing a
// value's commands picks the same partition), headers are Kafka headers.
//
//   - Append produces through one shared idempotent producer (acks=all,
//     lz4, a few milliseconds of linger). Every call produces its messages
//     with a delivery channel of its own and waits for their reports, so
//     many appends are in flight at once and librdkafka batches them into
//     shared produce requests; no lock is held while waiting.
//   - Follow runs a consumer of its own with a manual assignment of every
//     partition (no group membership, no rebalances), read_committed and
//     partition-EOF events. The replay ends (CaughtUp) once the consumer's
//     position, which moves past the transaction markers that no reader
//     ever sees, has reached in every partition the end the topic had when
//     Follow began (or an EOF came): see follow.go.
//   - End asks the broker for each partition's last stable offset, the end
//     of what a read_committed reader can read.
//   - Read assigns a pooled read_committed consumer at the first wanted
//     offset and reads forward, seeking over large gaps (read.go).
//   - TransactionalWriter gives the processor a transactional producer: see
//     txn.go.
//
// New opens no connection, so a process can start while the broker is away;
// CreateTopics, Follow and the writers wait for it. librdkafka's own log
// lines go to the zerolog logger of Config.
//
// The files: kafkalog.go (the Log's life: New, Close), producer.go (Append
// and the shared producer), follow.go, read.go, admin.go (topics and End), health.go
// (the probe and the stall watchdog), txn.go, logs.go (librdkafka's logs).
package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/rs/zerolog"

	"calculator/eventlog"
	"calculator/internal/retry"
)

// Config configures a Log.
type Config struct {
	// Brokers is the comma-separated list of bootstrap servers.
	Brokers string
	// Partitions is the partition count of the topics CreateTopics creates
	// (default 1). Existing topics must have it too (see ErrMisconfigured).
	Partitions int
	// ReplicationFactor of created topics; 0 takes the broker's default.
	ReplicationFactor int
	// Topics are created by Open (not by New) when missing.
	Topics []string
	// ClientID names the clients in the broker's logs (default "calculator").
	ClientID string
	// DeliveryTimeout bounds how long librdkafka keeps retrying a message
	// that the broker has not acknowledged (message.timeout.ms; default
	// 30s). Append itself returns when its context is done, which is
	// usually much sooner; a message still queued then may be written later,
	// within this time.
	DeliveryTimeout time.Duration
	// RequestTimeout bounds one metadata or watermark request when the
	// caller's context has no deadline (default 10s).
	RequestTimeout time.Duration
	// Debug is librdkafka's debug property (e.g. "eos,broker"): its debug
	// lines then reach the logger at trace level. Empty: none.
	Debug string
	// Properties are librdkafka properties given to every client: what a
	// cluster asks of its clients (security.protocol, sasl.*, ssl.*, ...).
	// They override the Log's defaults (client.id, reconnect.backoff.ms,
	// ...), but neither Brokers nor what a client sets for its guarantees
	// (idempotence, transactions, read_committed). A go.* key is refused.
	Properties map[string]string
	Logger     zerolog.Logger
}

func (cfg Config) withDefaults() Config {
	if cfg.Partitions <= 0 {
		cfg.Partitions = 1
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "calculator"
	}
	if cfg.DeliveryTimeout <= 0 {
		cfg.DeliveryTimeout = 30 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	return cfg
}

// Log is the Kafka-backed eventlog.Log. Create it with New or Open; it is
// safe for concurrent use.
//
// Its goroutines, each owned by the Log and waited for by Close:
//   - the log drain (logs.go), which runs until every client is closed;
//   - the prober and stall watchdog (health.go), which runs until Close;
//   - one event drain per producer (producer.go), which ends when its
//     producer is closed;
//   - clients being closed in the background (retire), which Close waits
//     for up to closeFlushTimeout.
type Log struct {
	cfg    Config
	logger zerolog.Logger
	logs   chan kafka.LogEvent // librdkafka log lines of every client of this Log
	admin  *kafka.AdminClient

	// mu guards producer, isClosed and retiring: Append holds it for
	// reading while it hands messages to librdkafka (not while it waits for
	// their delivery); Close, and the watchdog that replaces a stalled
	// producer, take it for writing.
	mu        sync.RWMutex
	producer  *ownedProducer
	isClosed  bool
	retiring  []<-chan struct{} // each closed when a retired client is closed
	closed    chan struct{}     // closed when Close begins
	destroyed chan struct{}     // closed when the producer is gone
	closeOnce sync.Once
	follows   sync.WaitGroup // running readers: Follow, Read and a group's Join (startReader)
	readers   readerPool     // idle consumers of Read (read.go)

	stopProbe context.CancelFunc // ends the prober
	prober    sync.WaitGroup
	stopLogs  context.CancelFunc // ends the log drain, once every client is gone
	drainer   sync.WaitGroup

	health health
	// lastDelivery is when the producer last had a message acknowledged
	// (or was created), in Unix nanoseconds: the stall watchdog's clock.
	lastDelivery atomic.Int64
}

var _ eventlog.Log = (*Log)(nil)

// New returns a Log for the given brokers without contacting them: the
// clients connect in the background and keep reconnecting.
func New(cfg Config) (*Log, error) {
	cfg = cfg.withDefaults()
	if cfg.Brokers == "" {
		return nil, errors.New("kafkalog: no brokers")
	}
	for k := range cfg.Properties {
		if strings.HasPrefix(k, "go.") {
			return nil, fmt.Errorf("kafkalog: %s is not a librdkafka property", k)
		}
	}
	l := &Log{
		cfg:       cfg,
		logger:    cfg.Logger.With().Str("component", "kafkalog").Logger(),
		logs:      make(chan kafka.LogEvent, 1024),
		closed:    make(chan struct{}),
		destroyed: make(chan struct{}),
	}
	l.health.set(fmt.Errorf("not connected to the Kafka brokers %s yet", cfg.Brokers))
	logsCtx, stopLogs := context.WithCancel(context.Background())
	l.stopLogs = stopLogs
	l.drainer.Go(func() { l.drainLogs(logsCtx) })
	p, err := l.newProducer()
	if err != nil {
		l.stopDrain()
		return nil, err
	}
	l.producer = p
	admin, err := kafka.NewAdminClient(l.clientConfig("admin", nil))
	if err != nil {
		p.close()
		l.stopDrain()
		return nil, fmt.Errorf("kafkalog: create admin client: %w", err)
	}
	l.admin = admin
	probeCtx, stopProbe := context.WithCancel(context.Background())
	l.stopProbe = stopProbe
	l.prober.Go(func() { l.probe(probeCtx) })
	return l, nil
}

// Open is New followed by CreateTopics(ctx, cfg.Topics...): it fails when
// the brokers do not answer before ctx is done.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	l, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := l.CreateTopics(ctx, cfg.Topics...); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// clientConfig is the configuration every client of the Log shares, plus
// the given properties.
func (l *Log) clientConfig(role string, props kafka.ConfigMap) *kafka.ConfigMap {
	cm := kafka.ConfigMap{
		"bootstrap.servers":      l.cfg.Brokers,
		"client.id":              l.cfg.ClientID + "-" + role,
		"go.logs.channel.enable": true,
		"go.logs.channel":        l.logs,
		// An idle connection closed by the broker is not news.
		"log.connection.close":     false,
		"reconnect.backoff.ms":     100,
		"reconnect.backoff.max.ms": 2000,
	}
	if l.cfg.Debug != "" {
		cm["debug"] = l.cfg.Debug
	}
	for k, v := range l.cfg.Properties {
		cm[k] = v
	}
	cm["bootstrap.servers"] = l.cfg.Brokers
	for k, v := range props {
		cm[k] = v
	}
	return &cm
}

// closeFlushTimeout bounds how long Close waits for undelivered messages
// (when the brokers are away, say): nobody waits for them any more.
const closeFlushTimeout = 10 * time.Second

// Close implements eventlog.Log: it stops new appends, waits (up to
// closeFlushTimeout) for the messages already handed to librdkafka, wakes
// every Follow and releases the clients.
func (l *Log) Close() error {
	var err error
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.isClosed = true
		close(l.closed)
		l.mu.Unlock()
		l.stopProbe()
		l.prober.Wait() // the watchdog no longer replaces the producer
		if n := l.producer.Flush(int(min(l.cfg.DeliveryTimeout, closeFlushTimeout).Milliseconds())); n > 0 {
			err = fmt.Errorf("kafkalog: %d messages not delivered at close", n)
			l.producer.Purge(kafka.PurgeQueue | kafka.PurgeInFlight | kafka.PurgeNonBlocking)
		}
		l.follows.Wait()
		err = errors.Join(err, l.readers.close())
		l.admin.Close()
		l.producer.close()
		close(l.destroyed)
		l.waitRetired(closeFlushTimeout)
		l.stopDrain()
	})
	return err
}

// stopped says why a loop of the Log's must end now: ctx.Err() when ctx is
// done, ErrClosed when the Log is closed, nil when neither.
func (l *Log) stopped(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-l.closed:
		return eventlog.ErrClosed
	default:
		return nil
	}
}

func (l *Log) isClosedNow() bool {
	select {
	case <-l.closed:
		return true
	default:
		return false
	}
}

// stopDrain ends the log drain, once no client can log any more.
func (l *Log) stopDrain() {
	l.stopLogs()
	l.drainer.Wait()
}

// bound gives ctx the default request timeout if it has no deadline.
func (l *Log) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, l.cfg.RequestTimeout)
}

// timeoutMS is the time left before ctx's deadline, or the default request
// timeout, in milliseconds (librdkafka's synchronous calls take no context).
func (l *Log) timeoutMS(ctx context.Context) int {
	d := l.cfg.RequestTimeout
	if deadline, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(deadline))
	}
	return max(1, int(d.Milliseconds()))
}

// metadataRetry is how the Log asks again for what the brokers do not have
// yet: the metadata of a topic just created, a partition's leader, or the
// brokers themselves while they are away.
var metadataRetry = retry.Policy{Initial: 100 * time.Millisecond, Max: 2 * time.Second}

// wait sleeps for b's next interval. It returns ctx.Err() when ctx ends
// first, and ErrClosed when the Log is closed first.
func (l *Log) wait(ctx context.Context, b *retry.Backoff) error {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.closed:
		return eventlog.ErrClosed
	}
}
