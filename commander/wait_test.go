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
)

// orderLog stores nothing and answers at once; it notes whether the
// command's outcome was already awaited when it was appended.
type orderLog struct {
	outcomes        *fixedOutcomes
	awaitedAtAppend bool
}

func (l *orderLog) Append(context.Context, string, ...eventlog.Message) error {
	l.awaitedAtAppend = l.outcomes.awaited > 0
	return nil
}

// fixedOutcomes answers every wait with the same outcome, or never when
// event is nil.
type fixedOutcomes struct {
	event   *domain.Event
	value   domain.Value
	awaited int
	stopped int
}

func (o *fixedOutcomes) Await(commandID uuid.UUID) (func(context.Context) (domain.Event, domain.Value, error), func()) {
	o.awaited++
	return func(ctx context.Context) (domain.Event, domain.Value, error) {
		if o.event == nil {
			<-ctx.Done()
			return domain.Event{}, domain.Value{}, ctx.Err()
		}
		e := *o.event
		e.ParentID = commandID
		return e, o.value, nil
	}, func() { o.stopped++ }
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

func send(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestWaitAnswers(t *testing.T) {
	valueID := uuid.NewString()
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		event      *domain.Event
		value      domain.Value
		wantStatus int
		wantBody   map[string]any
	}{
		{"created", "POST", "/values?wait=1s", `{"value":3}`, &domain.Event{Action: domain.ValueCreated},
			domain.Value{Value: 3, Version: 1}, 201, map[string]any{"status": "succeeded", "value": 3.0}},
		{"updated", "PUT", "/values/" + valueID + "?wait=1s", `{"operation":"add","value":3}`,
			&domain.Event{Action: domain.ValueUpdated}, domain.Value{Value: 9, Version: 2}, 200,
			map[string]any{"status": "succeeded", "value": 9.0, "value_id": valueID}},
		{"value exists", "POST", "/values?wait=1s", `{"value":3}`,
			&domain.Event{Action: domain.CommandRejected, Reason: domain.ValueExists, Message: "exists"}, domain.Value{}, 409,
			map[string]any{"status": "rejected", "reason": "value_exists", "message": "exists"}},
		{"other rejection", "PUT", "/values/" + valueID + "?wait=1s", `{"operation":"divide","value":0}`,
			&domain.Event{Action: domain.CommandRejected, Reason: domain.DivisionByZero}, domain.Value{}, 422,
			map[string]any{"status": "rejected", "reason": "division_by_zero"}},
		{"time runs out", "POST", "/values?wait=20ms", `{"value":3}`, nil, domain.Value{}, 202,
			map[string]any{"status": "accepted"}},
		{"no wait", "POST", "/values", `{"value":3}`, &domain.Event{Action: domain.ValueCreated}, domain.Value{}, 202,
			map[string]any{"status": "accepted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &fixedOutcomes{event: tt.event, value: tt.value}
			s, log := serveWithOutcomes(t, o)
			status, body := send(t, tt.method, s.URL+tt.path, tt.body)
			if status != tt.wantStatus {
				t.Errorf("status %d, want %d (%v)", status, tt.wantStatus, body)
			}
			for k, want := range tt.wantBody {
				if body[k] != want {
					t.Errorf("%s = %v, want %v (body %v)", k, body[k], want, body)
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
	s, _ := serveWithOutcomes(t, &fixedOutcomes{event: &domain.Event{Action: domain.ValueCreated}})
	for _, wait := range []string{"x", "-1s", "30.5s", "31", "1e9", "Inf"} {
		if status, _ := send(t, "POST", s.URL+"/values?wait="+wait, `{"value":1}`); status != http.StatusBadRequest {
			t.Errorf("wait=%s: %d, want 400", wait, status)
		}
	}
	for _, wait := range []string{"0", "30s", "1.5", "250ms"} {
		if status, _ := send(t, "POST", s.URL+"/values?wait="+wait, `{"value":1}`); status == http.StatusBadRequest {
			t.Errorf("wait=%s: 400, want it accepted", wait)
		}
	}
}
