package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"calculator/internal/kafkatest"
)

// The event-sourcing queries end to end: the listing, a value's history and
// time travel, on the real binary, checked against a fold of the events log
// read by a client that is not the product's view (the file log opened
// after the process stopped, or a plain Kafka consumer), and again after a
// restart, which rebuilds the view's index from the log.

// loggedEvent is an event as a reader of the events log sees it: where it
// is and its wire JSON (SPEC §4).
type loggedEvent struct {
	partition int32
	offset    int64
	value     []byte
}

// wireEvent is SPEC §4's event, decoded with encoding/json.
type wireEvent struct {
	ID       string `json:"id"`
	ParentID string `json:"parent-id"`
	Action   string `json:"action"`
	Data     struct {
		ValueID   string   `json:"value-id"`
		Operation string   `json:"operation"`
		Value     *float64 `json:"value"`
		Result    *float64 `json:"result"`
		Reason    string   `json:"reason"`
		Message   string   `json:"message"`
	} `json:"data"`
	Timestamp string `json:"timestamp"`
}

// foldedVersion is one version of a value by the fold: its value and its
// event's timestamp.
type foldedVersion struct {
	value float64
	at    time.Time
}

// fold returns, for value id, the history the API must answer (with the
// rejections since its creation, in log order, as JSON decodes the
// entries) and its versions.
func fold(t *testing.T, events []loggedEvent, id string) (history []map[string]any, versions []foldedVersion) {
	t.Helper()
	var mine []loggedEvent
	for _, le := range events {
		var e wireEvent
		if err := json.Unmarshal(le.value, &e); err != nil {
			t.Fatalf("event at %d:%d is not JSON: %v", le.partition, le.offset, err)
		}
		if e.Data.ValueID == id {
			mine = append(mine, le)
		}
	}
	slices.SortFunc(mine, func(a, b loggedEvent) int { return int(a.offset - b.offset) }) // one partition: the key is the value id
	var current *float64
	for _, le := range mine {
		var e wireEvent
		json.Unmarshal(le.value, &e)
		if le.partition != mine[0].partition {
			t.Fatalf("value %s has events in partitions %d and %d", id, mine[0].partition, le.partition)
		}
		at, err := time.Parse(time.RFC3339Nano, e.Timestamp)
		if err != nil {
			t.Fatalf("event %s: timestamp %q: %v", e.ID, e.Timestamp, err)
		}
		position := strconv.FormatInt(le.offset, 10)
		if le.partition != 0 {
			position = fmt.Sprintf("%d:%d", le.partition, le.offset)
		}
		entry := map[string]any{
			"event_id": e.ID, "command_id": e.ParentID, "action": e.Action,
			"timestamp": at.UTC().Format(time.RFC3339Nano), "position": position,
		}
		switch e.Action {
		case "ValueCreated":
			entry["version"], entry["before"], entry["value"] = float64(len(versions)+1), nil, *e.Data.Value
			current = e.Data.Value
			versions = append(versions, foldedVersion{*e.Data.Value, at})
		case "ValueUpdated":
			entry["version"], entry["before"], entry["value"] = float64(len(versions)+1), *current, *e.Data.Result
			entry["operation"], entry["operand"] = e.Data.Operation, *e.Data.Value
			current = e.Data.Result
			versions = append(versions, foldedVersion{*e.Data.Result, at})
		case "CommandRejected":
			if current == nil {
				continue // before the value existed: in no history
			}
			entry["before"], entry["value"] = nil, *current
			entry["reason"], entry["message"] = e.Data.Reason, e.Data.Message
		}
		history = append(history, entry)
	}
	return history, versions
}

// wait sends a command with ?wait and checks its answer's status.
func (s *server) wait(method, path, body string, want int) map[string]any {
	s.t.Helper()
	r := s.must(method, path+"?wait=5s", body)
	if r.Status != want {
		s.t.Fatalf("%s %s?wait=5s %s = %d %s, want %d", method, path, body, r.Status, r.Raw, want)
	}
	return r.Body
}

