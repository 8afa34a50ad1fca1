package dashboard_test

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"calculator/dashboard"
	"calculator/httpapi"
	"calculator/openapi"
	"calculator/openapi/openapitest"
)

// server runs the dashboard's routes and one protected API route, as the
// app wires them, behind a client that holds the traffic to the OpenAPI
// document.
func server(t *testing.T, token string) (*httptest.Server, *http.Client) {
	t.Helper()
	r := chi.NewRouter()
	r.Use(func(next http.Handler) http.Handler { // the app gives every answer an X-Request-ID
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Request-ID", "cv1ll5ibbj6s73a8fo5g")
			next.ServeHTTP(w, r)
		})
	})
	r.NotFound(httpapi.NotFound)
	dashboard.Routes(r, token)
	r.Group(func(r chi.Router) {
		if token != "" {
			r.Use(dashboard.RequireToken(token))
		}
		r.Get("/values/{id}", func(w http.ResponseWriter, r *http.Request) {
			httpapi.WriteJSON(w, http.StatusOK, map[string]any{"value_id": chi.URLParam(r, "id"), "value": 1, "version": 1})
		})
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	contract, err := openapitest.Load(openapi.Document)
	if err != nil {
		t.Fatal(err)
	}
	return srv, &http.Client{Transport: contract.Transport(nil, func(err error) { t.Error(err) })}
}

func send(t *testing.T, c *http.Client, method, url, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// The page is one document whose inline script and style are exactly what
// its Content-Security-Policy allows: nothing else may run or load.
func TestPage(t *testing.T) {
	srv, c := server(t, "")
	resp, page := send(t, c, "GET", srv.URL+"/", "", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, tag := range []string{"script", "style"} {
		m := regexp.MustCompile(`(?s)<`+tag+`>(.*?)</`+tag+`>`).FindAllStringSubmatch(page, -1)
		if len(m) != 1 || len(m[0][1]) < 100 {
			t.Fatalf("want one inline <%s> with content, found %d", tag, len(m))
		}
		sum := sha256.Sum256([]byte(m[0][1]))
		if hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, tag+"-src "+hash) {
			t.Errorf("Content-Security-Policy %q does not allow the inline %s (%s)", csp, tag, hash)
		}
	}
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("Content-Security-Policy %q: want nothing by default and connections to this origin only", csp)
	}
	for _, remote := range []string{"http://", "https://", "//cdn"} {
		if strings.Contains(strings.ReplaceAll(page, "http://www.w3.org", ""), remote) {
			t.Errorf("the page refers to %q: it must work offline", remote)
		}
	}
	if !regexp.MustCompile(`<section class="card" id="history" hidden>`).MatchString(page) {
		t.Errorf("the history section must be hidden until a value is selected")
	}
}

func TestRequireToken(t *testing.T) {
	const token = `s3 cr;t "ü"` // bytes a cookie value cannot hold as they are
	srv, c := server(t, token)
	value := srv.URL + "/values/830d559a-8053-4ba6-8280-d74df65981db"

	resp, _ := send(t, c, "POST", srv.URL+"/session", `{"token":"wrong"}`, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("login with a wrong token = %d, want 401", resp.StatusCode)
	}
	if len(resp.Cookies()) != 0 {
		t.Fatalf("a failed login set %v", resp.Cookies())
	}
	body := `{"token":"s3 cr;t \"ü\""}` // the token, in JSON
	resp, _ = send(t, c, "POST", srv.URL+"/session", body, nil)
	if resp.StatusCode != http.StatusNoContent || len(resp.Cookies()) != 1 {
		t.Fatalf("login = %d with cookies %v, want 204 and one cookie", resp.StatusCode, resp.Cookies())
	}
	cookie := resp.Cookies()[0]
	if cookie.Name != dashboard.CookieName || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" {
		t.Errorf("cookie %s: want %s, HttpOnly, SameSite=Strict, Path=/", cookie, dashboard.CookieName)
	}
	withCookie := map[string]string{"Cookie": cookie.Name + "=" + cookie.Value}

	tests := []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"nothing", nil, 401},
		{"the bearer header", map[string]string{"Authorization": "Bearer " + token}, 200},
		{"a wrong bearer header", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"the cookie", withCookie, 200},
		{"a cookie that is not base64", map[string]string{"Cookie": dashboard.CookieName + "=%%%"}, 401},
		{"a cookie with another token", map[string]string{"Cookie": dashboard.CookieName + "=" + base64.RawURLEncoding.EncodeToString([]byte("nope"))}, 401},
		{"a wrong header beside the right cookie", map[string]string{"Authorization": "Bearer nope", "Cookie": withCookie["Cookie"]}, 401},
	}
	for _, tt := range tests {
		for _, url := range []string{value, srv.URL + "/session"} {
			if resp, b := send(t, c, "GET", url, "", tt.header); resp.StatusCode != tt.want {
				t.Errorf("%s: GET %s = %d %s, want %d", tt.name, url, resp.StatusCode, b, tt.want)
			}
		}
	}
	if _, b := send(t, c, "GET", srv.URL+"/session", "", withCookie); b != "{\"auth_required\":true}\n" {
		t.Errorf("GET /session = %s", b)
	}

	resp, _ = send(t, c, "DELETE", srv.URL+"/session", "", withCookie)
	if cs := resp.Cookies(); resp.StatusCode != 204 || len(cs) != 1 || cs[0].MaxAge >= 0 || cs[0].Value != "" {
		t.Errorf("logout = %d %v, want 204 and a cookie that expires now", resp.StatusCode, cs)
	}
}

func TestLoginWithoutAToken(t *testing.T) {
	srv, c := server(t, "")
	resp, _ := send(t, c, "POST", srv.URL+"/session", `{"token":"anything"}`, nil)
	if resp.StatusCode != http.StatusNoContent || len(resp.Cookies()) != 0 {
		t.Errorf("login without a server token = %d %v, want 204 and no cookie", resp.StatusCode, resp.Cookies())
	}
	if resp, b := send(t, c, "GET", srv.URL+"/session", "", nil); resp.StatusCode != 200 || b != "{\"auth_required\":false}\n" {
		t.Errorf("GET /session = %d %s", resp.StatusCode, b)
	}
	if resp, _ := send(t, c, "POST", srv.URL+"/session", `{}`, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("login without a token field = %d, want 400", resp.StatusCode)
	}
}
