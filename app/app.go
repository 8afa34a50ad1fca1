// Package app wires the calculator together: it opens the log, builds the
// commander, processor, view and subscriptions, serves the HTTP API and shuts
// everything down in order. main only parses flags and calls it; tests run the
// whole program in-process through it.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"calculator/commander"
	"calculator/domain"
	"calculator/eventlog"
	"calculator/eventlog/filelog"
	"calculator/eventlog/kafkalog"
	"calculator/httpapi"
	"calculator/idempotency"
	"calculator/processor"
	"calculator/subscriptions"
	"calculator/view"
)

// Config is the program's configuration (SPEC §2).
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

// Defaults fills the zero fields of cfg with the defaults of SPEC §2.
func (cfg Config) withDefaults() Config {
	if cfg.Addr == "" {
		cfg.Addr = "localhost:3030"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "./data"
	}
	if cfg.CommandsTopic == "" {
		cfg.CommandsTopic = "commands"
	}
	if cfg.EventsTopic == "" {
		cfg.EventsTopic = "events"
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 1
	}
	if cfg.AppendTimeout == 0 {
		cfg.AppendTimeout = 5 * time.Second
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 5 * time.Second
	}
	if cfg.StatsInterval == 0 {
		cfg.StatsInterval = 10 * time.Second
	}
	return cfg
}

// App is one running calculator. Create it with New, then call Run once.
type App struct {
	cfg       Config
	logger    zerolog.Logger
	log       eventlog.Log
	listener  net.Listener
	processor *processor.Processor
	view      *view.View
	subs      *subscriptions.Hub
	keys      *idempotency.Index
	server    *http.Server

	// kafka is the log when it is Kafka (nil for the embedded log).
	kafka *kafkalog.Log
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
		processorOpts = append(processorOpts, processor.WithEventWriter(a.openEventWriter))
		viewLog = patientEnd{Log: a.log, logger: a.logger}
	} else {
		log, err := filelog.Open(cfg.DataDir, cfg.Logger)
		if err != nil {
			return nil, fmt.Errorf("open the embedded log: %w", err)
		}
		a.log, viewLog = log, log
		close(a.logReady)
		a.logger.Info().Str("data_dir", cfg.DataDir).Msg("opened the embedded log")
	}

	a.processor = processor.New(a.log, cfg.CommandsTopic, cfg.EventsTopic, cfg.Logger, processorOpts...)
	a.subs = subscriptions.New(subscriptions.Config{
		Log: a.log, CommandsTopic: cfg.CommandsTopic, EventsTopic: cfg.EventsTopic,
		Value:     func(id uuid.UUID) (domain.Value, bool) { return a.view.Get(id) },
		ViewReady: func() bool { return a.view.Ready() },
		Logger:    cfg.Logger, Options: cfg.Subscriptions,
	})
	a.view = view.New(viewLog, cfg.EventsTopic, cfg.Logger, a.subs.Apply)
	cmd := commander.New(a.log, cfg.CommandsTopic, cfg.AppendTimeout, cfg.Logger)
	cmd.SetOutcomes(a.subs)
	a.keys = idempotency.New(a.log, cfg.CommandsTopic, cfg.Logger, idempotency.Options{})
	cmd.SetKeys(a.keys)

	r := chi.NewRouter()
	r.Use(middleware.Recoverer, httpapi.LimitHeaders(httpapi.MaxHeaderBytes))
	r.NotFound(httpapi.NotFound)
	r.MethodNotAllowed(httpapi.MethodNotAllowed)
	r.Get("/healthz", a.healthz)
	r.Get("/readyz", a.readyz)
	r.Group(func(r chi.Router) {
		if cfg.AuthToken != "" {
			r.Use(httpapi.RequireBearer(cfg.AuthToken))
		}
		cmd.Routes(r)
		a.view.Routes(r)
		a.subs.Routes(r)
	})
	a.server = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second, ConnContext: subscriptions.ConnContext,
		MaxHeaderBytes: 2 * httpapi.MaxHeaderBytes} // up to there a 431 is a problem; past it net/http's text
	a.server.RegisterOnShutdown(a.subs.Close) // streams end, so that Shutdown need not wait for them

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
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
// requests and finish those in flight, stop the processor and the view, close
// the log. It returns nil after a clean shutdown.
func (a *App) Run(ctx context.Context) error {
	a.logger.Info().Str("addr", a.Addr()).Msg("listening")
	workers, stopWorkers := context.WithCancel(context.Background())
	defer stopWorkers()
	g, gctx := errgroup.WithContext(workers)
	if a.kafka != nil {
		g.Go(func() error { a.connect(gctx); return nil })
	}
	// The parts start once the log can be used (at once on the embedded log).
	for _, run := range []func(context.Context) error{a.view.Run, a.runProcessor, a.subs.Run, a.keys.Run} {
		g.Go(func() error {
			if !a.waitLog(gctx) {
				return nil
			}
			return run(gctx)
		})
	}
	g.Go(func() error { a.logStats(gctx); return nil })

	serveErr := make(chan error, 1)
	go func() { serveErr <- a.server.Serve(a.listener) }()

	var err error
	select {
	case <-ctx.Done():
		a.logger.Info().Msg("shutting down")
	case err = <-serveErr:
		err = fmt.Errorf("serve http: %w", err)
	case <-gctx.Done():
		err = errors.New("a worker stopped")
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if serr := a.server.Shutdown(shutdownCtx); serr != nil {
		a.logger.Warn().Err(serr).Msg("http shutdown did not finish in time; closing connections")
		a.server.Close()
	}
	stopWorkers()
	if werr := g.Wait(); werr != nil && !errors.Is(werr, context.Canceled) {
		err = errors.Join(err, werr)
	}
	if cerr := a.log.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close log: %w", cerr))
	}
	if err == nil {
		a.logger.Info().Msg("stopped")
	}
	return err
}