// historyScenario drives a value through updates and rejections, beside
// another value, and waits for each outcome. It returns both ids.
func historyScenario(s *server) (id, other string) {
	id = s.wait("POST", "/values", `{"value": 2}`, http.StatusCreated)["value_id"].(string)
	other = s.wait("POST", "/values", `{"value": 10}`, http.StatusCreated)["value_id"].(string)
	s.wait("PUT", "/values/"+id, `{"operation":"ADD","value":2}`, http.StatusOK)
	s.wait("PUT", "/values/"+other, `{"operation":"MULTIPLY","value":2}`, http.StatusOK)
	s.wait("PUT", "/values/"+id, `{"operation":"MULTIPLY","value":3}`, http.StatusOK)
	s.wait("PUT", "/values/"+id, `{"operation":"DIVIDE","value":0}`, http.StatusUnprocessableEntity)
	s.wait("PUT", "/values/"+id, `{"operation":"SUBTRACT","value":2}`, http.StatusOK)
	s.wait("PUT", "/values/"+uuid.NewString(), `{"operation":"ADD","value":1}`, http.StatusUnprocessableEntity)
	s.wait("PUT", "/values/"+id, `{"operation":"MULTIPLY","value":1e6144}`, http.StatusUnprocessableEntity) // overflow
	s.wait("PUT", "/values/"+id, `{"operation":"DIVIDE","value":4}`, http.StatusOK)
	return id, other
}

// pages follows a listing or a history from path to its last page,
// checking that each page's Link header names its body's next, and returns
// the items of every page under key.
func (s *server) pages(path, key string) (items []map[string]any, pages int) {
	s.t.Helper()
	for path != "" {
		r := s.must("GET", path, "")
		if r.Status != http.StatusOK {
			s.t.Fatalf("GET %s = %d %s", path, r.Status, r.Raw)
		}
		pages++
		for _, item := range r.Body[key].([]any) {
			items = append(items, item.(map[string]any))
		}
		next, _ := r.Body["next"].(string)
		if link := r.Header.Get("Link"); next == "" && link != "" || next != "" && link != "<"+next+`>; rel="next"` {
			s.t.Fatalf("GET %s: Link %q, body next %q: want the link to the same page", path, link, next)
		}
		path = next
	}
	return items, pages
}

// normalized returns entries with their timestamps written as the fold
// writes them (RFC 3339, UTC, nanoseconds without trailing zeros).
func normalized(t *testing.T, entries []map[string]any) []map[string]any {
	t.Helper()
	for _, e := range entries {
		at, err := time.Parse(time.RFC3339Nano, e["timestamp"].(string))
		if err != nil {
			t.Fatalf("entry %v: %v", e, err)
		}
		e["timestamp"] = at.UTC().Format(time.RFC3339Nano)
	}
	return entries
}

