package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"

	"calculator/app"
)

// The command line is the standard library's flag package and the loop in
// fromEnvironment, not peterbourgon/ff: the Go proxy serves ff v3 only,
// which names every variable PREFIX_FLAG, and the spec's -brokers is
// KAFKA_BROKERS beside CALC_*, so the table below would stay, and what ff
// would take over is the dozen lines of that loop.

// environment names the environment variable of each flag (SPEC §2).
var environment = map[string]string{
	"addr":               "CALC_ADDR",
	"data-dir":           "CALC_DATA_DIR",
	"brokers":            "KAFKA_BROKERS",
	"commands-topic":     "CALC_COMMANDS_TOPIC",
	"events-topic":       "CALC_EVENTS_TOPIC",
	"partitions":         "CALC_PARTITIONS",
	"group":              "CALC_GROUP",
	"replication-factor": "CALC_REPLICATION_FACTOR",
	"kafka-config":       "CALC_KAFKA_CONFIG",
	"auth-token":         "CALC_AUTH_TOKEN",
	"read-timeout":       "CALC_READ_TIMEOUT",
	"idle-timeout":       "CALC_IDLE_TIMEOUT",
	"max-conns":          "CALC_MAX_CONNS",
	"disk-reserve":       "CALC_DISK_RESERVE",
	"snapshot-every":     "CALC_SNAPSHOT_EVERY",
	"snapshot-interval":  "CALC_SNAPSHOT_INTERVAL",
	"log-level":          "CALC_LOG_LEVEL",
}

const about = `calculator: a distributed calculator built as CQRS + event sourcing on a log (see README.md).

Usage: calculator [flags]

Each flag can be set by the environment variable in brackets; the flag wins,
and an empty variable counts as unset.
`

