package e2e

import (
	"bytes"
	bin "encoding/binary"
	"encoding/json"
	"hash/crc32"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"calculator/internal/kafkatest"
	"calculator/internal/ssetest"
)

// The numbers of issue 14 through the real binary: every answer of the API
// and every record in the logs carries exactly the digits written, as read
// by clients that are not the product (encoding/json with UseNumber over the
// raw bytes, never the product's codec).

// TestValuesKeepTheirDigits drives the numbers through the embedded log
// and reads the log files back with readFrames.
func TestValuesKeepTheirDigits(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	want := driveExactNumbers(t, s)
	s.waitCaughtUp()
	if _, err := s.stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, s.logText())
	}
	checkDigitsInRecords(t, want,
		readFrames(t, filepath.Join(dir, "commands.log")), readFrames(t, filepath.Join(dir, "events.log")))
}

// TestKafkaValuesKeepTheirDigits is TestValuesKeepTheirDigits on Kafka,
// reading the topics back with a plain consumer.
func TestKafkaValuesKeepTheirDigits(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	commandsTopic, eventsTopic, args := kafkaTopics(brokers)
	s := start(t, t.TempDir(), args...)
	want := driveExactNumbers(t, s)
	checkDigitsInRecords(t, want, valuesOfMessages(kafkatest.ReadAll(t, brokers, commandsTopic)), valuesOfMessages(kafkatest.ReadAll(t, brokers, eventsTopic)))
}

// recordNumber is a number some record must hold: the field (value or
// result) of a record with that action, written exactly so.
type recordNumber struct{ action, field, text string }

// driveExactNumbers sends the cases and checks the answers (with
// ?wait, GET, and the three streams), as raw text: a float64 on the way
// would change 2.3 into 2.3000000000000003 and 9007199254740993 into
// 9007199254740992. It returns the numbers the logs must hold.
func driveExactNumbers(t *testing.T, s *server) []recordNumber {
	t.Helper()
	wait := func(method, path, body string, status int, raw string) map[string]any {
		t.Helper()
		r, _ := s.do(method, path+"?wait=5s", "application/json", body) // the harness reads numbers as float64s: 1e+700 is an error there
		var answer map[string]any
		dec := json.NewDecoder(strings.NewReader(r.Raw))
		dec.UseNumber()
		if err := dec.Decode(&answer); err != nil || r.Status != status || !strings.Contains(r.Raw, raw) {
			t.Fatalf("%s %s %s = %d %s (%v); want %d with %s", method, path, body, r.Status, r.Raw, err, status, raw)
		}
		return answer
	}

	// 2 ADD 0.1 ADD 0.2 is 2.3, in every answer.
	id := wait("POST", "/values", `{"value": 2}`, http.StatusCreated, `"value":2,`)["value_id"].(string)
	values, _ := s.stream("/subscriptions/values/"+id, nil)
	events, _ := s.stream("/subscriptions/events?from=0", nil)
	wait("PUT", "/values/"+id, `{"operation": "ADD", "value": 0.1}`, http.StatusOK, `"value":2.1,`)
	last := wait("PUT", "/values/"+id, `{"operation": "add", "value": 0.2}`, http.StatusOK, `"value":2.3,`)
	if r := s.must("GET", "/values/"+id, ""); r.Status != http.StatusOK || !strings.Contains(r.Raw, `"value":2.3,`) {
		t.Fatalf("GET /values/%s = %d %s; want the value 2.3", id, r.Status, r.Raw)
	}
	commandStream, _ := s.stream("/subscriptions/commands/"+last["command_id"].(string), nil)
	for _, check := range []struct {
		name string
		got  []string // the data of the stream's messages
		want []string // in the same order
	}{
		{"values", datas(next(t, values, 3)), []string{`"value":2,`, `"value":2.1,`, `"value":2.3,`}},
		{"events", datas(next(t, events, 3)), []string{`"value":2}`, `"value":0.1,"result":2.1}`, `"value":0.2,"result":2.3}`}},
		{"command", datas(next(t, commandStream, 3))[2:], []string{`"value":2.3,`}}, // accepted, succeeded, applied
	} {
		for i, data := range check.got {
			if !strings.Contains(data, check.want[i]) {
				t.Errorf("%s stream message %d: %s; want %s", check.name, i, data, check.want[i])
			}
		}
	}

	// 2^53+1 is kept; 5e-324 DIVIDE 2 is not 0; -0 MULTIPLY 1 is 0; 1 DIVIDE
	// 3 is rounded to 34 digits.
	wait("POST", "/values", `{"value": 9007199254740993}`, http.StatusCreated, `"value":9007199254740993,`)
	id = wait("POST", "/values", `{"value": 5e-324}`, http.StatusCreated, `"value":5e-324,`)["value_id"].(string)
	wait("PUT", "/values/"+id, `{"operation": "DIVIDE", "value": 2}`, http.StatusOK, `"value":2.5e-324,`)
	id = wait("POST", "/values", `{"value": -0}`, http.StatusCreated, `"value":0,`)["value_id"].(string)
	wait("PUT", "/values/"+id, `{"operation": "MULTIPLY", "value": 1}`, http.StatusOK, `"value":0,`)
	id = wait("POST", "/values", `{"value": 1}`, http.StatusCreated, `"value":1,`)["value_id"].(string)
	wait("PUT", "/values/"+id, `{"operation": "DIVIDE", "value": 3}`, http.StatusOK, `"value":0.3333333333333333333333333333333333,`)

	// Beyond the limits: a request is refused, a result rejected.
	if r := s.must("POST", "/values", `{"value": 1.2345678901234567890123456789012345}`); r.Status != http.StatusBadRequest ||
		!strings.Contains(r.Raw, "more than 34 significant digits") {
		t.Errorf("POST 35 digits = %d %s; want 400 saying why", r.Status, r.Raw)
	}
	id = wait("POST", "/values", `{"value": 1e-6176}`, http.StatusCreated, `"value":1e-6176,`)["value_id"].(string)
	wait("PUT", "/values/"+id, `{"operation": "DIVIDE", "value": 2}`, http.StatusUnprocessableEntity, `"reason":"underflow"`)
	id = wait("POST", "/values", `{"value": 1e300}`, http.StatusCreated, `"value":1e+300,`)["value_id"].(string)
	wait("PUT", "/values/"+id, `{"operation": "MULTIPLY", "value": 1e400}`, http.StatusOK, `"value":1e+700,`)
	wait("PUT", "/values/"+id, `{"operation": "MULTIPLY", "value": 1e6000}`, http.StatusUnprocessableEntity, `"reason":"overflow"`)

	return []recordNumber{
		{"UpdateValue", "value", "0.1"},
		{"UpdateValue", "value", "0.2"},
		{"ValueUpdated", "result", "2.3"},
		{"CreateValue", "value", "9007199254740993"},
		{"ValueCreated", "value", "9007199254740993"},
		{"ValueUpdated", "result", "2.5e-324"},
		{"CreateValue", "value", "0"},
		{"ValueUpdated", "result", "0.3333333333333333333333333333333333"},
		{"UpdateValue", "value", "1e+400"},
		{"ValueUpdated", "result", "1e+700"},
	}
}

