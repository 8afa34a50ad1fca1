package app

import (
	"cmp"
	"time"

	"github.com/rs/zerolog"

	"calculator/eventlog/filelog"
	"calculator/httpapi"
	"calculator/subscriptions"
)

// Config is the program's configuration (SPEC §2). The zero value of a field
// means its default (Defaults).
type Config struct {
	Addr          string
	DataDir       string
	Brokers       string
	CommandsTopic string
	EventsTopic   string
	Partitions    int
	// Group is the consumer group through which the processors of every
	// instance on the same Kafka topics share the partitions (SPEC §6).
	Group string
	// GroupSessionTimeout is how long an instance may stay silent before
	// the group gives its partitions to the others: it bounds the takeover
	// after a crash.
	GroupSessionTimeout time.Duration
	// ReplicationFactor of the topics created on Kafka; 0 takes the
	// broker's default (default.replication.factor).
	ReplicationFactor int
	// KafkaConfig are librdkafka properties given to every Kafka client
	// (SASL, SSL, ...; see ReadKafkaConfig). Its bootstrap.servers is used
	// when Brokers is empty.
	KafkaConfig map[string]string
	AuthToken   string
	// KafkaDebug is librdkafka's debug property (KAFKA_DEBUG), for
	// diagnosing the Kafka clients; its lines are logged at trace level.
	KafkaDebug string
	// AppendTimeout bounds how long a POST or PUT waits for the commands
	// log before it answers 503.
	AppendTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown of the HTTP server.
	ShutdownTimeout time.Duration
	// StatsInterval is the period of the info-level throughput line.
	StatsInterval time.Duration

	// ReadTimeout bounds the reading of a whole request, headers and body:
	// a client that sends slower is disconnected. It does not bound the
	// answer: SSE streams and ?wait answers may last longer.
	ReadTimeout time.Duration
	// ReadHeaderTimeout bounds the reading of a request's headers (at most
	// ReadTimeout).
	ReadHeaderTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its next
	// request before it is closed.
	IdleTimeout time.Duration
	// MaxHeaderBytes is net/http's bound on a request's headers: past it
	// net/http answers 431 in plain text. Below it, httpapi.LimitHeaders
	// answers 431 as a problem, so it is twice httpapi.MaxHeaderBytes.
	MaxHeaderBytes int
	// MaxConns bounds the open HTTP connections, SSE streams included: the
	// next ones wait in the kernel's accept queue until one closes. It is
	// lowered to three quarters of the open-file limit when that is smaller,
	// so that the log and the Kafka clients always have descriptors left.
	MaxConns int
	// DrainGrace is how long, on shutdown, a keep-alive connection that has
	// no request in progress is kept open for one that may be on its way
	// (see drain.go).
	DrainGrace time.Duration
	// DiskReserve is the free space, in bytes, that the embedded log keeps
	// for the outcomes of the commands it accepted: below it, new commands
	// are refused (503) while their outcomes are still written. Negative:
	// no reserve.
	DiskReserve int64
	// SnapshotEvery is how many events the view folds between two
	// snapshots (package snapshot, in DataDir/snapshots); negative: none
	// are taken and none is read at startup (every start replays the logs
	// from offset 0).
	SnapshotEvery int64
	// SnapshotMinInterval is the least time between two snapshots.
	SnapshotMinInterval time.Duration
	// Subscriptions tunes the SSE streams and the command statuses.
	Subscriptions subscriptions.Options
	Logger        zerolog.Logger
}

// Defaults is the configuration that a zero field stands for. main shows
// these values in its flags' help; they are written nowhere else.
func Defaults() Config {
	return Config{
		Addr:                "localhost:3030",
		DataDir:             "./data",
		CommandsTopic:       "commands",
		EventsTopic:         "events",
		Partitions:          1,
		Group:               "calculator",
		GroupSessionTimeout: 10 * time.Second,
		AppendTimeout:       5 * time.Second,
		ShutdownTimeout:     5 * time.Second,
		StatsInterval:       10 * time.Second,

		ReadTimeout:       10 * time.Second,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       90 * time.Second, // longer than a load balancer's usual 60 s, so that it closes first
		MaxHeaderBytes:    2 * httpapi.MaxHeaderBytes,
		MaxConns:          10_000,
		DrainGrace:        500 * time.Millisecond,
		DiskReserve:       filelog.DefaultFreeSpaceReserve,

		SnapshotEvery:       100_000,
		SnapshotMinInterval: time.Minute,
	}
}

// withDefaults fills the zero fields of cfg from Defaults; Brokers from
// the Kafka properties' bootstrap.servers when it is empty.
func (cfg Config) withDefaults() Config {
	d := Defaults()
	cfg.Brokers = cmp.Or(cfg.Brokers, cfg.KafkaConfig["bootstrap.servers"])
	cfg.Addr = cmp.Or(cfg.Addr, d.Addr)
	cfg.DataDir = cmp.Or(cfg.DataDir, d.DataDir)
	cfg.CommandsTopic = cmp.Or(cfg.CommandsTopic, d.CommandsTopic)
	cfg.EventsTopic = cmp.Or(cfg.EventsTopic, d.EventsTopic)
	cfg.Partitions = cmp.Or(cfg.Partitions, d.Partitions)
	cfg.Group = cmp.Or(cfg.Group, d.Group)
	cfg.GroupSessionTimeout = cmp.Or(cfg.GroupSessionTimeout, d.GroupSessionTimeout)
	cfg.AppendTimeout = cmp.Or(cfg.AppendTimeout, d.AppendTimeout)
	cfg.ShutdownTimeout = cmp.Or(cfg.ShutdownTimeout, d.ShutdownTimeout)
	cfg.StatsInterval = cmp.Or(cfg.StatsInterval, d.StatsInterval)
	cfg.ReadTimeout = cmp.Or(cfg.ReadTimeout, d.ReadTimeout)
	cfg.ReadHeaderTimeout = min(cmp.Or(cfg.ReadHeaderTimeout, d.ReadHeaderTimeout), cfg.ReadTimeout)
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, d.IdleTimeout)
	cfg.MaxHeaderBytes = cmp.Or(cfg.MaxHeaderBytes, d.MaxHeaderBytes)
	cfg.MaxConns = cmp.Or(cfg.MaxConns, d.MaxConns)
	cfg.DrainGrace = cmp.Or(cfg.DrainGrace, d.DrainGrace)
	cfg.DiskReserve = cmp.Or(cfg.DiskReserve, d.DiskReserve)
	cfg.SnapshotEvery = cmp.Or(cfg.SnapshotEvery, d.SnapshotEvery)
	cfg.SnapshotMinInterval = cmp.Or(cfg.SnapshotMinInterval, d.SnapshotMinInterval)
	return cfg
}
