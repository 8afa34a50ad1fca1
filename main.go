// Command calculator is a distributed calculator built as CQRS and event
// sourcing on a log: a REST commander, a single-threaded processor, an
// in-memory view and Server-Sent Events subscriptions, all in one process,
// on an embedded file log or on Apache Kafka. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"calculator/app"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "calculator:", err)
		os.Exit(1)
	}
}

// environment names the environment variable of each flag; the flag wins.
var environment = map[string]string{
	"addr":           "CALC_ADDR",
	"data-dir":       "CALC_DATA_DIR",
	"brokers":        "KAFKA_BROKERS",
	"commands-topic": "CALC_COMMANDS_TOPIC",
	"events-topic":   "CALC_EVENTS_TOPIC",
	"partitions":     "CALC_PARTITIONS",
	"auth-token":     "CALC_AUTH_TOKEN",
	"read-timeout":   "CALC_READ_TIMEOUT",
	"idle-timeout":   "CALC_IDLE_TIMEOUT",
	"max-conns":      "CALC_MAX_CONNS",
	"disk-reserve":   "CALC_DISK_RESERVE",
	"log-level":      "CALC_LOG_LEVEL",
}

func run(args []string) error {
	def := app.Defaults()
	var cfg app.Config
	fs := flag.NewFlagSet("calculator", flag.ContinueOnError)
	fs.StringVar(&cfg.Addr, "addr", def.Addr, "HTTP listen address")
	fs.StringVar(&cfg.DataDir, "data-dir", def.DataDir, "directory of the embedded log")
	fs.StringVar(&cfg.Brokers, "brokers", "", "Kafka bootstrap servers; empty uses the embedded log")
	fs.StringVar(&cfg.CommandsTopic, "commands-topic", def.CommandsTopic, "commands topic")
	fs.StringVar(&cfg.EventsTopic, "events-topic", def.EventsTopic, "events topic")
	fs.IntVar(&cfg.Partitions, "partitions", def.Partitions, "partitions of the topics when they are created")
	fs.StringVar(&cfg.AuthToken, "auth-token", "", "bearer token required by the API; empty: no auth")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", def.ReadTimeout, "most time a client may take to send a whole request")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", def.IdleTimeout, "how long a keep-alive connection may wait for its next request")
	fs.IntVar(&cfg.MaxConns, "max-conns", def.MaxConns, "most HTTP connections open at once, SSE streams included")
	diskReserve := fs.Int64("disk-reserve", def.DiskReserve>>20, "MiB of free disk kept for the outcomes of accepted commands (embedded log): new commands get 503 below it; 0: none")
	logLevel := fs.String("log-level", "info", "trace, debug, info, warn or error")
	if err := fromEnvironment(fs); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	level, err := zerolog.ParseLevel(*logLevel)
	if err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	cfg.Logger = newLogger(level)
	cfg.DiskReserve = *diskReserve << 20
	if *diskReserve <= 0 {
		cfg.DiskReserve = -1 // none
	}
	cfg.KafkaDebug = os.Getenv("KAFKA_DEBUG") // librdkafka debug contexts, logged at trace level

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.New(cfg)
	if err != nil {
		cfg.Logger.Error().Err(err).Msg("cannot start")
		return err
	}
	return a.Run(ctx)
}

// fromEnvironment sets each flag whose environment variable is set, before
// the command line is parsed (so that the flag wins), and names the variable
// in the flag's help.
func fromEnvironment(fs *flag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name, ok := environment[f.Name]
		if !ok {
			return
		}
		f.Usage += " (" + name + ")"
		if v, set := os.LookupEnv(name); set && err == nil {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, serr)
			}
		}
	})
	return err
}

// newLogger writes human-readable lines to a terminal and JSON otherwise.
func newLogger(level zerolog.Level) zerolog.Logger {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	var logger zerolog.Logger
	if info, err := os.Stderr.Stat(); err == nil && info.Mode()&os.ModeCharDevice != 0 {
		logger = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05.000"})
	} else {
		logger = zerolog.New(os.Stderr)
	}
	return logger.Level(level).With().Timestamp().Logger()
}