func datas(evs []ssetest.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Data
	}
	return out
}

// checkDigitsInRecords reads the records with encoding/json (numbers as
// their text) and checks that each wanted number is there as written.
func checkDigitsInRecords(t *testing.T, want []recordNumber, commands, events [][]byte) {
	t.Helper()
	found := map[recordNumber]bool{}
	for _, rec := range append(commands, events...) {
		dec := json.NewDecoder(bytes.NewReader(rec))
		dec.UseNumber()
		var r struct {
			Action string         `json:"action"`
			Data   map[string]any `json:"data"`
		}
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("a record that is not JSON: %v: %s", err, rec)
		}
		for _, field := range []string{"value", "result"} {
			if n, ok := r.Data[field].(json.Number); ok {
				found[recordNumber{r.Action, field, n.String()}] = true
			}
		}
	}
	for _, w := range want {
		if !found[w] {
			t.Errorf("no %s record with %s %s in the logs", w.action, w.field, w.text)
		}
	}
	if t.Failed() {
		for _, rec := range append(commands, events...) {
			t.Logf("%s", rec)
		}
	}
}

// readFrames reads a topic file of the embedded log as its format is
// documented (README, "The embedded log"), without the product's code:
// frames of length (uint32 LE), CRC-32C of the body (uint32 LE) and body
// (version 1, uvarint-prefixed key, header count and headers, then the
// value). It returns the values.
func readFrames(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	var values [][]byte
	for len(b) > 0 {
		if len(b) < 8 || len(b) < 8+int(bin.LittleEndian.Uint32(b)) {
			t.Fatalf("%s: a torn frame at the end (%d bytes)", path, len(b))
		}
		body := b[8 : 8+bin.LittleEndian.Uint32(b)]
		if crc32.Checksum(body, castagnoli) != bin.LittleEndian.Uint32(b[4:]) || body[0] != 1 {
			t.Fatalf("%s: a damaged frame or an unknown version", path)
		}
		b = b[8+len(body):]
		rest := body[1:]
		skip := func() {
			n, k := bin.Uvarint(rest)
			if k <= 0 || n > uint64(len(rest)-k) {
				t.Fatalf("%s: a malformed body", path)
			}
			rest = rest[k+int(n):]
		}
		skip() // the key
		headers, k := bin.Uvarint(rest)
		if k <= 0 {
			t.Fatalf("%s: a malformed header count", path)
		}
		rest = rest[k:]
		for range headers {
			skip()
			skip()
		}
		values = append(values, rest)
	}
	return values
}
