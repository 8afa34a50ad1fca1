package domain

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
)

// testdata/float-era holds the logs of the calculator before decimals
// (main at f27fced, whose values were float64s), written by its binary
// through the HTTP API, one record a line: the cases as the float
// code computed them (0.1 ADD 0.2 = 0.30000000000000004, 2 ADD 0.1 ADD
// 0.2 = 2.3000000000000003, 9007199254740993 stored as 9007199254740992,
// 5e-324 DIVIDE 2 = 0, -0 MULTIPLY 1 = -0, 1 DIVIDE 3, 1e+21 and an
// overflow, 1.7976931348623157e+308, 123.456 MULTIPLY 1.1, a division by
// zero), and values.jsonl, its GET /values/{id} answers once they were
// applied. testdata/float-era/README.md says how they were made.

// TestFloatEraLogReplays: a log written with binary floats replays to the
// values the float code computed, digit for digit (the shortest form of a
// float64 is a decimal a Decimal holds exactly); -0 replays as 0.
func TestFloatEraLogReplays(t *testing.T) {
	s := NewState()
	for _, rec := range lines(t, "events.jsonl") {
		e, err := DecodeEvent(rec)
		if err != nil {
			t.Fatalf("DecodeEvent(%s) = %v", rec, err)
		}
		if _, _, err := s.Apply(e); err != nil {
			t.Fatalf("Apply(%s) = %v", rec, err)
		}
	}
	values := lines(t, "values.jsonl")
	if len(values) != s.Len() {
		t.Errorf("%d values replayed; the float code had %d", s.Len(), len(values))
	}
	for _, line := range values {
		var want struct {
			ValueID uuid.UUID   `json:"value_id"`
			Value   json.Number `json:"value"`
			Version int64       `json:"version"`
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&want); err != nil {
			t.Fatal(err)
		}
		text := want.Value.String()
		if text == "-0" {
			text = "0"
		}
		got, ok := s.Get(want.ValueID)
		if !ok || got.Value.String() != text || got.Version != want.Version {
			t.Errorf("value %s replayed as %v (version %d); the float code computed %s (version %d)",
				want.ValueID, got.Value, got.Version, want.Value, want.Version)
		}
	}
}

// TestFloatEraRecordsKeepTheirForm: every record of the float era decodes,
// and writes back byte for byte as it was (but for -0, written 0).
func TestFloatEraRecordsKeepTheirForm(t *testing.T) {
	noNegativeZero := func(b []byte) []byte {
		b = bytes.ReplaceAll(b, []byte(`:-0,`), []byte(`:0,`))
		return bytes.ReplaceAll(b, []byte(`:-0}`), []byte(`:0}`))
	}
	checkWritesBack(t, commandCodec, "commands.jsonl", noNegativeZero)
	checkWritesBack(t, eventCodec, "events.jsonl", noNegativeZero)
}

// checkWritesBack checks that every record of the float-era file decodes
// and writes back as want(record).
func checkWritesBack[R wireRecord](t *testing.T, c codec[R], file string, want func([]byte) []byte) {
	t.Helper()
	for _, rec := range lines(t, file) {
		r, err := c.decode(rec)
		if err != nil {
			t.Fatalf("%s(%s) = %v", c.name, rec, err)
		}
		if got := r.AppendJSON(nil); !bytes.Equal(got, want(rec)) {
			t.Errorf("the record\n%s\nwrites back as\n%s", rec, got)
		}
	}
}

// lines returns the lines of a file of testdata/float-era.
func lines(t *testing.T, name string) [][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "float-era", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, bytes.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s is empty", name)
	}
	return out
}
