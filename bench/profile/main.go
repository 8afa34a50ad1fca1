// Command profile runs the calculator exactly as main does (app.New and Run)
// with profiling around it, so that the product needs no debug endpoint:
//
//	go run ./bench/profile -addr 127.0.0.1:3130 -data-dir /tmp/prof -cpuprofile cpu.prof
//	go run ./bench -url http://127.0.0.1:3130 -duration 20s     # in another shell
//	kill -INT <pid>; go tool pprof -top cpu.prof
//
// SIGUSR1 prints the heap after a garbage collection (to measure memory per
// value without the garbage that RSS includes) and, with -memprofile, writes
// a heap profile. On SIGINT or SIGTERM the program shuts down and writes the
// CPU profile.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/rs/zerolog"

	"calculator/app"
)

func main() {
	var cfg app.Config
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:3130", "HTTP listen address")
	flag.StringVar(&cfg.DataDir, "data-dir", "", "data directory of the embedded log (required)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	memProfile := flag.String("memprofile", "", "write a heap profile to this file on SIGUSR1")
	logLevel := flag.String("log-level", "info", "log level")
	flag.Parse()
	if err := run(cfg, *cpuProfile, *memProfile, *logLevel); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(1)
	}
}

func run(cfg app.Config, cpuProfile, memProfile, logLevel string) error {
	if cfg.DataDir == "" {
		return fmt.Errorf("-data-dir is required")
	}
	level, err := zerolog.ParseLevel(logLevel)
	if err != nil {
		return err
	}
	cfg.Logger = zerolog.New(os.Stderr).Level(level).With().Timestamp().Logger()
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			fmt.Fprintf(os.Stderr, "profile: heap_inuse_bytes=%d heap_alloc_bytes=%d heap_objects=%d sys_bytes=%d\n",
				m.HeapInuse, m.HeapAlloc, m.HeapObjects, m.Sys)
			if memProfile != "" {
				if err := writeHeapProfile(memProfile); err != nil {
					fmt.Fprintln(os.Stderr, "profile:", err)
				}
			}
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.New(cfg)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
