package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFloatEraLogReplays starts the binary on a data directory written by
// the calculator before decimals (testdata/float-era: the run described in
// domain/testdata/float-era/README.md, its log files as they were) and
// checks that every value reads back as the float code computed it, digit
// for digit (-0 as 0), and that new commands carry on from those digits.
func TestFloatEraLogReplays(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"commands.log", "events.log"} {
		b, err := os.ReadFile(filepath.Join("testdata", "float-era", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(filepath.Join("testdata", "float-era", "values.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := start(t, dir)
	byValue := map[string]string{} // the float code's value, by its text
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var want struct {
			ValueID string      `json:"value_id"`
			Value   json.Number `json:"value"`
			Version int64       `json:"version"`
		}
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		if err := dec.Decode(&want); err != nil {
			t.Fatal(err)
		}
		byValue[want.Value.String()] = want.ValueID
		text := want.Value.String()
		if text == "-0" {
			text = "0"
		}
		r := s.must("GET", "/values/"+want.ValueID, "")
		if r.Status != http.StatusOK || !strings.Contains(r.Raw, `"value":`+text+`,`) || r.Body["version"] != float64(want.Version) {
			t.Errorf("GET /values/%s = %d %s; the float code said %s", want.ValueID, r.Status, r.Raw, sc.Bytes())
		}
	}
	for _, next := range []struct{ value, body, want string }{
		{"0.30000000000000004", `{"operation": "ADD", "value": 0.1}`, `"value":0.40000000000000004,"version":3}`},
		{"9007199254740992", `{"operation": "ADD", "value": 1}`, `"value":9007199254740993,"version":2}`},
		{"2.3000000000000003", `{"operation": "SUBTRACT", "value": 0.0000000000000003}`, `"value":2.3,"version":4}`},
	} {
		id := byValue[next.value]
		if r := s.must("PUT", "/values/"+id+"?wait=5s", next.body); r.Status != http.StatusOK || !strings.HasSuffix(strings.TrimSpace(r.Raw), next.want) {
			t.Errorf("%s %s = %d %s; want %s", next.value, next.body, r.Status, r.Raw, next.want)
		}
	}
}
