package view_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/eventlog/filelog"
	"calculator/internal/await"
	"calculator/view"
)

// fixture is a view of a real file log in a temporary directory, with its
// history file beside it, served on loopback; the test writes the events
// itself.
type fixture struct {
	t    *testing.T
	log  *filelog.Log
	view *view.View
	url  string
	// history is the view's history file.
	history string
	// written are the events appended so far, by offset.
	written []domain.Event
}

func newFixture(t *testing.T, events ...domain.Event) *fixture {
	t.Helper()
	dir := t.TempDir()
	l, err := filelog.Open(dir, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() }) // after the view's (cleanups run last first)
	f := &fixture{t: t, log: l, history: filepath.Join(dir, "history.blocks")}
	f.append(events...) // before the view starts: replayed
	f.view = view.New(l, "events", zerolog.Nop(), nil)
	if err := f.view.WithHistoryFile(f.history); err != nil {
		t.Fatal(err)
	}
	f.url = serve(t, f.view).URL
	f.waitApplied()
	return f
}

// inMemory returns the URL of a second view of the fixture's log, with its
// history index all in memory, once it has read every event written.
func (f *fixture) inMemory() string {
	f.t.Helper()
	v := view.New(f.log, "events", zerolog.Nop(), nil)
	srv := serve(f.t, v)
	await.Until(f.t, 10*time.Second, "the in-memory view read the log", func() bool {
		return v.Ready() && v.Progress().EventsRead == int64(len(f.written))
	})
	return srv.URL
}

// append writes events to the log.
func (f *fixture) append(events ...domain.Event) {
	f.t.Helper()
	msgs := make([]eventlog.Message, len(events))
	for i, e := range events {
		msgs[i] = eventlog.Message{Key: []byte(e.ValueID.String()), Value: e.AppendJSON(nil)}
	}
	if err := f.log.Append(context.Background(), "events", msgs...); err != nil {
		f.t.Fatal(err)
	}
	f.written = append(f.written, events...)
}

// waitApplied waits until the view is ready and has read every event
// written.
func (f *fixture) waitApplied() {
	f.t.Helper()
	limit := time.Now().Add(10 * time.Second)
	for read := f.view.Progress().EventsRead; !f.view.Ready() || read < int64(len(f.written)); read = f.view.Progress().EventsRead {
		if time.Now().After(limit) {
			f.t.Fatalf("the view read %d of %d events (ready: %v)", read, len(f.written), f.view.Ready())
		}
		time.Sleep(time.Millisecond)
	}
}

// get returns the status, headers and JSON body of GET path.
func (f *fixture) get(path string) (int, http.Header, map[string]any) {
	f.t.Helper()
	resp, err := http.Get(f.url + path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		f.t.Fatalf("GET %s: %d, body not JSON: %v", path, resp.StatusCode, err)
	}
	return resp.StatusCode, resp.Header, body
}

// script builds events as the processor would write them, a second apart
// from start unless a test moves the clock.
type script struct {
	now time.Time
}

func (s *script) next() time.Time {
	s.now = s.now.Add(time.Second)
	return s.now
}

func (s *script) event(action domain.Action, id uuid.UUID) domain.Event {
	cmd := uuid.New()
	return domain.Event{ID: domain.EventID(cmd), ParentID: cmd, Action: action, ValueID: id, Timestamp: s.next()}
}

func (s *script) created(id uuid.UUID, value float64) domain.Event {
	e := s.event(domain.ValueCreated, id)
	e.Value = decimal(value)
	return e
}

func (s *script) updated(id uuid.UUID, op domain.Operation, operand, result float64) domain.Event {
	e := s.event(domain.ValueUpdated, id)
	e.Operation, e.Value, e.Result = op, decimal(operand), decimal(result)
	return e
}

// decimal is the Decimal with the digits of x, and float its float64 (what
// the tests read from JSON answers).
func decimal(x float64) domain.Decimal {
	return domain.MustParseDecimal(strconv.FormatFloat(x, 'g', -1, 64))
}

func float(d domain.Decimal) float64 {
	x, err := strconv.ParseFloat(d.String(), 64)
	if err != nil {
		panic(err)
	}
	return x
}