func sameHistory(t *testing.T, what string, got, want []map[string]any) {
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

// checkHistories holds the server's listing, histories and time travel to
// the fold of events, for the values ids (all the values there are).
func checkHistories(t *testing.T, s *server, events []loggedEvent, ids ...string) {
	t.Helper()
	listed, pages := s.pages("/values?limit=1", "values")
	var got []string
	for _, v := range listed {
		got = append(got, v["value_id"].(string))
	}
	if want := slices.Sorted(slices.Values(ids)); !slices.Equal(got, want) || pages != len(ids) {
		t.Errorf("GET /values?limit=1 listed %v in %d pages, want %v in %d", got, pages, want, len(ids))
	}

	for _, id := range ids {
		history, versions := fold(t, events, id)
		entries, _ := s.pages("/values/"+id+"/history?include=rejected", "events")
		sameHistory(t, "history of "+id+" with its rejections", normalized(t, entries), history)
		entries, pages := s.pages("/values/"+id+"/history?include=rejected&limit=2", "events")
		sameHistory(t, "history of "+id+" in pages of 2", normalized(t, entries), history)
		if want := (len(history) + 1) / 2; pages != want {
			t.Errorf("history of %s in pages of 2: %d pages, want %d", id, pages, want)
		}
		var onlyVersions []map[string]any
		for _, e := range history {
			if e["action"] != "CommandRejected" {
				onlyVersions = append(onlyVersions, e)
			}
		}
		entries, _ = s.pages("/values/"+id+"/history", "events")
		sameHistory(t, "history of "+id, normalized(t, entries), onlyVersions)

		// Time travel: each version, and each version's instant.
		latest := time.Time{}
		for n, v := range versions {
			r := s.must("GET", fmt.Sprintf("/values/%s?version=%d", id, n+1), "")
			if r.Status != http.StatusOK || r.Body["value"] != v.value || r.Body["version"] != float64(n+1) {
				t.Errorf("GET ?version=%d of %s = %d %s, want value %v", n+1, id, r.Status, r.Raw, v.value)
			}
			if v.at.After(latest) {
				latest = v.at
			}
			if latest.After(v.at) {
				continue // a clock that went back: TestTimeTravel in view covers it
			}
			r = s.must("GET", "/values/"+id+"?at="+url.QueryEscape(v.at.Format(time.RFC3339Nano)), "")
			if r.Status != http.StatusOK || r.Body["value"] != v.value || r.Body["version"] != float64(n+1) {
				t.Errorf("GET ?at=%s of %s = %d %s, want value %v at version %d", v.at.Format(time.RFC3339Nano), id, r.Status, r.Raw, v.value, n+1)
			}
		}
		before := versions[0].at.Add(-time.Millisecond).Format(time.RFC3339Nano)
		r := s.must("GET", "/values/"+id+"?at="+url.QueryEscape(before), "")
		if detail, _ := r.Body["detail"].(string); r.Status != http.StatusNotFound || !strings.Contains(detail, "did not exist at "+before) {
			t.Errorf("GET ?at=<before its creation> = %d %s, want 404 saying it did not exist then", r.Status, r.Raw)
		}
		r = s.must("GET", fmt.Sprintf("/values/%s?version=%d", id, len(versions)+1), "")
		if detail, _ := r.Body["detail"].(string); r.Status != http.StatusNotFound || !strings.Contains(detail, "does not exist yet") {
			t.Errorf("GET ?version=<next> = %d %s, want 404 saying it does not exist yet", r.Status, r.Raw)
		}
		r = s.must("GET", "/values/"+id, "")
		if etag := fmt.Sprintf(`"%d"`, len(versions)); r.Status != http.StatusOK || r.Header.Get("ETag") != etag || r.Body["value"] != versions[len(versions)-1].value {
			t.Errorf("GET /values/%s = %d %s, ETag %q; want the last version, ETag %s", id, r.Status, r.Raw, r.Header.Get("ETag"), etag)
		}
	}
}

// TestHistoryAndTimeTravel on the embedded log: the API while the process
// runs, then the fold of the events log on disk, then the API again after
// a restart.
func TestHistoryAndTimeTravel(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	id, other := historyScenario(s)
	live, _ := s.pages("/values/"+id+"/history?include=rejected", "events")
	for _, tt := range []struct{ path, mention string }{
		{"/values?limit=0", "limit"},
		{"/values?limit=1001", "limit"},
		{"/values?after=someone", "after"},
		{"/values/" + id + "/history?include=all", "include"},
		{"/values/" + id + "/history?after_version=-1", "after_version"},
		{"/values/" + id + "?version=0", "version"},
		{"/values/" + id + "?at=yesterday", "at"},
	} {
		r := s.must("GET", tt.path, "")
		if detail, _ := r.Body["detail"].(string); r.Status != http.StatusBadRequest || r.Body["type"] != "urn:calculator:problem:invalid-query" || !strings.Contains(detail, tt.mention) {
			t.Errorf("GET %s = %d %s, want 400 invalid-query about %s", tt.path, r.Status, r.Raw, tt.mention)
		}
	}
	if r := s.must("GET", "/values/"+uuid.NewString()+"/history", ""); r.Status != http.StatusNotFound {
		t.Errorf("history of an unknown value = %d %s, want 404", r.Status, r.Raw)
	}
	if _, err := s.stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, s.logText())
	}

	var events []loggedEvent
	for _, rec := range readLog(t, dir, "events") {
		events = append(events, loggedEvent{rec.Partition, rec.Offset, rec.Value})
	}
	want, _ := fold(t, events, id)
	sameHistory(t, "the history while the process ran", normalized(t, live), want)

	s = start(t, dir) // the index is rebuilt by the replay
	checkHistories(t, s, events, id, other)
}

// TestKafkaHistoryAndTimeTravel on Kafka with three partitions (positions
// name their partition; transaction markers leave gaps in the offsets):
// the API against the fold of the topic read by a plain consumer, then
// again after a restart with an empty data directory.
func TestKafkaHistoryAndTimeTravel(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	_, eventsTopic, args := kafkaTopics(brokers)
	args = append(args, "-partitions", "3")
	s := start(t, t.TempDir(), args...)
	id, other := historyScenario(s)
	var events []loggedEvent
	for _, m := range kafkatest.ReadAll(t, brokers, eventsTopic) {
		events = append(events, loggedEvent{m.TopicPartition.Partition, int64(m.TopicPartition.Offset), m.Value})
	}
	checkHistories(t, s, events, id, other)
	s.stop()

	s = start(t, t.TempDir(), args...)
	checkHistories(t, s, events, id, other)
}
