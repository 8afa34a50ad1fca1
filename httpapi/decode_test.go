package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

type testRequest struct {
	Operation *string  `json:"operation"`
	Value     *float64 `json:"value"`
	Ignored   string   `json:"-"`
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name, body string
		wantStatus int
		detail     string
	}{
		{"valid", `{"operation":"ADD","value":3}`, 0, ""},
		{"valid, spaced, one member", " {\n \"value\" : 3 } \n", 0, ""},
		{"nested values are skipped", `{"value":3,"operation":"a,b}\"{"}`, 0, ""},
		{"an escaped name that is exact", `{"\u0076alue":3}`, 0, ""},
		{"empty", "  ", 400, "empty"},
		{"malformed", `{"value": `, 400, "malformed JSON"},
		{"trailing data", `{"value":1}{"value":2}`, 400, "after the JSON object"},
		{"an array", `[1]`, 400, "must be a JSON object, not array"},
		{"a string value", `{"value":"3"}`, 400, `"value" must be a finite number, not string`},
		{"out of range", `{"value":1e999}`, 400, `"value" must be a finite number`},
		{"another case", `{"Value":3}`, 400, `unknown member "Value": member names are case-sensitive (did you mean "value"?)`},
		{"all capitals", `{"operation":"ADD","VALUE":3}`, 400, `did you mean "value"?`},
		{"an escaped name in another case", `{"\u0056alue":3}`, 400, `unknown member "Value"`},
		{"duplicate", `{"value":1,"value":2}`, 400, `the member "value" appears twice`},
		{"duplicate after others", `{"value":1,"operation":"ADD","value":1}`, 400, "appears twice"},
		{"unknown", `{"value":1,"colour":"red"}`, 400, `unknown member "colour" (the members are "operation" and "value")`},
		{"a field json ignores", `{"value":1,"Ignored":"x"}`, 400, `unknown member "Ignored"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			var req testRequest
			ok := DecodeJSON(w, r, &req, 1<<10)
			if ok != (tt.wantStatus == 0) {
				t.Fatalf("DecodeJSON = %v (%d %s), want status %d", ok, w.Code, w.Body, tt.wantStatus)
			}
			if ok {
				return
			}
			var p map[string]any
			json.Unmarshal(w.Body.Bytes(), &p)
			if w.Code != tt.wantStatus || !strings.Contains(p["detail"].(string), tt.detail) {
				t.Errorf("%d %q, want %d with a detail containing %q", w.Code, p["detail"], tt.wantStatus, tt.detail)
			}
		})
	}
}

func TestDecodeJSONLimits(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"value":1,"pad":"`+strings.Repeat("x", 100)+`"}`))
	if DecodeJSON(w, r, &testRequest{}, 64) || w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over the limit: %d %s, want 413", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	r = httptest.NewRequest("POST", "/", strings.NewReader(`{"value":1}`))
	r.Header.Set("Content-Type", "text/plain")
	if DecodeJSON(w, r, &testRequest{}, 64) || w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain: %d %s, want 415", w.Code, w.Body)
	}
}

// referenceMembers is checkMembers through encoding/json's tokenizer: the
// names of the top-level object, each exactly a field and once.
func referenceMembers(body []byte, fields []string) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return true
	}
	var seen []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return true
		}
		name := tok.(string)
		if !slices.Contains(fields, name) || slices.Contains(seen, name) {
			return false
		}
		seen = append(seen, name)
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return true
		}
	}
	return true
}

func FuzzCheckMembers(f *testing.F) {
	for _, seed := range []string{
		`{"operation":"ADD","value":3}`, `{"value":1,"value":2}`, `{"Value":1}`, `{"\u0076alue":3}`,
		`{"value":[1,{"a":"}"}],"operation":"x\"y"}`, `{}`, `[]`, `"value"`, `{"value":{"value":1}}`,
	} {
		f.Add([]byte(seed))
	}
	fields := []string{"operation", "value"}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return // checkMembers only sees what encoding/json has accepted
		}
		if got, want := checkMembers(body, fields) == nil, referenceMembers(body, fields); got != want {
			t.Fatalf("checkMembers(%q) accepts: %v, encoding/json's tokenizer: %v", body, got, want)
		}
	})
}
