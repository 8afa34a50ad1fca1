// Command bench is the calculator's load generator. It drives a running
// instance over HTTP with a mix of POST /values and PUT /values/{id}, and
// reports the accepted throughput, the accept latency (until the 202), the
// applied latency (until the view shows the command's effect) and the errors.
//
//	go run ./bench -url http://localhost:3030 -duration 30s -concurrency 64 -mix create=10,update=90
//
// It first creates a pool of values (-values) and waits until the view shows
// them; then, for -duration (or -requests commands, whichever comes first),
// it sends commands: as fast as the server answers with -concurrency
// connections (closed loop), or at a fixed -rate (open loop, latency counted
// from when each request was due, so a slow server cannot hide its queue).
// Updates only target values of the pool and the values created during the
// run; each value belongs to one connection, which therefore knows the
// version each of its commands leads to.
//
// Applied latency: by default a sample of the accepted commands (-sample) is
// followed by polling GET /values/{id} until its version reaches the one the
// command leads to. With -wait 5s the commands are sent with ?wait=5s (the
// subscriptions feature): a 201/200 answer means applied, and its latency is
// the applied latency of every command; a 202 means the wait ran out. At the
// end the run waits until the view shows every accepted command, and reports
// applied_rps: the accepted commands divided by the time from the first
// command until the last one is visible.
//
// Against a server without a view (the baseline of bench/baseline) pass
// -applied=false.
//
// Progress goes to stderr every second; the last line on stdout is one line
// of key=value pairs for scripts.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type config struct {
	url         *url.URL
	base        string
	duration    time.Duration
	requests    int64
	concurrency int
	createPct   int // percentage of creates in the mix; the rest are updates
	values      int
	rate        float64
	sample      float64
	pollers     int
	wait        time.Duration
	applied     bool
	timeout     time.Duration
	token       string
	quiet       bool
	numbers     payloads
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	fmt.Println(res.summary(cfg))
	if res.accepted == 0 {
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./bench [flags]\n\n"+
			"Drives a calculator over HTTP with POST /values and PUT /values/{id}; see the package doc.\n"+
			"Progress on stderr every second; one summary line of key=value pairs on stdout.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	rawURL := fs.String("url", "http://localhost:3030", "base URL of the instance (loopback only unless -allow-remote)")
	allowRemote := fs.Bool("allow-remote", false, "allow a URL whose host is not a loopback address")
	var cfg config
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long to send commands (at most 1h)")
	fs.Int64Var(&cfg.requests, "requests", 0, "stop after this many commands (0: only -duration bounds the run)")
	fs.IntVar(&cfg.concurrency, "concurrency", 64, "connections, each with one request in flight")
	mix := fs.String("mix", "create=10,update=90", "relative weights of creates and updates")
	fs.IntVar(&cfg.values, "values", 1024, "values created before the run, that updates target (at least -concurrency)")
	fs.Float64Var(&cfg.rate, "rate", 0, "commands per second, open loop (0: closed loop, as fast as the server answers)")
	fs.Float64Var(&cfg.sample, "sample", 0.01, "fraction of accepted commands whose applied latency is measured by polling GET /values/{id}")
	fs.IntVar(&cfg.pollers, "pollers", 4, "goroutines that poll for the sampled commands")
	fs.DurationVar(&cfg.wait, "wait", 0, "send commands with ?wait=<this> (needs the subscriptions feature); 201/200 = applied")
	fs.BoolVar(&cfg.applied, "applied", true, "measure applied latency and wait for the view (false for a server without a view)")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "timeout of one request")
	fs.StringVar(&cfg.token, "token", os.Getenv("CALC_AUTH_TOKEN"), "bearer token (default $CALC_AUTH_TOKEN)")
	fs.BoolVar(&cfg.quiet, "quiet", false, "no progress lines on stderr")
	numbers := fs.String("numbers", "integers", "the numbers sent: integers (values 0-999; ADD 2, SUBTRACT 1, MULTIPLY 1, DIVIDE 1) or decimals (values 0.01-999.99; ADD 0.1, SUBTRACT 0.2, MULTIPLY 1.1, DIVIDE 1.1)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var ok bool
	if cfg.numbers, ok = numberPayloads[*numbers]; !ok {
		return cfg, fmt.Errorf("-numbers %q: want integers or decimals", *numbers)
	}
	u, err := url.Parse(strings.TrimSuffix(*rawURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return cfg, fmt.Errorf("-url %q: want http://host:port", *rawURL)
	}
	if !*allowRemote {
		if err := checkLoopback(u.Hostname()); err != nil {
			return cfg, err
		}
	}
	cfg.url, cfg.base = u, u.String()
	switch {
	case cfg.duration <= 0 || cfg.duration > time.Hour:
		return cfg, fmt.Errorf("-duration %v: want more than 0 and at most 1h", cfg.duration)
	case cfg.requests < 0:
		return cfg, errors.New("-requests: want 0 or more")
	case cfg.concurrency < 1 || cfg.concurrency > 10000:
		return cfg, errors.New("-concurrency: want 1 to 10000")
	case cfg.values < cfg.concurrency:
		return cfg, fmt.Errorf("-values %d: want at least -concurrency (%d), so that every connection owns a value", cfg.values, cfg.concurrency)
	case cfg.values > 10_000_000:
		return cfg, errors.New("-values: at most 10,000,000")
	case cfg.rate < 0:
		return cfg, errors.New("-rate: want 0 or more")
	case cfg.sample < 0 || cfg.sample > 1:
		return cfg, errors.New("-sample: want a fraction from 0 to 1")
	case cfg.pollers < 1:
		return cfg, errors.New("-pollers: want at least 1")
	case cfg.wait < 0:
		return cfg, errors.New("-wait: want 0 or more")
	}
	cfg.createPct, err = parseMix(*mix)
	return cfg, err
}

// parseMix turns "create=10,update=90" into the percentage of creates.
func parseMix(s string) (int, error) {
	weights := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(w)
		if !ok || err != nil || n < 0 || (name != "create" && name != "update") {
			return 0, fmt.Errorf("-mix %q: want create=<weight>,update=<weight>", s)
		}
		weights[name] += n
	}
	total := weights["create"] + weights["update"]
	if total == 0 {
		return 0, fmt.Errorf("-mix %q: the weights add up to 0", s)
	}
	return weights["create"] * 100 / total, nil
}