func (s *script) rejected(id uuid.UUID, reason domain.Reason) domain.Event {
	e := s.event(domain.CommandRejected, id)
	e.Reason, e.Message = reason, "no: "+string(reason)
	return e
}

// wantHistory is the history of value id as the test computes it from the
// events written, independently of the view: every entry as JSON would
// decode it.
func (f *fixture) wantHistory(id uuid.UUID, rejections bool) []map[string]any {
	var out []map[string]any
	var current any // nil until created
	version := 0
	for offset, e := range f.written {
		if e.ValueID != id || (e.Action == domain.CommandRejected && (current == nil || !rejections)) {
			continue
		}
		entry := map[string]any{
			"event_id": e.ID.String(), "command_id": e.ParentID.String(), "action": string(e.Action),
			"timestamp": e.Timestamp.UTC().Format(time.RFC3339Nano), "position": strconv.Itoa(offset),
		}
		switch e.Action {
		case domain.ValueCreated:
			version++
			entry["version"], entry["before"], entry["value"] = float64(version), nil, float(e.Value)
			current = float(e.Value)
		case domain.ValueUpdated:
			version++
			entry["version"], entry["before"], entry["value"] = float64(version), current, float(e.Result)
			entry["operation"], entry["operand"] = string(e.Operation), float(e.Value)
			current = float(e.Result)
		case domain.CommandRejected:
			entry["before"], entry["value"] = nil, current
			entry["reason"], entry["message"] = string(e.Reason), e.Message
		}
		out = append(out, entry)
	}
	return out
}

// readHistory follows a history's pages from path to the last, checking
// that the body's next and the Link header agree, and returns every entry.
func (f *fixture) readHistory(path string) (entries []map[string]any, pages int) {
	f.t.Helper()
	for path != "" {
		status, header, body := f.get(path)
		if status != http.StatusOK {
			f.t.Fatalf("GET %s = %d %v", path, status, body)
		}
		pages++
		for _, e := range body["events"].([]any) {
			entries = append(entries, e.(map[string]any))
		}
		next, _ := body["next"].(string)
		wantLink := ""
		if next != "" {
			wantLink = "<" + next + `>; rel="next"`
		}
		if link := header.Get("Link"); link != wantLink {
			f.t.Fatalf("GET %s: Link %q, body next %q: want the link to the same page", path, link, next)
		}
		path = next
	}
	return entries, pages
}

func sameEntries(t *testing.T, what string, got, want []map[string]any) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d:\ngot  %v\nwant %v", what, len(got), len(want), got, want)
	}
	for i := range want {
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
			t.Fatalf("%s: entry %d\ngot  %v\nwant %v", what, i, got[i], want[i])
		}
	}
}

// valueScript is one value's life among another value's events, with
// rejections between its versions and one for an id that never existed.
func valueScript() (id, other uuid.UUID, events []domain.Event, s *script) {
	s = &script{now: time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)}
	id, other = uuid.New(), uuid.New()
	events = []domain.Event{
		s.rejected(id, domain.ValueNotFound), // before it exists: in no history
		s.created(other, 1),
		s.created(id, 2),
		s.updated(id, domain.Add, 2, 4),
		s.updated(other, domain.Add, 1, 2),
		s.rejected(id, domain.DivisionByZero),
		s.updated(id, domain.Multiply, 3, 12),
		s.rejected(id, domain.Overflow),
		s.rejected(id, domain.DivisionByZero),
		s.updated(id, domain.Subtract, 2, 10),
		s.rejected(uuid.New(), domain.ValueNotFound),
		s.rejected(id, domain.ValueExists),
	}
	return id, other, events, s
}

