// Package e2e tests the real calculator binary end to end: it builds the
// program once, runs it on 127.0.0.1:0 with a temporary data directory, talks
// to it over HTTP, stops it with SIGTERM or SIGKILL and checks what the logs
// on disk hold afterwards.
package e2e