// checkLoopback refuses a host that is not (or does not resolve only to) a
// loopback address: a load generator should not be pointed at someone else's
// machine by accident.
func checkLoopback(host string) error {
	ips, err := net.LookupIP(host)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", host, err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s is not a loopback address (%s); pass -allow-remote to drive it anyway", host, ip)
		}
	}
	return nil
}

// result is what a run measured.
type result struct {
	sent, accepted, applied, rejected, waitTimeouts int64
	errors                                          map[int]int64 // by HTTP status; 0 for transport errors
	elapsed                                         time.Duration // first command sent .. last answer
	drain                                           time.Duration // last answer .. every accepted command visible
	accept, appliedLat                              snapshot
	samples, sampleTimeouts, samplesDropped         int64
	polls                                           int64
	pool                                            int
}

func (r *result) summary(cfg config) string {
	var b strings.Builder
	kv := func(k string, v any) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%v", k, v)
	}
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64)
	}
	rps := func(n int64, d time.Duration) string {
		if d <= 0 {
			return "0"
		}
		return strconv.FormatFloat(float64(n)/d.Seconds(), 'f', 1, 64)
	}
	mode := "closed"
	if cfg.rate > 0 {
		mode = "rate"
	}
	kv("url", cfg.base)
	kv("mode", mode)
	kv("rate", cfg.rate)
	kv("concurrency", cfg.concurrency)
	kv("wait", cfg.wait)
	kv("pool", r.pool)
	kv("numbers", cfg.numbers.name)
	kv("elapsed_s", strconv.FormatFloat(r.elapsed.Seconds(), 'f', 3, 64))
	kv("sent", r.sent)
	kv("accepted", r.accepted)
	kv("accepted_rps", rps(r.accepted, r.elapsed))
	if cfg.applied {
		kv("drain_ms", ms(r.drain))
		kv("applied_rps", rps(r.accepted, r.elapsed+r.drain))
	}
	kv("accept_p50_ms", ms(r.accept.quantile(0.50)))
	kv("accept_p95_ms", ms(r.accept.quantile(0.95)))
	kv("accept_p99_ms", ms(r.accept.quantile(0.99)))
	kv("accept_max_ms", ms(r.accept.maxValue()))
	if cfg.applied {
		kv("applied_n", r.appliedLat.count())
		kv("applied_p50_ms", ms(r.appliedLat.quantile(0.50)))
		kv("applied_p95_ms", ms(r.appliedLat.quantile(0.95)))
		kv("applied_p99_ms", ms(r.appliedLat.quantile(0.99)))
		kv("sample_timeouts", r.sampleTimeouts)
		kv("samples_dropped", r.samplesDropped)
		kv("polls", r.polls)
	}
	if cfg.wait > 0 {
		kv("wait_applied", r.applied)
		kv("wait_timeouts", r.waitTimeouts)
		kv("rejected", r.rejected)
	}
	var errs int64
	var byStatus []string
	statuses := make([]int, 0, len(r.errors))
	for s := range r.errors {
		statuses = append(statuses, s)
	}
	slices.Sort(statuses)
	for _, s := range statuses {
		errs += r.errors[s]
		name := strconv.Itoa(s)
		if s == 0 {
			name = "net"
		}
		byStatus = append(byStatus, name+":"+strconv.FormatInt(r.errors[s], 10))
	}
	kv("errors", errs)
	if len(byStatus) == 0 {
		byStatus = []string{"none"}
	}
	kv("errors_by_status", strings.Join(byStatus, ","))
	return b.String()
}

