package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"calculator/httpapi"
)

func TestParseIDTakesOnlyTheCanonicalForm(t *testing.T) {
	const canonical = "123e4567-e89b-12d3-a456-426614174000"
	for _, tt := range []struct {
		s     string
		valid bool
	}{
		{canonical, true},
		{strings.ToUpper(canonical), true},
		{"{" + canonical + "}", false},
		{"urn:uuid:" + canonical, false},
		{strings.ReplaceAll(canonical, "-", ""), false},
		{canonical[:35], false},
		{"not-a-uuid", false},
		{"", false},
	} {
		w := httptest.NewRecorder()
		id, ok := httpapi.ParseID(w, tt.s, "value id")
		if ok != tt.valid {
			t.Errorf("ParseID(%q) = %v, want %v", tt.s, ok, tt.valid)
		}
		if ok && id.String() != canonical {
			t.Errorf("ParseID(%q) = %s, want %s", tt.s, id, canonical)
		}
		if !ok && (w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "canonical form")) {
			t.Errorf("ParseID(%q) answered %d %s, want 400 naming the canonical form", tt.s, w.Code, w.Body)
		}
	}
}

func TestLimitHeaders(t *testing.T) {
	h := httpapi.LimitHeaders(1024)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	for _, tt := range []struct {
		name   string
		cookie int
		want   int
	}{
		{"small", 10, http.StatusNoContent},
		{"over the limit", 1024, http.StatusRequestHeaderFieldsTooLarge},
	} {
		r := httptest.NewRequest("GET", "/values", nil)
		r.Header.Set("Cookie", strings.Repeat("c", tt.cookie))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, w.Code, tt.want)
		}
		if tt.want == http.StatusRequestHeaderFieldsTooLarge && w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: Content-Type %q, want a problem", tt.name, w.Header().Get("Content-Type"))
		}
	}
}
