// Package app wires the calculator together: it opens the log, builds the
// commander, processor, view and subscriptions, serves the HTTP API and shuts
// everything down in order. main only parses flags and calls it; tests run the
// whole program in-process through it.
package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"calculator/commander"
	"calculator/domain"
	"calculator/eventlog"
	"calculator/eventlog/filelog"
	"calculator/eventlog/kafkalog"
	"calculator/idempotency"
	"calculator/internal/retry"
	"calculator/metrics"
	"calculator/processor"
	"calculator/subscriptions"
	"calculator/view"
)

// App is one running calculator. Create it with New, then call Run once.
type App struct {
	cfg       Config
	logger    zerolog.Logger
	log       eventlog.Log
	listener  *listener
	drainer   *drainer
	processor *processor.Processor
	gate      *commandsGate
	view      *view.View
	subs      *subscriptions.Hub
	metrics   *metrics.Metrics
	router    chi.Router // the API's routes, before the server's connection handling
	keys      *idempotency.Index
	server    *http.Server
	snaps     *snapshots // nil: none are taken (snapshots.go)

	// kafka is the log when it is Kafka (nil for the embedded log), file
	// when it is the embedded log.
	kafka *kafkalog.Log
	file  *filelog.Log
	// logReady is closed once the log can be read and written: at once for
	// the embedded log, once the topics exist on Kafka (see connect).
	logReady chan struct{}
	// connectErr says why the topics could not be prepared yet.
	connectErr atomic.Pointer[error]
}

// New opens the log and binds the HTTP listener, so that a caller learns the
// address (Addr) before Run and a second instance on the same data
// directory fails here, before it serves anything.
func New(cfg Config) (*App, error) {
	cfg = cfg.withDefaults()
	a := &App{cfg: cfg, logger: cfg.Logger, logReady: make(chan struct{})}
	var processorOpts []processor.Option
	viewLog := view.Log(nil)
	if cfg.Brokers != "" {
		if err := a.openKafka(); err != nil {
			return nil, err
		}
		processorOpts = append(processorOpts, a.processorGroup())
		viewLog = patientEnd{Log: a.log, logger: a.logger}
	} else {
		// The reserve keeps room for the outcomes of accepted commands: new
		// commands are refused first (503), their outcomes never.
		log, err := filelog.OpenWith(cfg.DataDir, filelog.Options{
			Logger:             cfg.Logger,
			RefuseBelowReserve: []string{cfg.CommandsTopic},
			FreeSpaceReserve:   cfg.DiskReserve,
		})
		if err != nil {
			return nil, fmt.Errorf("open the embedded log: %w", err)
		}
		a.log, a.file, viewLog = log, log, log
		close(a.logReady)
		a.logger.Info().Str("data_dir", cfg.DataDir).Int64("disk_reserve", max(cfg.DiskReserve, 0)).Msg("opened the embedded log")
	}

	if err := a.openSnapshots(); err != nil {
		a.log.Close()
		return nil, err
	}
	if a.snaps != nil {
		processorOpts = append(processorOpts, processor.WithSnapshots(a.loadFold), processor.WithWindow(a.snaps.window))
	}
	processorOpts = append(processorOpts, processor.WithTopicNames(a.topicName))
	a.processor = processor.New(a.log, cfg.CommandsTopic, cfg.EventsTopic, cfg.Logger, processorOpts...)
	a.gate = newCommandsGate(a.log, a.processor.Checked())
	a.subs = subscriptions.New(subscriptions.Config{
		Log: a.log, CommandsTopic: cfg.CommandsTopic, EventsTopic: cfg.EventsTopic,
		Value: func(id uuid.UUID) (domain.Value, bool) { return a.view.Get(id) },
		ValueAt: func(ctx context.Context, id uuid.UUID, version int64) (domain.Decimal, error) {
			return a.view.ValueAt(ctx, id, version)
		},
		ViewReady: func() bool { return a.view.Ready() },
		Logger:    cfg.Logger, Options: cfg.Subscriptions,
	})
	a.metrics = metrics.New()
	a.view = view.New(viewLog, cfg.EventsTopic, cfg.Logger, a.metrics.Applied(a.subs.Apply))
	// The history index's completed blocks, on disk (also without
	// snapshots): the lock on it keeps a second instance out of the data
	// directory on Kafka too.
	if err := a.view.WithHistoryFile(filepath.Join(cfg.DataDir, "history.blocks")); err != nil {
		a.log.Close()
		return nil, fmt.Errorf("open the view's history file: %w", err)
	}
	if a.snaps != nil {
		a.view.WithSnapshots(view.Snapshots{
			Every: cfg.SnapshotEvery, MinInterval: cfg.SnapshotMinInterval, Window: a.snaps.window, Take: a.takeSnapshot,
		})
	}
	cmd := commander.New(a.metrics.TimeAppends(a.gate), cfg.CommandsTopic, cfg.AppendTimeout, cfg.Logger)
	cmd.SetOutcomes(a.subs)
	a.view.SetOutcomes(a.subs)
	a.keys = idempotency.New(a.log, cfg.CommandsTopic, cfg.Logger, idempotency.Options{})
	cmd.SetKeys(a.keys)
	a.metrics.Watch(metrics.Parts{
		End: a.log.End, CommandsTopic: cfg.CommandsTopic, EventsTopic: cfg.EventsTopic,
		Processor: a.processor, View: a.view, Subscriptions: a.subs,
	})

	a.router = a.routes(cmd, a.metrics)
	a.drainer = newDrainer(cfg.DrainGrace)
	a.server = a.newServer(a.router)

	ln, err := listen(cfg.Addr, cfg.MaxConns, a.logger)
	if err != nil {
		a.view.Close()
		a.log.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	a.listener = ln
	return a, nil
}

// Addr is the address the HTTP API listens on.
func (a *App) Addr() string { return a.listener.Addr().String() }

// Subscriptions is the subscriptions part, for its Stats.
func (a *App) Subscriptions() *subscriptions.Hub { return a.subs }

// Run serves until ctx is done, then shuts down in order: stop accepting
// connections and answer the requests received (stopServing), stop the
// processor and the view, close the log. It returns nil after a clean
// shutdown.
func (a *App) Run(ctx context.Context) error {
	a.logger.Info().Str("addr", a.Addr()).Int("max_conns", a.listener.maxConns()).Msg("listening")
	workers, stopWorkers := context.WithCancel(context.Background())
	defer stopWorkers()
	g, gctx := errgroup.WithContext(workers)
	if a.kafka != nil {
		g.Go(func() error { return a.connect(gctx) })
	}
	// The parts start once the log can be used (at once on the embedded
	// log); the view, the subscriptions and the keys once they have their
	// snapshot (the processor loads its own).
	restored := make(chan struct{})
	g.Go(func() error {
		defer close(restored)
		if a.waitLog(gctx) {
			a.restoreSnapshot(gctx)
		}
		return nil
	})
	for _, run := range []func(context.Context) error{a.view.Run, a.subs.Run, a.keys.Run} {
		g.Go(func() error {
			select {
			case <-restored:
			case <-gctx.Done():
			}
			if gctx.Err() != nil {
				return nil
			}
			return run(gctx)
		})
	}
	g.Go(func() error {
		if !a.waitLog(gctx) {
			return nil
		}
		return a.runProcessor(gctx)
	})
	if a.snaps != nil {
		g.Go(func() error { a.writeSnapshots(gctx); return nil })
	}
	g.Go(func() error { a.logStats(gctx); return nil })

	served := make(chan error, 1)
	go func() { served <- a.server.Serve(a.listener) }()

	var err error
	workerStopped := false
	select {
	case <-ctx.Done():
		a.logger.Info().Msg("shutting down")
	case serr := <-served:
		err = fmt.Errorf("serve http: %w", serr)
		served = nil
	case <-gctx.Done():
		workerStopped = true
	}
	a.stopServing()
	if served != nil {
		<-served // Serve returned when the listener closed
	}
	stopWorkers()
	if werr := g.Wait(); werr != nil && !errors.Is(werr, context.Canceled) {
		err = errors.Join(err, werr)
	} else if workerStopped {
		err = errors.Join(err, errors.New("a worker stopped"))
	}
	if cerr := a.view.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close the view's history file: %w", cerr))
	}
	if cerr := a.log.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close log: %w", cerr))
	}
	if err == nil {
		a.logger.Info().Msg("stopped")
	}
	return err
}