// run creates the pool, sends the commands, waits for the view and returns
// the figures.
func run(ctx context.Context, cfg config) (*result, error) {
	client := &http.Client{
		Timeout: cfg.timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        cfg.concurrency + cfg.pollers,
			MaxIdleConnsPerHost: cfg.concurrency + cfg.pollers,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
	defer client.CloseIdleConnections()
	g := &generator{cfg: cfg, client: client, errors: map[int]int64{}}
	workers := make([]*worker, cfg.concurrency)
	for i := range workers {
		workers[i] = &worker{g: g, rng: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))}
	}

	// The pool: each worker creates its share, then (with a view) waits
	// until the view shows every one of them.
	start := time.Now()
	if err := g.each(ctx, workers, func(ctx context.Context, w *worker, i int) error {
		n := cfg.values / cfg.concurrency
		if i < cfg.values%cfg.concurrency {
			n++
		}
		return w.createPool(ctx, n)
	}); err != nil {
		return nil, fmt.Errorf("create the pool of %d values: %w", cfg.values, err)
	}
	if cfg.applied {
		if err := g.each(ctx, workers, func(ctx context.Context, w *worker, _ int) error { return w.awaitApplied(ctx) }); err != nil {
			return nil, fmt.Errorf("wait for the view to show the pool: %w", err)
		}
	}
	g.logf("pool of %d values ready in %v", cfg.values, time.Since(start).Round(time.Millisecond))

	// The run.
	runCtx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	var polls sync.WaitGroup
	if cfg.applied && cfg.wait == 0 && cfg.sample > 0 {
		g.samples = make(chan sample, 4096)
		for range cfg.pollers {
			polls.Add(1)
			go func() { defer polls.Done(); g.poll(ctx) }()
		}
	}
	var jobs chan job
	var dispatch sync.WaitGroup
	if cfg.rate > 0 {
		jobs = make(chan job, cfg.concurrency)
		dispatch.Add(1)
		go func() { defer dispatch.Done(); g.dispatch(runCtx, jobs) }()
	}
	g.start = time.Now()
	progressDone := make(chan struct{})
	stopProgress := make(chan struct{})
	go func() { defer close(progressDone); g.progress(workers, stopProgress) }()

	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() { defer wg.Done(); w.loop(runCtx, jobs) }()
	}
	wg.Wait()
	res := &result{elapsed: time.Since(g.start), pool: cfg.values}
	close(stopProgress)
	<-progressDone
	dispatch.Wait()

	// Drain: until the view shows every accepted command.
	if cfg.applied && ctx.Err() == nil {
		drainStart := time.Now()
		if err := g.each(ctx, workers, func(ctx context.Context, w *worker, _ int) error { return w.awaitApplied(ctx) }); err != nil {
			g.logf("the view did not show every accepted command: %v", err)
		}
		res.drain = time.Since(drainStart)
	}
	if g.samples != nil {
		close(g.samples)
		polls.Wait()
	}

	for _, w := range workers {
		res.sent += w.sent.Load()
		res.accepted += w.accepted.Load()
		res.applied += w.appliedN.Load()
		res.rejected += w.rejected.Load()
		res.waitTimeouts += w.waitTimeouts.Load()
		res.accept.add(&w.acceptLat)
		res.appliedLat.add(&w.appliedLat)
	}
	res.appliedLat.add(&g.pollLat)
	res.samples, res.sampleTimeouts, res.samplesDropped = g.sampled.Load(), g.sampleTimeouts.Load(), g.samplesDropped.Load()
	res.polls = g.polls.Load()
	g.mu.Lock()
	res.errors = make(map[int]int64, len(g.errors))
	for status, n := range g.errors {
		res.errors[status] = n
	}
	g.mu.Unlock()
	return res, nil
}

