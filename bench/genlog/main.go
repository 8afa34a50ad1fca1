// Command genlog fills a data directory with a calculator's logs, fast:
// CreateValue and UpdateValue commands and the events the processor would
// have answered them with, written straight through the embedded log. Start
// the calculator on the directory to measure a restart (replay) or the
// memory of many values:
//
//	go run ./bench/genlog -data-dir /tmp/calc-1m -values 100000 -updates 900000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"calculator/eventlog/filelog"
	"calculator/internal/loggen"
)

func main() {
	dir := flag.String("data-dir", "", "data directory to fill; must not hold a commands log yet (required)")
	values := flag.Int("values", 100_000, "CreateValue commands (and ValueCreated events)")
	updates := flag.Int("updates", 900_000, "UpdateValue commands (and ValueUpdated events), spread at random over the values")
	commandsTopic := flag.String("commands-topic", "commands", "commands topic")
	eventsTopic := flag.String("events-topic", "events", "events topic")
	seed := flag.Uint64("seed", 1, "seed of the random spread")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "genlog: -data-dir is required")
		os.Exit(2)
	}
	if err := run(*dir, *commandsTopic, *eventsTopic, *values, *updates, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "genlog:", err)
		os.Exit(1)
	}
}

func run(dir, commandsTopic, eventsTopic string, values, updates int, seed uint64) error {
	if info, err := os.Stat(filepath.Join(dir, commandsTopic+".log")); err == nil && info.Size() > 0 {
		return fmt.Errorf("%s already holds a %s log; use an empty directory", dir, commandsTopic)
	}
	log, err := filelog.Open(dir, zerolog.Nop())
	if err != nil {
		return err
	}
	defer log.Close()
	start := time.Now()
	total := values + updates
	last := time.Now()
	err = loggen.Write(context.Background(), log, loggen.Spec{
		CommandsTopic: commandsTopic, EventsTopic: eventsTopic,
		Values: values, Updates: updates, Seed: seed,
	}, func(done int) {
		if time.Since(last) > time.Second {
			fmt.Fprintf(os.Stderr, "genlog: %d of %d commands and events\n", done, total)
			last = time.Now()
		}
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "genlog: wrote %d commands and %d events to %s in %v\n", total, total, dir, time.Since(start).Round(time.Millisecond))
	return log.Close()
}
