package subscriptions

import (
	"context"
	"errors"
	"net/http"
	"os"
	"time"
)

// serve runs one stream, once its handler has checked the request and
// registered what it listens to: it sends the response header and the retry
// hint, then calls send until the client goes away, the Hub closes (ctx is
// done then) or send returns, and logs why the stream ended.
func (h *Hub) serve(w http.ResponseWriter, r *http.Request, send func(ctx context.Context, s *stream) error) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// End the stream when the Hub closes; this goroutine ends with the
	// stream at the latest.
	go func() {
		select {
		case <-h.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	h.streams.Add(1)
	defer h.streams.Add(-1)
	s, err := h.startStream(w, r)
	if err != nil {
		return
	}
	defer s.end()
	h.streamEnded(r, send(ctx, s))
}

// pump is the loop of a stream: it calls step, which queues what is ready to
// go, and sends it; then it waits for wake (or a Heartbeat, which sends a
// comment line) and calls step again. It returns when step says the stream
// is over (more false), or fails, or ctx is done.
func (h *Hub) pump(ctx context.Context, s *stream, wake <-chan struct{}, step func() (more bool, err error)) error {
	heartbeat := time.NewTicker(h.opt.Heartbeat)
	defer heartbeat.Stop()
	for {
		more, err := step()
		if err != nil {
			return err
		}
		if err := s.flush(); err != nil || !more {
			return err
		}
		select {
		case <-wake:
		case <-heartbeat.C:
			s.comment("keep-alive")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// pumpQueue is pump for a stream fed by q: each call of step hands each
// batch taken from q to send. The stream ends if the subscriber fell
// behind.
func (h *Hub) pumpQueue(ctx context.Context, s *stream, q *queue, send func(*liveBatch) error) error {
	return h.pump(ctx, s, q.wake, func() (bool, error) {
		batches, overflowed := q.take()
		if overflowed {
			return false, errFellBehind
		}
		for _, b := range batches {
			if err := send(b); err != nil {
				return false, err
			}
		}
		return true, nil
	})
}

// errFellBehind ends the stream of a subscriber whose queue overflowed.
var errFellBehind = errors.New("the subscriber fell behind")

// streamEnded logs, at debug level, why a stream ended when it was not the
// client leaving or the Hub closing.
func (h *Hub) streamEnded(r *http.Request, err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// A write to the client did not finish within WriteTimeout: it
		// fell behind as surely as one whose queue overflowed.
		h.noteDrop()
	}
	h.logger.Debug().Err(err).Str("path", r.URL.Path).Str("remote", r.RemoteAddr).Msg("stream ended")
}
