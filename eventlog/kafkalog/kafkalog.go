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
//     partition-EOF events. CaughtUp is set once every partition has
//     reported EOF since its last record: offsets are not counted, because
//     transaction markers occupy offsets that no reader ever sees.
//   - End asks the broker for each partition's high watermark.
//   - TransactionalWriter gives the processor a transactional producer: see
//     txn.go.
//
// New opens no connection, so a process can start while the broker is away;
// CreateTopics, Follow and the writers wait for it. librdkafka's own log
// lines go to the zerolog logger of Config.
package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/rs/zerolog"

	"calculator/eventlog"
)

// Config configures a Log.
type Config struct {
	// Brokers is the comma-separated list of bootstrap servers.
	Brokers string
	// Partitions is the partition count of the topics CreateTopics creates
	// (default 1). Existing topics keep theirs.
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
	Debug  string
	Logger zerolog.Logger
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
type Log struct {
	cfg    Config
	logger zerolog.Logger
	logs   chan kafka.LogEvent // librdkafka log lines of every client of this Log
	admin  *kafka.AdminClient

	// mu guards producer and isClosed: Append holds it for reading while it
	// hands messages to librdkafka (not while it waits for their delivery);
	// Close, and the watchdog that replaces a stalled producer, take it for
	// writing.
	mu        sync.RWMutex
	producer  *kafka.Producer
	isClosed  bool
	closed    chan struct{} // closed when Close begins
	destroyed chan struct{} // closed when the producer is gone
	logsDone  chan struct{} // closed when every client is gone: ends the log drain
	closeOnce sync.Once
	follows   sync.WaitGroup // running Follow calls
	prober    sync.WaitGroup // the prober (and stall watchdog)
	drainer   sync.WaitGroup // the log drain

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
	l := &Log{
		cfg:       cfg,
		logger:    cfg.Logger.With().Str("component", "kafkalog").Logger(),
		logs:      make(chan kafka.LogEvent, 1024),
		closed:    make(chan struct{}),
		destroyed: make(chan struct{}),
		logsDone:  make(chan struct{}),
	}
	l.health.set(fmt.Errorf("not connected to the Kafka brokers %s yet", cfg.Brokers))
	l.drainer.Add(1)
	go func() {
		defer l.drainer.Done()
		l.drainLogs()
	}()
	p, err := l.newProducer()
	if err != nil {
		l.stopWorkers()
		return nil, err
	}
	l.producer = p
	admin, err := kafka.NewAdminClient(l.clientConfig("admin", nil))
	if err != nil {
		p.Close()
		l.stopWorkers()
		return nil, fmt.Errorf("kafkalog: create admin client: %w", err)
	}
	l.admin = admin
	l.prober.Add(1)
	go func() {
		defer l.prober.Done()
		l.probe()
	}()
	return l, nil
}

// newProducer creates the shared idempotent producer, and the goroutine
// that serves its events until it is closed.
func (l *Log) newProducer() (*kafka.Producer, error) {
	p, err := kafka.NewProducer(l.clientConfig("producer", kafka.ConfigMap{
		"enable.idempotence":         true,
		"acks":                       "all",
		"linger.ms":                  5,
		"compression.type":           "lz4",
		"partitioner":                "murmur2_random",
		"message.timeout.ms":         int(l.cfg.DeliveryTimeout.Milliseconds()),
		"go.delivery.report.fields":  "none",
		"queue.buffering.max.kbytes": 64 << 10,
	}))
	if err != nil {
		return nil, fmt.Errorf("kafkalog: create producer: %w", err)
	}
	l.lastDelivery.Store(time.Now().UnixNano())
	go l.drainProducerEvents(p, "producer")
	return p, nil
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
	for k, v := range props {
		cm[k] = v
	}
	return &cm
}

// CreateTopics creates the named topics that do not exist yet, with
// cfg.Partitions partitions and retention.ms=-1 (replay needs every record
// forever). An existing topic is accepted as it is; if it would delete
// records (finite retention, compaction) a warning says so.
func (l *Log) CreateTopics(ctx context.Context, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	if l.isClosedNow() {
		return eventlog.ErrClosed
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()
	specs := make([]kafka.TopicSpecification, len(names))
	for i, name := range names {
		specs[i] = kafka.TopicSpecification{
			Topic:             name,
			NumPartitions:     l.cfg.Partitions,
			ReplicationFactor: l.cfg.ReplicationFactor,
			Config:            map[string]string{"retention.ms": "-1", "retention.bytes": "-1"},
		}
	}
	results, err := l.admin.CreateTopics(ctx, specs)
	if err != nil {
		return fmt.Errorf("create topics %v: %w", names, err)
	}
	var existing []string
	for _, r := range results {
		switch r.Error.Code() {
		case kafka.ErrNoError:
			l.logger.Info().Str("topic", r.Topic).Int("partitions", l.cfg.Partitions).Msg("created topic (retention.ms=-1)")
		case kafka.ErrTopicAlreadyExists:
			existing = append(existing, r.Topic)
		default:
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Error)
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

// checkRetention warns about existing topics that Kafka would prune.
func (l *Log) checkRetention(ctx context.Context, names []string) error {
	resources := make([]kafka.ConfigResource, len(names))
	for i, name := range names {
		resources[i] = kafka.ConfigResource{Type: kafka.ResourceTopic, Name: name}
	}
	var results []kafka.ConfigResourceResult
	for {
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
		select {
		case <-ctx.Done():
			return fmt.Errorf("describe topics %v: %w", names, ctx.Err())
		case <-time.After(100 * time.Millisecond):
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
			problems = append(problems, "cleanup.policy="+policy)
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

// Append implements eventlog.Log.
func (l *Log) Append(ctx context.Context, topic string, msgs ...eventlog.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	// Buffered for every report, so librdkafka's poller never waits for us,
	// even after we stop listening.
	reports := make(chan kafka.Event, len(msgs))
	if err := l.produce(topic, msgs, reports); err != nil {
		return err
	}
	var failed error
	for range msgs {
		select {
		case ev := <-reports:
			m, ok := ev.(*kafka.Message)
			switch {
			case !ok:
			case m.TopicPartition.Error == nil:
				l.lastDelivery.Store(time.Now().UnixNano())
			case failed == nil:
				failed = fmt.Errorf("kafkalog: append to %s: %w", topic, m.TopicPartition.Error)
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-l.destroyed:
			// Close flushed what it could; a report that did not come by now never will.
			return eventlog.ErrClosed
		}
	}
	return failed
}

func (l *Log) produce(topic string, msgs []eventlog.Message, reports chan kafka.Event) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.isClosed {
		return eventlog.ErrClosed
	}
	for i, m := range msgs {
		km := &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Key:            m.Key,
			Value:          m.Value,
			Headers:        toKafkaHeaders(m.Headers),
		}
		if err := l.producer.Produce(km, reports); err != nil {
			// The messages before i are on their way; the caller's retry
			// may duplicate them, which the contract allows.
			return fmt.Errorf("kafkalog: append to %s (message %d of %d): %w", topic, i+1, len(msgs), err)
		}
	}
	return nil
}

func toKafkaHeaders(hs []eventlog.Header) []kafka.Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]kafka.Header, len(hs))
	for i, h := range hs {
		out[i] = kafka.Header{Key: h.Key, Value: h.Value}
	}
	return out
}

// End implements eventlog.Log: the high watermark of every partition
// (ListOffsets, read uncommitted). It
// retries what Kafka calls retriable (a partition without a leader yet,
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
	for {
		end, err := l.end(ctx, topic)
		if err == nil || !retriable(err) {
			return end, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-l.closed:
			return nil, eventlog.ErrClosed
		case <-time.After(100 * time.Millisecond):
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
	// Read uncommitted: the high watermark, counting every offset used.
	res, err := l.admin.ListOffsets(ctx, request, kafka.SetAdminIsolationLevel(kafka.IsolationLevelReadUncommitted))
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

// Healthy returns nil when the brokers answered the last probe (one
// metadata request every second), and otherwise why they are considered
// unreachable.
func (l *Log) Healthy() error { return l.health.get() }

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
		l.prober.Wait() // the watchdog no longer replaces the producer
		if n := l.producer.Flush(int(min(l.cfg.DeliveryTimeout, closeFlushTimeout).Milliseconds())); n > 0 {
			err = fmt.Errorf("kafkalog: %d messages not delivered at close", n)
			l.producer.Purge(kafka.PurgeQueue | kafka.PurgeInFlight | kafka.PurgeNonBlocking)
		}
		l.follows.Wait()
		l.admin.Close()
		l.producer.Close()
		close(l.destroyed)
		close(l.logsDone)
		l.drainer.Wait()
	})
	return err
}

func (l *Log) isClosedNow() bool {
	select {
	case <-l.closed:
		return true
	default:
		return false
	}
}

// stopWorkers ends the log drain of a Log that New could not finish.
func (l *Log) stopWorkers() {
	close(l.logsDone)
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

// currentProducer is the shared producer (the watchdog may replace it).
func (l *Log) currentProducer() *kafka.Producer {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.producer
}

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
// the stall watchdog.
func (l *Log) probe() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var healthySince time.Time
	for {
		select {
		case <-l.closed:
			return
		case <-tick.C:
		}
		if _, err := l.admin.GetMetadata(nil, false, 2000); err != nil {
			l.health.set(fmt.Errorf("Kafka brokers %s unreachable: %w", l.cfg.Brokers, err))
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

// replaceProducer swaps in a new producer and discards the old one with
// what it still holds: those messages were never acknowledged, and their
// appends have given up or will fail.
func (l *Log) replaceProducer() error {
	p, err := l.newProducer()
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.producer
	l.producer = p
	l.mu.Unlock()
	// Closing a wedged client can block for good: not on our goroutine.
	go func() {
		old.Purge(kafka.PurgeQueue | kafka.PurgeInFlight | kafka.PurgeNonBlocking)
		old.Close()
	}()
	return nil
}

// drainProducerEvents serves the producer's Events channel, which carries
// what has no delivery channel of its own: client-level errors. It ends
// when the producer is closed.
func (l *Log) drainProducerEvents(p *kafka.Producer, role string) {
	for ev := range p.Events() {
		switch e := ev.(type) {
		case kafka.Error:
			l.clientError(role, e)
		case *kafka.Message:
			// No delivery channel: a transactional producer's report.
			if e.TopicPartition.Error != nil {
				l.logger.Debug().Err(e.TopicPartition.Error).Str("client", role).Msg("delivery failed")
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
		l.health.set(fmt.Errorf("Kafka brokers %s unreachable: %w", l.cfg.Brokers, e))
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