// TestHistory reads a value's history, whole and in pages of every size,
// with and without its rejections, and compares it with the events written.
func TestHistory(t *testing.T) {
	id, other, events, s := valueScript()
	f := newFixture(t, events...)
	// Some events after the replay, applied live.
	f.append(s.updated(id, domain.Divide, 4, 2.5), s.rejected(id, domain.Overflow), s.updated(other, domain.Add, 1, 3))
	f.waitApplied()

	for _, rejections := range []bool{false, true} {
		want := f.wantHistory(id, rejections)
		include := ""
		if rejections {
			include = "&include=rejected"
		}
		got, pages := f.readHistory("/values/" + id.String() + "/history?" + strings.TrimPrefix(include, "&"))
		sameEntries(t, "whole history"+include, got, want)
		if pages != 1 {
			t.Errorf("whole history%s: %d pages, want 1", include, pages)
		}
		for limit := 1; limit <= len(want); limit++ {
			got, pages := f.readHistory(fmt.Sprintf("/values/%s/history?limit=%d%s", id, limit, include))
			sameEntries(t, fmt.Sprintf("pages of %d%s", limit, include), got, want)
			if wantPages := (len(want) + limit - 1) / limit; pages != wantPages {
				t.Errorf("pages of %d%s: %d pages, want %d", limit, include, pages, wantPages)
			}
		}
		// A page after a version starts right after that version's event.
		for after := 0; after <= 6; after++ {
			got, _ := f.readHistory(fmt.Sprintf("/values/%s/history?after_version=%d%s", id, after, include))
			rest := entriesAfterVersion(want, after)
			sameEntries(t, fmt.Sprintf("after_version=%d%s", after, include), got, rest)
		}
	}
	// The other value's history has none of the first one's rejections.
	got, _ := f.readHistory("/values/" + other.String() + "/history?include=rejected")
	sameEntries(t, "the other value", got, f.wantHistory(other, true))
}

// TestTimeTravel reads each version of a value, and the value at instants
// on, between and around its events' timestamps, including after a clock
// that went back.
func TestTimeTravel(t *testing.T) {
	id, _, events, s := valueScript()
	s.now = s.now.Add(-10 * time.Second) // the clock goes back before the last update
	events = append(events, s.updated(id, domain.Add, 5, 15))
	f := newFixture(t, events...)

	type version struct {
		value float64
		at    time.Time
	}
	var versions []version
	for _, e := range f.written {
		if e.ValueID != id {
			continue
		}
		switch e.Action {
		case domain.ValueCreated:
			versions = append(versions, version{float(e.Value), e.Timestamp})
		case domain.ValueUpdated:
			versions = append(versions, version{float(e.Result), e.Timestamp})
		}
	}
	for n, v := range versions {
		status, header, body := f.get(fmt.Sprintf("/values/%s?version=%d", id, n+1))
		if status != http.StatusOK || body["value"] != v.value || body["version"] != float64(n+1) || body["value_id"] != id.String() {
			t.Errorf("?version=%d = %d %v, want %v at version %d", n+1, status, body, v.value, n+1)
		}
		if etag := header.Get("ETag"); etag != "" {
			t.Errorf("?version=%d has ETag %s: only the current value has one", n+1, etag)
		}
	}
	// ValueAt, which the subscriptions ask for the value after an older
	// command, says what ?version= says, and fails where it answers 404.
	for n, v := range versions {
		if got, err := f.view.ValueAt(t.Context(), id, int64(n+1)); err != nil || float(got) != v.value {
			t.Errorf("ValueAt version %d = %v, %v; want %v", n+1, got, err, v.value)
		}
	}
	for _, version := range []int64{0, int64(len(versions) + 1)} {
		if got, err := f.view.ValueAt(t.Context(), id, version); err == nil {
			t.Errorf("ValueAt version %d of %d = %v, want an error", version, len(versions), got)
		}
	}
	if got, err := f.view.ValueAt(t.Context(), uuid.New(), 1); err == nil {
		t.Errorf("ValueAt of an unknown value = %v, want an error", got)
	}

	status, header, body := f.get("/values/" + id.String())
	if last := len(versions); status != http.StatusOK || body["version"] != float64(last) || header.Get("ETag") != fmt.Sprintf(`"%d"`, last) {
		t.Errorf("GET the value = %d %v, ETag %q; want version %d and ETag \"%d\"", status, body, header.Get("ETag"), last, last)
	}

	// ?at=: the value after the last event stamped at or before it; the
	// update stamped before the one it follows counts only from the
	// instant of that one (the running maximum).
	at := func(tm time.Time) string {
		return fmt.Sprintf("/values/%s?at=%s", id, url.QueryEscape(tm.Format(time.RFC3339Nano)))
	}
	versionAt := func(tm time.Time) int { // how many versions, from the first, are stamped at or before tm
		var latest time.Time
		for n, v := range versions {
			if v.at.After(latest) {
				latest = v.at
			}
			if latest.After(tm) {
				return n
			}
		}
		return len(versions)
	}
	if got := versionAt(versions[len(versions)-2].at); got != len(versions) {
		t.Fatalf("the script: the last update should count from the instant of the one before it (%d)", got)
	}
	for _, v := range versions {
		for _, tm := range []time.Time{v.at, v.at.Add(time.Nanosecond), v.at.Add(-time.Nanosecond)} {
			want := versionAt(tm)
			if want == 0 {
				continue // before the creation: below
			}
			status, _, body := f.get(at(tm))
			if status != http.StatusOK || body["version"] != float64(want) || body["value"] != versions[want-1].value {
				t.Errorf("?at=%s = %d %v, want version %d", tm.Format(time.RFC3339Nano), status, body, want)
			}
		}
	}
	if status, _, body := f.get(at(time.Now().Add(time.Hour))); status != http.StatusOK || body["version"] != float64(len(versions)) {
		t.Errorf("?at=<in an hour> = %d %v, want the last version", status, body)
	}

	// Before the value existed, and versions it has not reached: 404s
	// that say which.
	before := versions[0].at.Add(-time.Nanosecond)
	status, _, body = f.get(at(before))
	if detail, _ := body["detail"].(string); status != http.StatusNotFound || body["type"] != "urn:calculator:problem:value-not-found" ||
		!strings.Contains(detail, "did not exist at "+before.Format(time.RFC3339Nano)) || !strings.Contains(detail, "created at "+versions[0].at.Format(time.RFC3339Nano)) {
		t.Errorf("?at=<before the creation> = %d %v, want 404 value-not-found saying when it was created", status, body)
	}
	status, _, body = f.get(fmt.Sprintf("/values/%s?version=%d", id, len(versions)+1))
	if detail, _ := body["detail"].(string); status != http.StatusNotFound || body["type"] != "urn:calculator:problem:version-not-found" ||
		!strings.Contains(detail, fmt.Sprintf("has %d versions", len(versions))) {
		t.Errorf("?version=<next> = %d %v, want 404 version-not-found saying how many versions there are", status, body)
	}
	if status, _, body := f.get("/values/" + uuid.NewString() + "?version=1"); status != http.StatusNotFound || body["type"] != "urn:calculator:problem:value-not-found" {
		t.Errorf("?version=1 of an unknown value = %d %v, want 404 value-not-found", status, body)
	}
}