// generator is what the workers share.
type generator struct {
	cfg    config
	client *http.Client
	start  time.Time
	issued atomic.Int64 // commands started, for -requests

	samples                                 chan sample
	pollLat                                 histogram
	sampled, sampleTimeouts, samplesDropped atomic.Int64
	polls                                   atomic.Int64 // GETs sent for the samples
	mu                                      sync.Mutex
	errors                                  map[int]int64
	lastErr                                 atomic.Pointer[string]
}

func (g *generator) logf(format string, args ...any) {
	if !g.cfg.quiet {
		fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	}
}

func (g *generator) countError(status int, detail string) {
	g.mu.Lock()
	g.errors[status]++
	g.mu.Unlock()
	g.lastErr.Store(&detail)
}

// each runs fn for every worker concurrently and returns the first error.
func (g *generator) each(ctx context.Context, workers []*worker, fn func(context.Context, *worker, int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(workers))
	for i, w := range workers {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = fn(ctx, w, i) }()
	}
	wg.Wait()
	failed := 0
	var first error
	for _, err := range errs {
		if err != nil {
			if first == nil {
				first = err
			}
			failed++
		}
	}
	if failed > 1 {
		return fmt.Errorf("%w (and %d more connections failed)", first, failed-1)
	}
	return first
}

// job is a command of an open-loop run: when it was due, and when the
// dispatcher handed it out (tried to, if every worker was busy).
type job struct{ due, released time.Time }

// start is when the job's latency starts: when it was due, or later if the
// dispatcher was late handing it out (its own timer, not the server, made it
// late), or earlier if it was sent before it was due (the dispatcher hands
// out due times within a millisecond together, as it does not sleep for
// less). A job that waits because every worker is busy waits for the server:
// that counts, so the server cannot hide its queue.
func (j job) start(sent time.Time) time.Time {
	start := j.due
	if j.released.After(start) {
		start = j.released
	}
	if sent.Before(start) {
		start = sent
	}
	return start
}

// dispatch hands out a job per command at the fixed rate until ctx is done.
// A late worker does not delay the schedule.
func (g *generator) dispatch(ctx context.Context, jobs chan<- job) {
	defer close(jobs)
	interval := time.Duration(float64(time.Second) / g.cfg.rate)
	start := time.Now()
	for i := int64(0); ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > time.Millisecond {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return
			}
		}
		select {
		case jobs <- job{due: due, released: time.Now()}:
		case <-ctx.Done():
			return
		}
	}
}