// stopServing stops the HTTP server without cutting off a request that
// reached it (see drainer): no new connections, then every answer closes its
// connection, streams and waits end, the connections go quiet, and Shutdown
// closes them; all within ShutdownTimeout, after which the rest are closed.
func (a *App) stopServing() {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	a.listener.Close()
	a.subs.Close()
	a.drainer.drain(ctx)
	if err := a.server.Shutdown(ctx); err != nil {
		a.logger.Warn().Err(err).Msg("http shutdown did not finish in time; closing connections")
		a.server.Close()
	}
}

// runProcessor runs the processor and, when the log fails under it, starts
// it again (with backoff): each Run rebuilds its state from the log, so a
// restart neither loses nor repeats an outcome. When the commands log has
// lost acknowledged commands, starting again cannot help: it returns the
// error, which stops the process.
func (a *App) runProcessor(ctx context.Context) error {
	backoff := retry.Default.New()
	for {
		started := time.Now()
		err := a.processor.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, processor.ErrCommandsLost) {
			a.gate.fail(fmt.Errorf("no command is accepted: %w", err))
			a.logger.Error().Err(err).Msg("the commands log lost acknowledged commands; stopping")
			return err
		}
		if time.Since(started) > time.Minute {
			backoff.Reset() // it ran well for a while: this is a new problem
		}
		wait := backoff.Next()
		a.logger.Error().Err(err).Dur("retry_in", wait).Msg("processor stopped; restarting it from the log")
		if retry.Sleep(ctx, wait) != nil {
			return nil
		}
	}
}

// logStats writes the info-level throughput line, when there was any work.
func (a *App) logStats(ctx context.Context) {
	tick := time.NewTicker(a.cfg.StatsInterval)
	defer tick.Stop()
	last := a.processor.Stats()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := a.processor.Stats()
		succeeded, rejected := now.Succeeded-last.Succeeded, now.Rejected-last.Rejected
		if succeeded+rejected+now.Malformed-last.Malformed > 0 {
			secs := a.cfg.StatsInterval.Seconds()
			a.logger.Info().Int64("succeeded", succeeded).Int64("rejected", rejected).
				Int64("malformed", now.Malformed-last.Malformed).Int64("duplicates", now.Duplicates-last.Duplicates).
				Float64("commands_per_sec", float64(succeeded+rejected)/secs).Msg("throughput")
		}
		last = now
	}
}
