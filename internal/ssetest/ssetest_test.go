package ssetest

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readAll(t *testing.T, stream string) (*Reader, []Event) {
	t.Helper()
	r := NewReader(strings.NewReader(stream))
	var events []Event
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return r, events
		}
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   []Event
	}{
		{"one message", "data: hello\n\n", []Event{{Type: "message", Data: "hello"}}},
		{"event type and id", "id: 7\nevent: ValueCreated\ndata: {}\n\n",
			[]Event{{Type: "ValueCreated", Data: "{}", LastEventID: "7"}}},
		{"multi-line data", "data: a\ndata: b\ndata:\ndata:  c\n\n", []Event{{Type: "message", Data: "a\nb\n\n c"}}},
		{"CRLF and CR line ends", "data: a\r\ndata: b\r\rdata: c\r\r\n", []Event{
			{Type: "message", Data: "a\nb"}, {Type: "message", Data: "c"}}},
		{"byte order mark", "\uFEFFdata: x\n\n", []Event{{Type: "message", Data: "x"}}},
		{"comments are not messages", ": keep-alive\n\n:x\ndata: y\n\n", []Event{{Type: "message", Data: "y"}}},
		{"no space after colon, and a field without colon", "data:x\ndata\n\n", []Event{{Type: "message", Data: "x\n"}}},
		{"id persists and resets", "id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n", []Event{
			{Type: "message", Data: "a", LastEventID: "1"},
			{Type: "message", Data: "b", LastEventID: "1"},
			{Type: "message", Data: "c", LastEventID: ""}}},
		{"id with NUL is ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", []Event{
			{Type: "message", Data: "a", LastEventID: "1"}, {Type: "message", Data: "b", LastEventID: "1"}}},
		{"message without data is not dispatched, but sets the id", "id: 5\nevent: x\n\ndata: a\n\n", []Event{
			{Type: "message", Data: "a", LastEventID: "5"}}},
		{"unknown fields are ignored", "foo: bar\ndata: a\n\n", []Event{{Type: "message", Data: "a"}}},
		{"unterminated last message is dropped", "data: a\n\ndata: b\n", []Event{{Type: "message", Data: "a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := readAll(t, tt.stream)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestRetryAndComments(t *testing.T) {
	r, _ := readAll(t, "retry: 1500\n\n: one\nretry: x1\nretry: 2s\n:two\n\n")
	if r.Retry != 1500*time.Millisecond {
		t.Errorf("Retry = %v, want 1.5s (only all-digit values count)", r.Retry)
	}
	if want := []string{"one", "two"}; !reflect.DeepEqual(r.Comments, want) {
		t.Errorf("Comments = %q, want %q", r.Comments, want)
	}
}
