package app

import (
	"fmt"
	"net"
	"sync"
	"syscall"

	"github.com/rs/zerolog"
)

// listener is the HTTP API's TCP listener. It keeps at most a fixed number
// of connections open at once: beyond it Accept waits for one to close, and
// new clients wait in the kernel's accept queue, so that a crowd of clients
// cannot take every file descriptor of the process. Its Close may be called
// more than once (the drain closes it first, then http.Server.Shutdown).
//
// It is netutil.LimitListener's idea, but its connections are still
// *net.TCPConn underneath, with their methods: the SSE streams bound their
// send buffer (SetWriteBuffer), and net/http half-closes a connection
// (CloseWrite) before it closes it after a "Connection: close" answer.
type listener struct {
	*net.TCPListener
	slots     chan struct{} // one token per open connection
	closed    chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// listen binds addr for at most maxConns connections at once, or fewer when
// the open-file limit is too low for that (connectionCap), which it logs.
func listen(addr string, maxConns int, logger zerolog.Logger) (*listener, error) {
	capped, lowered, fileLimit := connectionCap(maxConns)
	if lowered {
		logger.Warn().Int("max_conns", maxConns).Uint64("open_file_limit", fileLimit).Int("capped_at", capped).
			Msg("the open-file limit is too low for max-conns; serving fewer connections at once")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	tcp, ok := ln.(*net.TCPListener)
	if !ok {
		ln.Close()
		return nil, fmt.Errorf("%s is not a TCP address", addr)
	}
	return &listener{TCPListener: tcp, slots: make(chan struct{}, capped), closed: make(chan struct{})}, nil
}

// maxConns is how many connections it keeps open at most.
func (l *listener) maxConns() int { return cap(l.slots) }

// Accept waits for a free slot, then for a connection.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	c, err := l.AcceptTCP()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &conn{TCPConn: c, slots: l.slots}, nil
}

// Close stops accepting; the connections already open stay open.
func (l *listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		l.closeErr = l.TCPListener.Close()
	})
	return l.closeErr
}

// conn is an accepted connection that frees its slot when it is closed.
type conn struct {
	*net.TCPConn
	slots chan struct{}
	once  sync.Once
}

func (c *conn) Close() error {
	err := c.TCPConn.Close()
	c.once.Do(func() { <-c.slots })
	return err
}

// connectionCap is the most connections the API may keep open: maxConns,
// or three quarters of the process's open-file limit when that is lower,
// so that the logs, their readers and the Kafka clients always have
// descriptors left. It says whether it lowered maxConns, and the limit.
func connectionCap(maxConns int) (capped int, lowered bool, fileLimit uint64) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return maxConns, false, 0
	}
	if budget := rl.Cur / 4 * 3; budget < uint64(maxConns) {
		return max(int(budget), 1), true, rl.Cur
	}
	return maxConns, false, rl.Cur
}
