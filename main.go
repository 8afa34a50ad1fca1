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
	"strconv"
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

func run(args []string) error {
	fs := flag.NewFlagSet("calculator", flag.ContinueOnError)
	def := app.Defaults()
	cfg := app.Config{}
	fs.StringVar(&cfg.Addr, "addr", env("CALC_ADDR", def.Addr), "HTTP listen address (CALC_ADDR)")
	fs.StringVar(&cfg.DataDir, "data-dir", env("CALC_DATA_DIR", def.DataDir), "directory of the embedded log (CALC_DATA_DIR)")
	fs.StringVar(&cfg.Brokers, "brokers", env("KAFKA_BROKERS", ""), "Kafka bootstrap servers; empty uses the embedded log (KAFKA_BROKERS)")
	fs.StringVar(&cfg.CommandsTopic, "commands-topic", env("CALC_COMMANDS_TOPIC", def.CommandsTopic), "commands topic (CALC_COMMANDS_TOPIC)")
	fs.StringVar(&cfg.EventsTopic, "events-topic", env("CALC_EVENTS_TOPIC", def.EventsTopic), "events topic (CALC_EVENTS_TOPIC)")
	partitions, err := strconv.Atoi(env("CALC_PARTITIONS", strconv.Itoa(def.Partitions)))
	if err != nil {
		return fmt.Errorf("CALC_PARTITIONS: %w", err)
	}
	fs.IntVar(&cfg.Partitions, "partitions", partitions, "partitions of the topics when they are created (CALC_PARTITIONS)")
	fs.StringVar(&cfg.AuthToken, "auth-token", env("CALC_AUTH_TOKEN", ""), "bearer token required by the API; empty: no auth (CALC_AUTH_TOKEN)")
	logLevel := fs.String("log-level", env("CALC_LOG_LEVEL", "info"), "trace, debug, info, warn or error (CALC_LOG_LEVEL)")
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

func env(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return fallback
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
