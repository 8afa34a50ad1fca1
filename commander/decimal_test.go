package commander_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"calculator/domain"
	"calculator/eventlog"
)

// recordingLog stores the messages appended to it.
type recordingLog struct {
	mu   sync.Mutex
	msgs []eventlog.Message
}

func (l *recordingLog) Append(_ context.Context, _ string, msgs ...eventlog.Message) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, msgs...)
	return nil
}

func (l *recordingLog) last() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.msgs) == 0 {
		return nil
	}
	return l.msgs[len(l.msgs)-1].Value
}

// commands are the messages appended, decoded as commands.
func (l *recordingLog) commands(t *testing.T) []domain.Command {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var commands []domain.Command
	for _, m := range l.msgs {
		c, err := domain.DecodeCommand(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		commands = append(commands, c)
	}
	return commands
}

// The value of a request reaches the commands log with exactly the digits
// the client wrote (no float64 on the way), and a number that cannot be
// held is refused with a 400 that says why, never rounded.
func TestValuesKeepTheirDigits(t *testing.T) {
	log := &recordingLog{}
	s := serve(t, log, time.Second)
	const valueID = "11111111-1111-1111-1111-111111111111"
	tests := []struct {
		method, path, body string
		wantStatus         int
		want               string // in the command record (202) or the problem's detail (400)
	}{
		{"POST", "/values", `{"value": 9007199254740993}`, 202, `"value":9007199254740993}`},
		{"POST", "/values", `{"value": 0.1}`, 202, `"value":0.1}`},
		{"POST", "/values", `{"value": -0}`, 202, `"value":0}`},
		{"POST", "/values", `{"value": 2.50}`, 202, `"value":2.5}`},
		{"POST", "/values", `{"value": 1E-400}`, 202, `"value":1e-400}`},
		{"PUT", "/values/" + valueID, `{"operation": "add", "value": 1234567890.123456789012345678901234}`, 202,
			`"operation":"ADD","value":1234567890.123456789012345678901234}`},
		{"PUT", "/values/" + valueID, `{"operation": "divide", "value": 5e-324}`, 202, `"operation":"DIVIDE","value":5e-324}`},
		{"POST", "/values", `{"value": 1234567890.1234567890123456789012345}`, 400,
			"number 1234567890.1234567890123456789012345 has more than 34 significant digits, the most that are kept exactly"},
		{"PUT", "/values/" + valueID, `{"operation": "ADD", "value": 1e6145}`, 400,
			"number 1e6145 is too large: the largest magnitude kept is 9.999999999999999999999999999999999e+6144"},
		{"POST", "/values", `{"value": 1e-6177}`, 400, "number 1e-6177 has a digit below 1e-6176, the smallest place kept"},
		{"POST", "/values", `{"value": "3"}`, 400, `"value" must be a number, not string`},
		{"POST", "/values", `{"value": null}`, 400, `"value" is required and must be a number`},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, s.URL+tt.path, strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.wantStatus {
			t.Errorf("%s %s %s: status %d, want %d (%s)", tt.method, tt.path, tt.body, resp.StatusCode, tt.wantStatus, body)
			continue
		}
		if tt.wantStatus != 202 {
			var problem struct{ Detail string }
			if err := json.Unmarshal(body, &problem); err != nil || problem.Detail != tt.want {
				t.Errorf("%s %s: detail %q, want %q", tt.method, tt.body, problem.Detail, tt.want)
			}
			continue
		}
		record := log.last()
		if !strings.Contains(string(record), tt.want) {
			t.Errorf("%s %s: the command record is %s, want it to hold %s", tt.method, tt.body, record, tt.want)
		}
		if _, err := domain.DecodeCommand(record); err != nil {
			t.Errorf("the command record %s does not decode: %v", record, err)
		}
	}
}
