package app

import (
	"cmp"
	"time"

	"github.com/rs/zerolog"

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
	AuthToken     string
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
	// Subscriptions tunes the SSE streams and the command statuses.
	Subscriptions subscriptions.Options
	Logger        zerolog.Logger
}

// Defaults is the configuration that a zero field stands for. main shows
// these values in its flags' help; they are written nowhere else.
func Defaults() Config {
	return Config{
		Addr:            "localhost:3030",
		DataDir:         "./data",
		CommandsTopic:   "commands",
		EventsTopic:     "events",
		Partitions:      1,
		AppendTimeout:   5 * time.Second,
		ShutdownTimeout: 5 * time.Second,
		StatsInterval:   10 * time.Second,
	}
}

// withDefaults fills the zero fields of cfg from Defaults.
func (cfg Config) withDefaults() Config {
	d := Defaults()
	cfg.Addr = cmp.Or(cfg.Addr, d.Addr)
	cfg.DataDir = cmp.Or(cfg.DataDir, d.DataDir)
	cfg.CommandsTopic = cmp.Or(cfg.CommandsTopic, d.CommandsTopic)
	cfg.EventsTopic = cmp.Or(cfg.EventsTopic, d.EventsTopic)
	cfg.Partitions = cmp.Or(cfg.Partitions, d.Partitions)
	cfg.AppendTimeout = cmp.Or(cfg.AppendTimeout, d.AppendTimeout)
	cfg.ShutdownTimeout = cmp.Or(cfg.ShutdownTimeout, d.ShutdownTimeout)
	cfg.StatsInterval = cmp.Or(cfg.StatsInterval, d.StatsInterval)
	return cfg
}
