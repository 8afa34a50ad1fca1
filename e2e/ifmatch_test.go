package e2e

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
)

// Expected versions (SPEC §3): a PUT with If-Match carries the version the
// value must have, and the processor rejects it with version_conflict when
// the value is at another. On both backends, checked against the logs as a
// reader that is not the product sees them.

func TestIfMatch(t *testing.T)      { testIfMatch(t, embeddedBackend(t)) }
func TestKafkaIfMatch(t *testing.T) { testIfMatch(t, kafkaBackend(t)) }

// putIfMatch sends PUT ?wait with an If-Match header.
func (s *server) putIfMatch(valueID, body, ifMatch string) response {
	s.t.Helper()
	r, err := s.doHeader("PUT", "/values/"+valueID+"?wait=10s", body,
		http.Header{"Content-Type": {"application/json"}, "If-Match": {ifMatch}})
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// testIfMatch races two clients with the same If-Match: exactly one update
// succeeds, the other is answered 412 version_conflict, and the events log
// holds one ValueUpdated and one CommandRejected for them. A malformed
// If-Match is a 400 and appends nothing.
func testIfMatch(t *testing.T, b backend) {
	s := b.start(t)
	r := s.must("POST", "/values?wait=10s", `{"value": 10}`)
	if r.Status != http.StatusCreated {
		t.Fatalf("POST ?wait = %d %s", r.Status, r.Raw)
	}
	id := r.Body["value_id"].(string)
	r = s.must("GET", "/values/"+id, "")
	etag := r.Header.Get("ETag")
	if r.Status != http.StatusOK || etag != `"1"` {
		t.Fatalf("GET /values/%s = %d, ETag %q; want 200 with ETag \"1\"", id, r.Status, etag)
	}

	for _, bad := range []string{`*`, `W/"1"`, `"1", "2"`, `1`, `"0"`, `"01"`, `"one"`} {
		r := s.putIfMatch(id, `{"operation":"ADD","value":1}`, bad)
		if r.Status != http.StatusBadRequest || r.Body["type"] != "urn:calculator:problem:invalid-header" {
			t.Errorf("If-Match %s: %d %s, want a 400 invalid-header problem", bad, r.Status, r.Raw)
		}
	}

	// Two clients read version 1 and race to change it.
	bodies := []string{`{"operation":"ADD","value":5}`, `{"operation":"MULTIPLY","value":3}`}
	answers := make([]response, len(bodies))
	var wg sync.WaitGroup
	for i, body := range bodies {
		wg.Go(func() { answers[i] = s.putIfMatch(id, body, etag) })
	}
	wg.Wait()
	var winner, loser string
	for _, a := range answers {
		switch {
		case a.Status == http.StatusOK && a.Body["status"] == "succeeded" && a.Body["version"] == 2.0:
			if winner != "" {
				t.Fatalf("both updates with If-Match %s succeeded: %+v", etag, answers)
			}
			winner = a.Body["command_id"].(string)
		case a.Status == http.StatusPreconditionFailed && a.Body["status"] == "rejected" && a.Body["reason"] == "version_conflict":
			loser = a.Body["command_id"].(string)
		default:
			t.Fatalf("PUT with If-Match %s = %d %s, want 200 version 2 or 412 version_conflict", etag, a.Status, a.Raw)
		}
	}
	if winner == "" || loser == "" {
		t.Fatalf("want one winner and one loser: %+v", answers)
	}
	if r := s.must("GET", "/commands/"+loser, ""); r.Status != http.StatusOK || r.Body["reason"] != "version_conflict" {
		t.Errorf("GET /commands/%s = %d %s, want rejected version_conflict", loser, r.Status, r.Raw)
	}

	// The loser reads the value again and retries with its new version.
	r = s.must("GET", "/values/"+id, "")
	if r.Header.Get("ETag") != `"2"` {
		t.Fatalf("ETag after the race = %q, want \"2\"", r.Header.Get("ETag"))
	}
	if r := s.putIfMatch(id, `{"operation":"SUBTRACT","value":1}`, `"2"`); r.Status != http.StatusOK || r.Body["version"] != 3.0 {
		t.Fatalf("PUT with If-Match \"2\" = %d %s, want 200 version 3", r.Status, r.Raw)
	}
	if _, err := s.stop(); err != nil {
		t.Fatalf("calculator exited with %v", err)
	}

	// The logs, read by a client that is not the product.
	var updated, rejected []wireEvent
	for _, rec := range b.read(t, b.eventsTopic) {
		var e wireEvent
		if err := json.Unmarshal(rec.value, &e); err != nil {
			t.Fatalf("event %q: %v", rec.value, err)
		}
		if e.Data.ValueID != id {
			continue
		}
		switch e.Action {
		case "ValueUpdated":
			updated = append(updated, e)
		case "CommandRejected":
			rejected = append(rejected, e)
		}
	}
	if len(updated) != 2 || updated[0].ParentID != winner {
		t.Errorf("ValueUpdated events %+v, want the race's winner %s then the retry", updated, winner)
	}
	if len(rejected) != 1 || rejected[0].ParentID != loser || rejected[0].Data.Reason != "version_conflict" {
		t.Errorf("CommandRejected events %+v, want one version_conflict for %s", rejected, loser)
	}
	expected := map[string]float64{}
	commands := 0
	for _, rec := range b.read(t, b.commandsTopic) {
		var c struct {
			ID   string `json:"id"`
			Data struct {
				ValueID         string   `json:"value-id"`
				ExpectedVersion *float64 `json:"expected-version"`
			} `json:"data"`
		}
		if err := json.Unmarshal(rec.value, &c); err != nil {
			t.Fatalf("command %q: %v", rec.value, err)
		}
		if c.Data.ValueID != id {
			continue
		}
		commands++
		if c.Data.ExpectedVersion != nil {
			expected[c.ID] = *c.Data.ExpectedVersion
		}
	}
	// The create, the two racers and the retry: the malformed ones appended nothing.
	if commands != 4 || len(expected) != 3 || expected[winner] != 1 || expected[loser] != 1 {
		t.Errorf("commands log: %d commands for the value, expected versions %v; want 4, winner and loser expecting 1, the retry 2", commands, expected)
	}
}