// TestListValues pages through the values in order of their ids.
func TestListValues(t *testing.T) {
	s := &script{now: time.Now()}
	var events []domain.Event
	want := map[string]float64{}
	for i := range 25 {
		id := uuid.New()
		events = append(events, s.created(id, float64(i)))
		want[id.String()] = float64(i)
	}
	f := newFixture(t, events...)
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range want {
			if !yield(id) {
				return
			}
		}
	})
	for _, limit := range []int{1, 10, 25, 100} {
		path := fmt.Sprintf("/values?limit=%d", limit)
		var got []string
		pages := 0
		for path != "" {
			status, header, body := f.get(path)
			if status != http.StatusOK {
				t.Fatalf("GET %s = %d %v", path, status, body)
			}
			pages++
			values := body["values"].([]any)
			if len(values) > limit {
				t.Fatalf("GET %s: %d values", path, len(values))
			}
			for _, v := range values {
				v := v.(map[string]any)
				id := v["value_id"].(string)
				if v["value"] != want[id] || v["version"] != 1.0 {
					t.Fatalf("GET %s: %v, want value %v version 1", path, v, want[id])
				}
				got = append(got, id)
			}
			next, _ := body["next"].(string)
			if link := header.Get("Link"); (next == "") != (link == "") || next != "" && link != "<"+next+`>; rel="next"` {
				t.Fatalf("GET %s: Link %q, next %q", path, link, next)
			}
			path = next
		}
		if !slices.Equal(got, ids) {
			t.Fatalf("limit=%d: listed %v, want %v", limit, got, ids)
		}
		if want := (len(ids) + limit - 1) / limit; pages != want {
			t.Errorf("limit=%d: %d pages, want %d", limit, pages, want)
		}
	}
	if status, _, body := f.get("/values"); status != http.StatusOK || len(body["values"].([]any)) != 25 || body["next"] != nil {
		t.Errorf("GET /values = %d %v, want the 25 values (default limit 100) and no next", status, body)
	}
	if status, _, body := f.get("/values?after=" + ids[24]); status != http.StatusOK || len(body["values"].([]any)) != 0 {
		t.Errorf("GET /values after the last = %d %v, want an empty page", status, body)
	}
}

