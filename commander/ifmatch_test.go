package commander_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"calculator/domain"
	"calculator/outcome"
)

func putWithIfMatch(t *testing.T, url string, ifMatch ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("PUT", url, strings.NewReader(`{"operation":"ADD","value":1}`))
	for _, h := range ifMatch {
		req.Header.Add("If-Match", h)
	}
	status, _, body := sendRequest(t, req)
	return status, body
}

func TestIfMatchBecomesTheExpectedVersion(t *testing.T) {
	tests := []struct {
		name    string
		ifMatch []string
		want    int64
	}{
		{"none", nil, 0},
		{"a version", []string{`"4"`}, 4},
		{"the first version", []string{`"1"`}, 1},
		{"with spaces around", []string{` "12" `}, 12},
		{"the largest version", []string{`"9223372036854775807"`}, 9223372036854775807},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &recordingLog{}
			s := serve(t, log, time.Second)
			if status, body := putWithIfMatch(t, s.URL+"/values/"+uuid.NewString(), tt.ifMatch...); status != http.StatusAccepted {
				t.Fatalf("PUT = %d %v, want 202", status, body)
			}
			if commands := log.commands(t); len(commands) != 1 || commands[0].ExpectedVersion != tt.want {
				t.Fatalf("appended %+v, want one command expecting version %d", commands, tt.want)
			}
		})
	}
}

func TestMalformedIfMatchIs400(t *testing.T) {
	for _, ifMatch := range [][]string{
		{`*`}, {`W/"4"`}, {`"4", "5"`}, {`"4"`, `"5"`}, {`4`}, {`"4`}, {`""`}, {`"0"`}, {`"-1"`}, {`"+4"`},
		{`"04"`}, {`"4.0"`}, {`"abc"`}, {`"9223372036854775808"`}, {``},
	} {
		log := &recordingLog{}
		s := serve(t, log, time.Second)
		status, body := putWithIfMatch(t, s.URL+"/values/"+uuid.NewString(), ifMatch...)
		if status != http.StatusBadRequest || body["type"] != "urn:calculator:problem:invalid-header" {
			t.Errorf("If-Match %q: %d %v, want a 400 invalid-header problem", ifMatch, status, body)
		}
		if commands := log.commands(t); len(commands) != 0 {
			t.Errorf("If-Match %q: appended %+v", ifMatch, commands)
		}
	}
}

func TestVersionConflictIs412(t *testing.T) {
	o := &fixedOutcomes{status: final(outcome.Rejected, domain.VersionConflict, nil)}
	s, _ := serveWithOutcomes(t, o)
	status, body := putWithIfMatch(t, s.URL+"/values/"+uuid.NewString()+"?wait=1s", `"3"`)
	if status != http.StatusPreconditionFailed || body["status"] != "rejected" || body["reason"] != "version_conflict" {
		t.Fatalf("PUT = %d %v, want 412 rejected version_conflict", status, body)
	}
}