// progress prints a line per second until stop is closed.
func (g *generator) progress(workers []*worker, stop <-chan struct{}) {
	if g.cfg.quiet {
		<-stop
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last snapshot
	var lastAccepted int64
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		var now snapshot
		var accepted, sent int64
		for _, w := range workers {
			now.add(&w.acceptLat)
			accepted += w.accepted.Load()
			sent += w.sent.Load()
		}
		d := now.minus(&last)
		g.mu.Lock()
		var errs int64
		for _, n := range g.errors {
			errs += n
		}
		g.mu.Unlock()
		line := fmt.Sprintf("bench: %5.0fs  accepted %9d  %8.0f/s  accept p50 %7.2fms  p99 %7.2fms  errors %d",
			time.Since(g.start).Seconds(), accepted, float64(accepted-lastAccepted), ms(d.quantile(0.5)), ms(d.quantile(0.99)), errs)
		if p := g.lastErr.Swap(nil); p != nil {
			line += "  last error: " + *p
		}
		fmt.Fprintln(os.Stderr, line)
		last, lastAccepted = now, accepted
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// sample is an accepted command whose applied latency is measured by polling.
type sample struct {
	valueID string
	version int64
	sent    time.Time
}

// pollInterval is the pause between two GETs for one sample: the applied
// latency is measured to within about this much.
const pollInterval = time.Millisecond

// poll measures the applied latency of sampled commands.
func (g *generator) poll(ctx context.Context) {
	for s := range g.samples {
		deadline := s.sent.Add(g.cfg.timeout)
		for {
			v, status, err := g.getVersion(ctx, s.valueID)
			g.polls.Add(1)
			if err == nil && status == http.StatusOK && v >= s.version {
				g.pollLat.Add(time.Since(s.sent))
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				g.sampleTimeouts.Add(1)
				break
			}
			time.Sleep(pollInterval)
		}
	}
}

type valueBody struct {
	ValueID string `json:"value_id"`
	Version int64  `json:"version"`
}

func (g *generator) getVersion(ctx context.Context, id string) (int64, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.cfg.base+"/values/"+id, nil)
	if err != nil {
		return 0, 0, err
	}
	g.authorize(req)
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, resp.StatusCode, err
	}
	var v valueBody
	if err := json.Unmarshal(body, &v); err != nil {
		return 0, resp.StatusCode, err
	}
	return v.Version, resp.StatusCode, nil
}

func (g *generator) authorize(req *http.Request) {
	if g.cfg.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.cfg.token)
	}
}

// worker is one connection with one request in flight. It owns its values:
// nobody else updates them, so it knows the version each command leads to.
type worker struct {
	g        *generator
	rng      *rand.Rand
	ids      []string
	versions []int64 // the version each value reaches once every accepted command is applied

	sent, accepted, appliedN, rejected, waitTimeouts atomic.Int64
	acceptLat, appliedLat                            histogram
	body                                             bytes.Buffer
}