// TestBadQueries: every malformed parameter is a 400 problem that names it.
func TestBadQueries(t *testing.T) {
	id, _, events, _ := valueScript()
	f := newFixture(t, events...)
	for _, tt := range []struct{ path, mention string }{
		{"/values?limit=0", "limit"},
		{"/values?limit=1001", "limit"},
		{"/values?limit=ten", "limit"},
		{"/values?limit=", "limit"},
		{"/values?after=nope", "after"},
		{"/values?after=urn:uuid:" + id.String(), "after"},
		{"/values/" + id.String() + "/history?limit=-1", "limit"},
		{"/values/" + id.String() + "/history?after_version=-1", "after_version"},
		{"/values/" + id.String() + "/history?after_version=x", "after_version"},
		{"/values/" + id.String() + "/history?include=everything", "include"},
		{"/values/" + id.String() + "/history?after_position=x", "after_position"},
		{"/values/" + id.String() + "/history?after_position=1:3", "partition"},
		{"/values/" + id.String() + "/history?after_version=1&after_position=3", "not both"},
		{"/values/" + id.String() + "?version=0", "version"},
		{"/values/" + id.String() + "?version=two", "version"},
		{"/values/" + id.String() + "?at=yesterday", "at"},
		{"/values/" + id.String() + "?at=2025-03-01", "at"},
		{"/values/" + id.String() + "?version=1&at=2025-03-01T00:00:00Z", "not both"},
	} {
		status, _, body := f.get(tt.path)
		if detail, _ := body["detail"].(string); status != http.StatusBadRequest || body["type"] != "urn:calculator:problem:invalid-query" || !strings.Contains(detail, tt.mention) {
			t.Errorf("GET %s = %d %v, want 400 invalid-query mentioning %q", tt.path, status, body, tt.mention)
		}
	}
	if status, _, body := f.get("/values/" + uuid.NewString() + "/history"); status != http.StatusNotFound || body["type"] != "urn:calculator:problem:value-not-found" {
		t.Errorf("history of an unknown value = %d %v, want 404", status, body)
	}
	if status, _, body := f.get("/values/nope/history"); status != http.StatusBadRequest || body["type"] != "urn:calculator:problem:invalid-id" {
		t.Errorf("history of a malformed id = %d %v, want 400 invalid-id", status, body)
	}
	// A version past the last is an empty page, not an error: a cursor past the end.
	if status, _, body := f.get("/values/" + id.String() + "/history?after_version=99"); status != http.StatusOK || len(body["events"].([]any)) != 0 || body["next"] != nil {
		t.Errorf("history after version 99 = %d %v, want an empty last page", status, body)
	}
}

// While the view replays, the listing, histories and past values answer
// 503 as the current value does: the index is as partial as the state.
func TestHistoryQueriesWaitForTheReplay(t *testing.T) {
	log := &scriptedLog{batches: make(chan eventlog.Batch)}
	v := view.New(log, "events", zerolog.Nop(), nil)
	srv := serve(t, v)

	id := uuid.New()
	s := &script{now: time.Now()}
	log.batches <- eventlog.Batch{Records: []eventlog.Record{record(0, s.created(id, 1))}}
	log.batches <- eventlog.Batch{} // Follow has handed over the previous batch once this one is taken
	for _, path := range []string{"/values", "/values/" + id.String() + "/history", "/values/" + id.String() + "?version=1"} {
		resp, body := get(t, srv.URL+path)
		if resp.StatusCode != http.StatusServiceUnavailable || body["type"] != "urn:calculator:problem:replaying" {
			t.Errorf("GET %s during the replay = %d %v, want 503 replaying", path, resp.StatusCode, body)
		}
	}
}