// parseConfig reads the configuration from the command line and then the
// environment (for the flags the command line does not set). -h prints the
// help to stdout and returns flag.ErrHelp. Any other error names the flag
// or the variable that is wrong.
func parseConfig(args []string, lookupEnv func(string) (string, bool), stdout io.Writer) (app.Config, zerolog.Level, error) {
	def := app.Defaults()
	var cfg app.Config
	var kafkaConfig string
	level := zerolog.InfoLevel
	fs := flag.NewFlagSet("calculator", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the caller says what went wrong, once
	fs.StringVar(&cfg.Addr, "addr", def.Addr, "HTTP listen address")
	fs.StringVar(&cfg.DataDir, "data-dir", def.DataDir, "directory of the embedded log, and of the snapshots and the history index (history.blocks; on Kafka too: one instance a directory)")
	fs.StringVar(&cfg.Brokers, "brokers", "", "Kafka bootstrap servers; empty uses the embedded log")
	fs.StringVar(&cfg.CommandsTopic, "commands-topic", def.CommandsTopic, "commands topic")
	fs.StringVar(&cfg.EventsTopic, "events-topic", def.EventsTopic, "events topic")
	fs.IntVar(&cfg.Partitions, "partitions", def.Partitions, "partitions of the topics when they are created")
	fs.StringVar(&cfg.Group, "group", def.Group, "Kafka consumer group through which the instances on the same topics share the partitions (SPEC §6)")
	fs.IntVar(&cfg.ReplicationFactor, "replication-factor", 0, "replication factor of the topics when they are created on Kafka; 0: the broker's default")
	fs.StringVar(&kafkaConfig, "kafka-config", "", "a `file` of librdkafka properties (key=value lines: SASL, SSL, ...) for every Kafka client")
	fs.StringVar(&cfg.AuthToken, "auth-token", "", "bearer token required by the API; empty: no auth")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", def.ReadTimeout, "most time a client may take to send a whole request")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", def.IdleTimeout, "how long a keep-alive connection may wait for its next request")
	fs.IntVar(&cfg.MaxConns, "max-conns", def.MaxConns, "most HTTP connections open at once, SSE streams included")
	diskReserve := fs.Int64("disk-reserve", def.DiskReserve>>20, "MiB of free disk kept for the outcomes of accepted commands (embedded log): new commands get 503 below it; 0: none")
	fs.Int64Var(&cfg.SnapshotEvery, "snapshot-every", def.SnapshotEvery, "take a snapshot of the state after this many events (at most one per -snapshot-interval); 0: no snapshots, every start replays the logs")
	fs.DurationVar(&cfg.SnapshotMinInterval, "snapshot-interval", def.SnapshotMinInterval, "least time between two snapshots")
	fs.TextVar(&level, "log-level", zerolog.InfoLevel, "the lowest `level` logged: trace, debug, info, warn or error")
	fs.VisitAll(func(f *flag.Flag) { f.Usage += " [" + environment[f.Name] + "]" })

	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fmt.Fprint(stdout, about+"\n")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
		}
		return cfg, level, err
	}
	if fs.NArg() > 0 {
		return cfg, level, fmt.Errorf("unexpected argument %q: the configuration is flags and environment variables only", fs.Arg(0))
	}
	from, err := fromEnvironment(fs, lookupEnv)
	if err != nil {
		return cfg, level, err
	}

	switch {
	case cfg.Partitions < 1:
		return cfg, level, fmt.Errorf("%s must be at least 1, not %d", from("partitions"), cfg.Partitions)
	case cfg.Group == "":
		return cfg, level, fmt.Errorf("%s must not be empty", from("group"))
	case cfg.ReplicationFactor < 0:
		return cfg, level, fmt.Errorf("%s must be 0 (the broker's default) or more, not %d", from("replication-factor"), cfg.ReplicationFactor)
	case cfg.MaxConns < 1:
		return cfg, level, fmt.Errorf("%s must be at least 1, not %d", from("max-conns"), cfg.MaxConns)
	case cfg.ReadTimeout <= 0:
		return cfg, level, fmt.Errorf("%s must be more than 0, not %s", from("read-timeout"), cfg.ReadTimeout)
	case *diskReserve < 0:
		return cfg, level, fmt.Errorf("%s must be 0 (none) or more, not %d", from("disk-reserve"), *diskReserve)
	case cfg.SnapshotEvery < 0:
		return cfg, level, fmt.Errorf("%s must be 0 (none) or more, not %d", from("snapshot-every"), cfg.SnapshotEvery)
	case cfg.SnapshotMinInterval < 0:
		return cfg, level, fmt.Errorf("%s must be 0 or more, not %s", from("snapshot-interval"), cfg.SnapshotMinInterval)
	case cfg.IdleTimeout <= 0:
		return cfg, level, fmt.Errorf("%s must be more than 0, not %s", from("idle-timeout"), cfg.IdleTimeout)
	case level < zerolog.TraceLevel || level > zerolog.ErrorLevel:
		return cfg, level, fmt.Errorf("%s must be trace, debug, info, warn or error, not %s", from("log-level"), level)
	}
	if kafkaConfig != "" {
		if cfg.KafkaConfig, err = app.ReadKafkaConfig(kafkaConfig); err != nil {
			return cfg, level, fmt.Errorf("%s: %w", from("kafka-config"), err)
		}
		if cfg.Brokers == "" && cfg.KafkaConfig["bootstrap.servers"] == "" {
			return cfg, level, fmt.Errorf("%s is for Kafka: give -brokers too, or bootstrap.servers in %s", from("kafka-config"), kafkaConfig)
		}
	}
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = -1 // none
	}
	if cfg.SnapshotMinInterval == 0 {
		cfg.SnapshotMinInterval = time.Nanosecond // cfg's zero would mean the default
	}
	cfg.DiskReserve = *diskReserve << 20
	if *diskReserve == 0 {
		cfg.DiskReserve = -1 // none
	}
	cfg.KafkaDebug = os.Getenv("KAFKA_DEBUG") // librdkafka debug contexts, logged at trace level
	return cfg, level, nil
}

// fromEnvironment sets each flag that the command line did not set from
// its environment variable, if that is set and not empty. It returns a
// function that names where a flag's value came from ("-partitions" or
// "CALC_PARTITIONS=0"), for the errors found later.
func fromEnvironment(fs *flag.FlagSet, lookupEnv func(string) (string, bool)) (from func(flag string) string, err error) {
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	fromEnv := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		name := environment[f.Name]
		v, set := lookupEnv(name)
		if err != nil || onCommandLine[f.Name] || !set || v == "" {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("invalid value %q for %s (-%s): %v", v, name, f.Name, serr)
			return
		}
		fromEnv[f.Name] = name + "=" + v
	})
	return func(flag string) string {
		if s, ok := fromEnv[flag]; ok {
			return s
		}
		return "-" + flag
	}, err
}