// runProcessor runs the processor and, when the log fails under it, starts
// it again (with backoff): each Run rebuilds its state from the log, so a
// restart neither loses nor repeats an outcome.
func (a *App) runProcessor(ctx context.Context) error {
	const minBackoff = 100 * time.Millisecond
	backoff := minBackoff
	for {
		started := time.Now()
		err := a.processor.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) > time.Minute {
			backoff = minBackoff // it ran well for a while: this is a new problem
		}
		a.logger.Error().Err(err).Dur("retry_in", backoff).Msg("processor stopped; restarting it from the log")
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, 10*time.Second)
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

func (a *App) healthz(w http.ResponseWriter, r *http.Request) {
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	read, target := a.view.Progress()
	logStatus, logErr := a.logStatus()
	proc := map[string]any{"ready": a.processor.Ready(), "events_replayed": a.processor.Stats().EventsReplay}
	if a.processor.Ready() && logErr == nil {
		// How many commands wait for an outcome: lets a client (or a test)
		// see the processor catch up after a restart.
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if end, err := a.log.End(ctx, a.cfg.CommandsTopic); err == nil {
			position, behind := a.processor.Position(), int64(0)
			for partition, offset := range end {
				behind += max(0, offset-position[partition])
			}
			proc["commands_behind"] = behind
		}
	}
	progress := map[string]any{
		"view":      map[string]any{"ready": a.view.Ready(), "events_read": read, "events_at_start": target},
		"processor": proc,
		"log":       logStatus,
	}
	progress["subscriptions"] = map[string]any{"ready": a.subs.Ready(), "statuses": a.subs.Stats().Statuses}
	keys := a.keys.Stats()
	progress["idempotency_keys"] = map[string]any{"ready": a.keys.Ready(), "keys": keys.Keys, "forgotten_early": keys.ForgottenEarly}
	if a.view.Ready() && a.processor.Ready() && a.subs.Ready() && a.keys.Ready() && logErr == nil {
		progress["status"] = "ready"
		httpapi.WriteJSON(w, http.StatusOK, progress)
		return
	}
	detail := "replaying the log"
	if logErr != nil {
		detail = logErr.Error()
	}
	p := httpapi.NewProblem(httpapi.NotReady, detail)
	p.Extra = progress
	w.Header().Set("Retry-After", "1")
	httpapi.WriteProblem(w, p)
}
