// Package ssetest is a Server-Sent Events client for tests: it parses a
// text/event-stream as the HTML specification's event stream interpretation
// says (§9.2.6, "Interpreting an event stream"), so that a test reads a
// stream the way a browser's EventSource does.
//
// What it handles: lines ended by CRLF, LF or CR; a leading byte order mark;
// comment lines; "field: value" with one optional space after the colon; a
// field without a colon; multi-line data (joined with "\n"); event types
// (default "message"); ids, which persist from message to message and are
// ignored when they contain NUL; retry, only when all digits; and a message
// without data, which is not dispatched. An unterminated message at the end
// of the stream is discarded.
package ssetest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Event is a dispatched message.
type Event struct {
	Type string // the event field, "message" if none
	Data string
	// LastEventID is the last event ID at dispatch: this message's id, or
	// the one before it if it had none (what EventSource reports).
	LastEventID string
}

// Reader parses an event stream.
type Reader struct {
	br     *bufio.Reader
	skipLF bool // the last line ended with CR: a following LF belongs to it
	first  bool

	// LastEventID is the id a reconnecting client would send.
	LastEventID string
	// Retry is the reconnection time the stream asked for; 0 if none.
	Retry time.Duration
	// Comments are the comment lines seen, without the colon.
	Comments []string

	idBuffer, eventType string
	data                strings.Builder
	hasData             bool
}

// NewReader returns a Reader of r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReader(r), first: true}
}

// Next returns the next dispatched message. At the end of the stream it
// returns io.EOF (an unterminated last message is dropped, as the
// specification says).
func (r *Reader) Next() (Event, error) {
	for {
		line, err := r.readLine()
		if err != nil {
			return Event{}, err
		}
		if line == "" {
			if ev, ok := r.dispatch(); ok {
				return ev, nil
			}
			continue
		}
		if line[0] == ':' {
			r.Comments = append(r.Comments, strings.TrimPrefix(line[1:], " "))
			continue
		}
		field, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "event":
			r.eventType = value
		case "data":
			r.data.WriteString(value)
			r.data.WriteByte('\n')
			r.hasData = true
		case "id":
			if !strings.ContainsRune(value, 0) {
				r.idBuffer = value
			}
		case "retry":
			if value != "" && strings.Trim(value, "0123456789") == "" {
				if ms, err := strconv.ParseInt(value, 10, 64); err == nil {
					r.Retry = time.Duration(ms) * time.Millisecond
				}
			}
		}
	}
}

func (r *Reader) dispatch() (Event, bool) {
	r.LastEventID = r.idBuffer
	if !r.hasData {
		r.eventType = ""
		return Event{}, false
	}
	ev := Event{Type: r.eventType, Data: strings.TrimSuffix(r.data.String(), "\n"), LastEventID: r.LastEventID}
	if ev.Type == "" {
		ev.Type = "message"
	}
	r.eventType, r.hasData = "", false
	r.data.Reset()
	return ev, true
}

func (r *Reader) readLine() (string, error) {
	var line []byte
	for {
		b, err := r.br.ReadByte()
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				err = io.ErrUnexpectedEOF // a line without its end: discarded
			}
			return "", err
		}
		if r.skipLF {
			r.skipLF = false
			if b == '\n' {
				continue
			}
		}
		switch b {
		case '\n':
			return r.text(line), nil
		case '\r':
			r.skipLF = true
			return r.text(line), nil
		}
		line = append(line, b)
	}
}

// text strips the byte order mark from the first line.
func (r *Reader) text(line []byte) string {
	s := string(line)
	if r.first {
		r.first = false
		s = strings.TrimPrefix(s, "\uFEFF")
	}
	return s
}

// Stream is an open event stream.
type Stream struct {
	*Reader
	Response *http.Response
}

// Dial opens the event stream at url, with a Last-Event-ID header when
// lastEventID is not empty. It fails unless the answer is 200 with
// Content-Type text/event-stream. The stream lives until ctx is done or
// Close.
func Dial(ctx context.Context, client *http.Client, url, lastEventID string) (*Stream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s, Content-Type %q: %s", url, resp.Status, ct, body)
	}
	return &Stream{Reader: NewReader(resp.Body), Response: resp}, nil
}

// Close closes the connection.
func (s *Stream) Close() error { return s.Response.Body.Close() }