// longHistory is a value with several blocks of versions and of
// rejections among another value's events, and the events.
func longHistory(s *script, updates int) (id, other uuid.UUID, events []domain.Event) {
	id, other = uuid.New(), uuid.New()
	events = append(events, s.created(id, 0), s.created(other, 0))
	for i := range updates {
		events = append(events, s.updated(id, domain.Add, 1, float64(i+1)))
		if i%3 == 0 {
			events = append(events, s.rejected(id, domain.Overflow))
		}
		if i%2 == 0 {
			events = append(events, s.updated(other, domain.Add, 1, float64(i/2+1)))
		}
	}
	return id, other, events
}

// versionsOf returns the value and timestamp after each version of id, as
// the events written say.
func (f *fixture) versionsOf(id uuid.UUID) (values []float64, times []time.Time) {
	for _, e := range f.written {
		switch {
		case e.ValueID != id:
		case e.Action == domain.ValueCreated:
			values, times = append(values, float(e.Value)), append(times, e.Timestamp)
		case e.Action == domain.ValueUpdated:
			values, times = append(values, float(e.Result)), append(times, e.Timestamp)
		}
	}
	return values, times
}

// A value with a long history (several blocks of versions and of
// rejections in the history file, some written during the replay, some
// live) reads as the events written say, page by page from every block's
// edge, and ?version= and ?at= find every version; a view with its index
// in memory answers the same.
func TestLongHistory(t *testing.T) {
	s := &script{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	id, other, events := longHistory(s, 3*128+40)
	f := newFixture(t, events...)
	// Live events, in batches, while pages are read (under -race: the
	// reads copy the trail under the lock and read its blocks after).
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for after := 0; ; after = (after + 37) % 400 {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := http.Get(fmt.Sprintf("%s/values/%s/history?limit=300&after_version=%d", f.url, id, after))
			var body map[string]any
			if err == nil {
				err = json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("a page read while events are applied: %v %v", err, body)
				return
			}
			for i, e := range body["events"].([]any) {
				if v := e.(map[string]any)["version"]; v != float64(after+i+1) {
					t.Errorf("after_version=%d: entry %d is version %v", after, i, v)
					return
				}
			}
		}
	})
	for batch := range 10 {
		var live []domain.Event
		for i := range 15 {
			live = append(live, s.updated(id, domain.Multiply, 1, float64(3*128+40+batch*15+i)))
			if i%2 == 0 {
				live = append(live, s.rejected(id, domain.DivisionByZero))
			}
		}
		f.append(live...)
		f.waitApplied()
	}
	close(stop)
	readers.Wait()
	mem := f.inMemory()

	values, times := f.versionsOf(id)
	if len(values) < 4*128 {
		t.Fatalf("the script: %d versions, want more than 4 blocks", len(values))
	}
	edges := []int{0, 1}
	for k := 1; k*128 <= len(values)+1; k++ {
		edges = append(edges, k*128-1, k*128, k*128+1)
	}
	for _, rejections := range []bool{false, true} {
		include := ""
		if rejections {
			include = "&include=rejected"
		}
		want := f.wantHistory(id, rejections)
		for _, limit := range []int{1000, 300, 128, 97} {
			got, _ := f.readHistory(fmt.Sprintf("/values/%s/history?limit=%d%s", id, limit, include))
			sameEntries(t, fmt.Sprintf("pages of %d%s", limit, include), got, want)
		}
		for _, after := range edges {
			path := fmt.Sprintf("/values/%s/history?limit=200&after_version=%d%s", id, after, include)
			rest := entriesAfterVersion(want, after)
			rest = rest[:min(200, len(rest))]
			_, _, body := f.get(path)
			var got []map[string]any
			for _, e := range body["events"].([]any) {
				got = append(got, e.(map[string]any))
			}
			sameEntries(t, path, got, rest)
			sameAnswers(t, f.url, mem, path)
		}
	}
	sameAnswers(t, f.url, mem, "/values/"+other.String()+"/history?include=rejected&limit=1000")

	at := func(tm time.Time) string {
		return fmt.Sprintf("/values/%s?at=%s", id, url.QueryEscape(tm.Format(time.RFC3339Nano)))
	}
	for n, value := range values {
		version := n + 1
		status, _, body := f.get(fmt.Sprintf("/values/%s?version=%d", id, version))
		if status != http.StatusOK || body["value"] != value || body["version"] != float64(version) {
			t.Fatalf("?version=%d = %d %v, want %v", version, status, body, value)
		}
		// The script's clock goes forward a second an event: at the
		// instant of a version, and until the next, the value is that
		// version's.
		for _, tm := range []time.Time{times[n], times[n].Add(time.Nanosecond)} {
			status, _, body := f.get(at(tm))
			if status != http.StatusOK || body["value"] != value || body["version"] != float64(version) {
				t.Fatalf("?at=%s = %d %v, want version %d", tm.Format(time.RFC3339Nano), status, body, version)
			}
		}
		if got, err := f.view.ValueAt(t.Context(), id, int64(version)); err != nil || float(got) != value {
			t.Fatalf("ValueAt version %d = %v, %v; want %v", version, got, err, value)
		}
	}
	for _, n := range edges {
		if n > 1 && n <= len(values) {
			sameAnswers(t, f.url, mem, fmt.Sprintf("/values/%s?version=%d", id, n), at(times[n-1]), at(times[n-1].Add(-time.Nanosecond)))
		}
	}
}

