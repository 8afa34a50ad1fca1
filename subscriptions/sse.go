package subscriptions

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"time"

	"calculator/domain"
)

// stream writes one Server-Sent Events response: text/event-stream, no
// caching, a retry hint first, and every message flushed as soon as the
// handler has no more to send right away.
//
// Each write gets its own deadline (writeTimeout): a client that stops
// reading blocks its handler for at most that long, then the write fails and
// the handler ends. The deadline also replaces any WriteTimeout the server
// has, which would otherwise cut every stream after a fixed time.
type stream struct {
	w            http.ResponseWriter
	rc           *http.ResponseController
	writeTimeout time.Duration
	buf          []byte
}

// flushAt is how much a stream buffers before it writes, within one flush.
const flushAt = 32 << 10

// connKey is the context key of a request's connection.
type connKey struct{}

// ConnContext is meant for http.Server.ConnContext: it gives the streams
// their connection, so that they can bound its send buffer.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// boundSendBuffer sets the kernel's send buffer of the request's
// connection, if ConnContext gave it, to size bytes. Left alone, Linux grows
// it to several megabytes for a client that does not read (as much again
// as Buffer allows): this bounds the memory a stalled subscriber holds, and
// lets its writes block, and the Hub notice, that much sooner.
func boundSendBuffer(r *http.Request, size int) {
	if c, ok := r.Context().Value(connKey{}).(interface{ SetWriteBuffer(int) error }); ok && size > 0 {
		_ = c.SetWriteBuffer(size) // only a bound; the stream works without it
	}
}

// startStream sends the response header and the retry hint.
func (h *Hub) startStream(w http.ResponseWriter, r *http.Request) (*stream, error) {
	boundSendBuffer(r, h.opt.SendBuffer)
	header := w.Header()
	header.Set("Content-Type", "text/event-stream")
	header.Set("Cache-Control", "no-cache")
	header.Set("X-Accel-Buffering", "no") // tell nginx-like proxies not to buffer
	w.WriteHeader(http.StatusOK)
	s := &stream{w: w, rc: http.NewResponseController(w), writeTimeout: h.opt.WriteTimeout}
	s.buf = append(s.buf, "retry: "...)
	s.buf = strconv.AppendInt(s.buf, h.opt.Retry.Milliseconds(), 10)
	s.buf = append(s.buf, "\n\n"...)
	return s, s.flush()
}

// message queues one message. data is split into one data line per line.
func (s *stream) message(id, event string, data []byte) error {
	if id != "" {
		s.buf = append(s.buf, "id: "...)
		s.buf = append(s.buf, id...)
		s.buf = append(s.buf, '\n')
	}
	s.buf = appendFrame(s.buf, event, data)
	return s.spill()
}

// frame queues a message made of an id and an encoded frame (appendFrame).
func (s *stream) frame(id string, frame []byte) error {
	s.buf = append(s.buf, "id: "...)
	s.buf = append(s.buf, id...)
	s.buf = append(s.buf, '\n')
	s.buf = append(s.buf, frame...)
	return s.spill()
}

// comment queues a comment line, which clients ignore: it keeps idle
// connections (and the proxies on their way) alive.
func (s *stream) comment(text string) {
	s.buf = append(s.buf, ": "...)
	s.buf = append(s.buf, text...)
	s.buf = append(s.buf, "\n\n"...)
}

// spill writes the buffer out once it is large, so that a long catch-up
// does not hold it all in memory.
func (s *stream) spill() error {
	if len(s.buf) < flushAt {
		return nil
	}
	return s.write()
}

func (s *stream) write() error {
	if len(s.buf) == 0 {
		return nil
	}
	s.deadline(time.Now().Add(s.writeTimeout))
	_, err := s.w.Write(s.buf)
	s.buf = s.buf[:0]
	return err
}

// flush writes what is queued and sends it to the client.
func (s *stream) flush() error {
	if err := s.write(); err != nil {
		return err
	}
	s.deadline(time.Now().Add(s.writeTimeout))
	return s.rc.Flush()
}

// end clears the write deadline, so that a connection the client keeps
// alive for another request does not inherit it.
func (s *stream) end() { s.deadline(time.Time{}) }

// deadline sets the write deadline. Its error is ignored: either the writer
// has no deadlines (http.ErrNotSupported, in tests with a recorder) or the
// connection is gone, which the next write reports.
func (s *stream) deadline(t time.Time) { _ = s.rc.SetWriteDeadline(t) }

// appendFrame appends the event and data lines of a message and the blank
// line that ends it. Data containing newlines becomes several data lines,
// which a client joins back with newlines.
func appendFrame(b []byte, event string, data []byte) []byte {
	if event != "" {
		b = append(b, "event: "...)
		b = append(b, event...)
		b = append(b, '\n')
	}
	for {
		line, rest, more := bytes.Cut(data, []byte{'\n'})
		b = append(b, "data: "...)
		b = append(b, bytes.TrimSuffix(line, []byte{'\r'})...)
		b = append(b, '\n')
		if !more {
			break
		}
		data = rest
	}
	return append(b, '\n')
}

// eventFrame appends the frame of an event of the events stream: its action
// as the SSE event type, its wire form (SPEC §4) as data.
func eventFrame(b []byte, e *domain.Event) []byte {
	return appendFrame(b, string(e.Action), e.AppendJSON(nil))
}

// mustJSON encodes the data of a message.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only the package's own types, which always encode
	}
	return b
}