func (w *worker) createPool(ctx context.Context, n int) error {
	for range n {
		for attempt := 0; ; attempt++ {
			status, id, err := w.send(ctx, true)
			if err == nil && (status == http.StatusAccepted || status == http.StatusCreated) && id != "" {
				w.ids = append(w.ids, id)
				w.versions = append(w.versions, 1)
				break
			}
			if attempt == 20 || ctx.Err() != nil {
				return fmt.Errorf("POST /values: status %d, %v", status, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// awaitApplied waits until the view shows every value of the worker at the
// version its accepted commands lead to.
func (w *worker) awaitApplied(ctx context.Context) error {
	deadline := time.Now().Add(w.g.cfg.timeout + 20*time.Second)
	for i, id := range w.ids {
		for {
			v, status, err := w.g.getVersion(ctx, id)
			if err == nil && status == http.StatusOK && v >= w.versions[i] {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("value %s: version %d (status %d, %v), want %d", id, v, status, err, w.versions[i])
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

// loop sends commands until ctx is done or -requests is reached; with jobs
// (fixed rate), one per due time.
func (w *worker) loop(ctx context.Context, jobs <-chan job) {
	cfg := w.g.cfg
	for ctx.Err() == nil {
		due := time.Now()
		if jobs != nil {
			j, ok := <-jobs
			if !ok {
				return
			}
			due = j.start(time.Now())
		}
		if cfg.requests > 0 && w.g.issued.Add(1) > cfg.requests {
			return
		}
		create := w.rng.IntN(100) < cfg.createPct
		target := -1
		if !create {
			target = w.rng.IntN(len(w.ids))
		}
		status, id, err := w.sendTo(ctx, create, target)
		lat := time.Since(due)
		if err != nil && ctx.Err() != nil {
			return // the run ended while the request was in flight
		}
		w.sent.Add(1)
		w.record(status, err, create, target, id, due, lat)
	}
}

func (w *worker) record(status int, err error, create bool, target int, id string, due time.Time, lat time.Duration) {
	cfg := w.g.cfg
	if err != nil {
		w.g.countError(0, err.Error())
		return
	}
	switch status {
	case http.StatusAccepted, http.StatusCreated, http.StatusOK:
	case http.StatusConflict, http.StatusUnprocessableEntity:
		w.rejected.Add(1)
		w.acceptLat.Add(lat)
		return
	default:
		w.g.countError(status, fmt.Sprintf("status %d", status))
		return
	}
	w.accepted.Add(1)
	w.acceptLat.Add(lat)
	if create {
		if id == "" {
			w.g.countError(-1, "no value_id in the answer to POST /values")
			return
		}
		w.ids = append(w.ids, id)
		w.versions = append(w.versions, 1)
		target = len(w.ids) - 1
	} else {
		w.versions[target]++
	}
	if cfg.wait > 0 {
		if status == http.StatusAccepted {
			w.waitTimeouts.Add(1)
		} else {
			w.appliedN.Add(1)
			w.appliedLat.Add(lat)
		}
		return
	}
	if w.g.samples != nil && w.rng.Float64() < cfg.sample {
		select {
		case w.g.samples <- sample{valueID: w.ids[target], version: w.versions[target], sent: due}:
			w.g.sampled.Add(1)
		default:
			w.g.samplesDropped.Add(1)
		}
	}
}

func (w *worker) send(ctx context.Context, create bool) (int, string, error) {
	return w.sendTo(ctx, create, -1)
}

var operations = []string{"ADD", "SUBTRACT", "MULTIPLY", "DIVIDE"}

// payloads are the numbers a run sends: how a created value is written, and
// the operand of each operation (as in operations).
type payloads struct {
	name     string
	value    func(rng *rand.Rand) string
	operands [4]string
}

// numberPayloads are the choices of -numbers. Neither ever overflows or is
// rejected. integers are the payloads every figure of BENCHMARKS.md was
// measured with until decimals; decimals make the calculator round (DIVIDE
// 1.1 rarely comes out even: 34 digits through apd) and a float64
// calculator write long shortest forms (0.1 + 0.2).
var numberPayloads = map[string]payloads{
	"integers": {"integers", func(rng *rand.Rand) string { return strconv.Itoa(rng.IntN(1000)) }, [4]string{"2", "1", "1", "1"}},
	"decimals": {"decimals", func(rng *rand.Rand) string {
		return fmt.Sprintf("%d.%02d", rng.IntN(1000), rng.IntN(99)+1)
	}, [4]string{"0.1", "0.2", "1.1", "1.1"}},
}

// sendTo sends one command: a create, or an update of value target, with
// the numbers of -numbers. It returns the status and, for a create, the new
// value's id.
func (w *worker) sendTo(ctx context.Context, create bool, target int) (int, string, error) {
	cfg := w.g.cfg
	w.body.Reset()
	var method, path string
	if create {
		method, path = http.MethodPost, "/values"
		w.body.WriteString(`{"value":`)
		w.body.WriteString(cfg.numbers.value(w.rng))
		w.body.WriteString(`}`)
	} else {
		method, path = http.MethodPut, "/values/"+w.ids[target]
		i := w.rng.IntN(len(operations))
		w.body.WriteString(`{"operation":"` + operations[i] + `","value":` + cfg.numbers.operands[i] + `}`)
	}
	u := cfg.base + path
	if cfg.wait > 0 {
		u += "?wait=" + cfg.wait.String()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(w.body.Bytes()))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	w.g.authorize(req)
	resp, err := w.g.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if !create {
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, "", err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return resp.StatusCode, "", err
	}
	var v valueBody
	if resp.StatusCode < 300 {
		if err := json.Unmarshal(body, &v); err != nil {
			return resp.StatusCode, "", fmt.Errorf("answer to POST /values: %w", err)
		}
	}
	return resp.StatusCode, v.ValueID, nil
}