// A damaged block of the history file is never read as positions: what
// needs it answers 500 and says that the history index cannot be read;
// what needs only other blocks still answers.
func TestHistoryDamagedBlock(t *testing.T) {
	s := &script{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	id, _, events := longHistory(s, 3*128+40)
	f := newFixture(t, events...)
	// The value's first block of versions is the file's first (the other
	// value has fewer than 128 events; its rejections' first block comes
	// later).
	file, err := os.OpenFile(f.history, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := file.ReadAt(b, 32+10); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := file.WriteAt(b, 32+10); err != nil {
		t.Fatal(err)
	}
	file.Close()

	values, times := f.versionsOf(id)
	for _, path := range []string{
		"/values/" + id.String() + "/history",
		"/values/" + id.String() + "/history?include=rejected&after_version=100",
		"/values/" + id.String() + "?version=3",
		"/values/" + id.String() + "?version=128",
		fmt.Sprintf("/values/%s?at=%s", id, url.QueryEscape(times[5].Format(time.RFC3339Nano))),
	} {
		status, _, body := f.get(path)
		if detail, _ := body["detail"].(string); status != http.StatusInternalServerError || body["type"] != "urn:calculator:problem:internal" ||
			!strings.Contains(detail, "history index") || !strings.Contains(detail, "checksum") {
			t.Errorf("GET %s = %d %v, want 500 saying the history index cannot be read", path, status, body)
		}
	}
	if _, err := f.view.ValueAt(t.Context(), id, 3); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("ValueAt version 3: %v, want the checksum error", err)
	}
	// Blocks after the damaged one still answer.
	for _, version := range []int{129, 300, len(values)} {
		status, _, body := f.get(fmt.Sprintf("/values/%s?version=%d", id, version))
		if status != http.StatusOK || body["value"] != values[version-1] {
			t.Errorf("?version=%d = %d %v, want %v", version, status, body, values[version-1])
		}
	}
	if _, _, body := f.get(fmt.Sprintf("/values/%s/history?after_version=%d", id, 130)); len(body["events"].([]any)) == 0 {
		t.Errorf("a page after version 130 = %v, want its events", body)
	}
}

// entriesAfterVersion returns the entries of a history (rejections
// included) that come after the event of version after: all of them for 0.
func entriesAfterVersion(entries []map[string]any, after int) []map[string]any {
	var rest []map[string]any
	seen := after == 0
	for _, e := range entries {
		if seen {
			rest = append(rest, e)
		}
		if e["version"] == float64(after) {
			seen = true
		}
	}
	return rest
}
