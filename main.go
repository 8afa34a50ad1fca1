// Command calculator is a distributed calculator built as CQRS and event
// sourcing on a log: a REST commander, a single-threaded processor, an
// in-memory view and Server-Sent Events subscriptions, all in one process,
// on an embedded file log or on Apache Kafka. See README.md.
//
// main parses the command line and the environment (config.go), makes the
// logger and runs the app until SIGINT or SIGTERM. Exit status: 0 after a
// clean stop (or -h), 2 for a command line or environment it cannot use
// (said once, on stderr, naming the flag or variable), 1 when the program
// fails (said once, in the log).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"calculator/app"
)

// The exit statuses.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// run is the program: it returns the exit status.
func run(args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	cfg, level, err := parseConfig(args, lookupEnv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "calculator: %v\nRun 'calculator -h' for the flags.\n", err)
		return exitUsage
	}
	cfg.Logger = newLogger(stderr, level)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.New(cfg)
	if err != nil {
		cfg.Logger.Error().Err(err).Msg("cannot start")
		return exitFailed
	}
	if err := a.Run(ctx); err != nil {
		cfg.Logger.Error().Err(err).Msg("stopped on an error")
		return exitFailed
	}
	return exitOK
}

// newLogger writes human-readable lines to a terminal and JSON otherwise.
// Durations are written with their unit ("took":"1.52s").
func newLogger(w io.Writer, level zerolog.Level) zerolog.Logger {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	zerolog.DurationFieldFormat = zerolog.DurationFormatString
	var logger zerolog.Logger
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		logger = zerolog.New(zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"})
	} else {
		logger = zerolog.New(w)
	}
	return logger.Level(level).With().Timestamp().Logger()
}

func isTerminal(f *os.File) bool {
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
