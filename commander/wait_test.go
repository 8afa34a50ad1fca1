package commander_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/commander"
	"calculator/domain"
	"calculator/eventlog"
	"calculator/outcome"
)

// orderLog stores nothing and answers at once; it notes whether the
// command's outcome was already awaited when it was appended, and tells the
// outcomes which value the command is for.
type orderLog struct {
	outcomes        *fixedOutcomes
	awaitedAtAppend bool
}

func (l *orderLog) Append(_ context.Context, _ string, msgs ...eventlog.Message) error {
	l.awaitedAtAppend = l.outcomes.awaited > 0
	c, err := domain.DecodeCommand(msgs[0].Value)
	if err != nil {
		return err
	}
	l.outcomes.valueID = c.ValueID
	return nil
}

// fixedOutcomes answers every wait with the same final status, or never
// when status is nil.
type fixedOutcomes struct {
	status  *outcome.CommandStatus
	valueID uuid.UUID // of the command appended
	awaited int
	stopped int
}

func (o *fixedOutcomes) Await(commandID uuid.UUID) (func(context.Context) (outcome.CommandStatus, error), func()) {
	o.awaited++
	return func(ctx context.Context) (outcome.CommandStatus, error) {
		if o.status == nil {
			<-ctx.Done()
			return outcome.CommandStatus{}, ctx.Err()
		}
		st := *o.status
		st.CommandID, st.ValueID = commandID, o.valueID
		eventID := domain.EventID(commandID)
		st.EventID = &eventID
		return st, nil
	}, func() { o.stopped++ }
}

// final is the status of a command whose outcome is applied, with the value
// after it when value is not nil.
func final(status outcome.Status, reason domain.Reason, value *domain.Value) *outcome.CommandStatus {
	st := &outcome.CommandStatus{Status: status, Reason: reason}
	if reason != "" {
		st.Message = "why"
	}
	if value != nil {
		v := value.Value
		st.Value, st.Version = &v, value.Version
	}
	return st
}

func serveWithOutcomes(t *testing.T, o *fixedOutcomes) (*httptest.Server, *orderLog) {
	r := chi.NewRouter()
	log := &orderLog{outcomes: o}
	c := commander.New(log, "commands", time.Second, zerolog.Nop())
	c.SetOutcomes(o)
	c.Routes(r)
	s := httptest.NewServer(r)
	t.Cleanup(s.Close)
	return s, log
}

func send(t *testing.T, method, url, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	return sendRequest(t, req)
}

// sendRequest sends req and decodes the JSON object it gets back.
func sendRequest(t *testing.T, req *http.Request) (int, http.Header, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: the body is not JSON: %v", req.Method, req.URL, err)
	}
	return resp.StatusCode, resp.Header, out
}

func TestWaitAnswers(t *testing.T) {
	valueID := uuid.NewString()
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		status     *outcome.CommandStatus
		wantStatus int
		wantBody   map[string]any // nil: the member must be missing
		wantHeader map[string]string
	}{
		{"created", "POST", "/values?wait=1s", `{"value":3}`,
			final(outcome.Succeeded, "", &domain.Value{Value: domain.DecimalFromInt(3), Version: 1}), 201,
			map[string]any{"status": "succeeded", "value": 3.0, "version": 1.0, "reason": nil},
			map[string]string{"Location": "/values/", "Content-Location": "/commands/"}},
		{"updated", "PUT", "/values/" + valueID + "?wait=1s", `{"operation":"add","value":3}`,
			final(outcome.Succeeded, "", &domain.Value{Value: domain.DecimalFromInt(9), Version: 2}), 200,
			map[string]any{"status": "succeeded", "value": 9.0, "version": 2.0, "value_id": valueID},
			map[string]string{"Location": "", "Content-Location": "/commands/"}},
		{"value exists", "POST", "/values?wait=1s", `{"value":3}`,
			final(outcome.Rejected, domain.ValueExists, nil), 409,
			map[string]any{"status": "rejected", "reason": "value_exists", "message": "why"},
			map[string]string{"Location": "", "Content-Location": "/commands/"}},
		{"other rejection, without the value", "PUT", "/values/" + valueID + "?wait=1s", `{"operation":"divide","value":0}`,
			final(outcome.Rejected, domain.DivisionByZero, &domain.Value{Value: domain.DecimalFromInt(3), Version: 1}), 422,
			map[string]any{"status": "rejected", "reason": "division_by_zero", "value": nil, "version": nil},
			map[string]string{"Content-Location": "/commands/"}},
		{"time runs out", "POST", "/values?wait=20ms", `{"value":3}`, nil, 202,
			map[string]any{"status": "accepted", "event_id": nil},
			map[string]string{"Location": "/commands/", "Content-Location": ""}},
		{"no wait", "POST", "/values", `{"value":3}`, final(outcome.Succeeded, "", &domain.Value{Value: domain.DecimalFromInt(3), Version: 1}), 202,
			map[string]any{"status": "accepted", "event_id": nil, "value": nil},
			map[string]string{"Location": "/commands/", "Content-Location": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &fixedOutcomes{status: tt.status}
			s, log := serveWithOutcomes(t, o)
			status, header, body := send(t, tt.method, s.URL+tt.path, tt.body)
			if status != tt.wantStatus {
				t.Errorf("status %d, want %d (%v)", status, tt.wantStatus, body)
			}
			for k, want := range tt.wantBody {
				if got, ok := body[k]; want == nil && ok {
					t.Errorf("%s = %v, want it missing (body %v)", k, got, body)
				} else if want != nil && got != want {
					t.Errorf("%s = %v, want %v (body %v)", k, got, want, body)
				}
			}
			for k, prefix := range tt.wantHeader {
				if got := header.Get(k); (prefix == "") != (got == "") || !strings.HasPrefix(got, prefix) {
					t.Errorf("%s: %q, want %q", k, got, prefix+"…")
				}
			}
			if strings.Contains(tt.path, "wait") && !log.awaitedAtAppend {
				t.Error("the outcome was awaited after the append: a quick outcome could be missed")
			}
			if o.awaited != o.stopped {
				t.Errorf("Await called %d times, stop %d times", o.awaited, o.stopped)
			}
		})
	}
}

func TestWaitIsValidated(t *testing.T) {
	s, _ := serveWithOutcomes(t, &fixedOutcomes{status: final(outcome.Succeeded, "", &domain.Value{Value: domain.DecimalFromInt(1), Version: 1})})
	for _, wait := range []string{"x", "-1s", "30.5s", "31", "1e9", "Inf"} {
		if status, _, _ := send(t, "POST", s.URL+"/values?wait="+wait, `{"value":1}`); status != http.StatusBadRequest {
			t.Errorf("wait=%s: %d, want 400", wait, status)
		}
	}
	for _, wait := range []string{"0", "30s", "1.5", "250ms"} {
		if status, _, _ := send(t, "POST", s.URL+"/values?wait="+wait, `{"value":1}`); status == http.StatusBadRequest {
			t.Errorf("wait=%s: 400, want it accepted", wait)
		}
	}
}
