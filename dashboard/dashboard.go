// Package dashboard serves the live dashboard: one HTML page at GET /,
// embedded in the binary, whose script and style are inline (no build step,
// nothing fetched from elsewhere: it works offline). The page uses the API
// like any client: the Server-Sent Events streams for the values, the event
// log and each command's status, POST and PUT /values for the form, and
// /readyz for the process's state.
//
// Authentication. A browser's EventSource cannot send an Authorization
// header, so with -auth-token the page asks for the token once and sends it
// to POST /session, which sets it as an HttpOnly, SameSite=Strict cookie.
// RequireToken, the API's authentication middleware, accepts that cookie
// wherever it accepts the header: it hands the cookie's token to
// httpapi.RequireBearer as if it had come in the header, so there is one
// check for both. GET /session answers 401 exactly when the API would;
// DELETE /session clears the cookie.
package dashboard

import (
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"calculator/httpapi"
)

var (
	//go:embed index.html
	indexHTML string
	//go:embed dashboard.js
	script string
	//go:embed dashboard.css
	style string
)

// page is the dashboard with its script and style inline, and
// contentSecurityPolicy allows exactly those two (by hash) and requests to
// this origin.
var page, contentSecurityPolicy = assemble()

func assemble() (string, string) {
	out := strings.Replace(indexHTML, "<style></style>", "<style>"+style+"</style>", 1)
	out = strings.Replace(out, "<script></script>", "<script>"+script+"</script>", 1)
	csp := strings.Join([]string{
		"default-src 'none'",
		"script-src '" + sha256Source(script) + "'",
		"style-src '" + sha256Source(style) + "'",
		"connect-src 'self'",
		"img-src 'self' data:",
		"form-action 'self'",
		"base-uri 'none'",
		"frame-ancestors 'none'",
	}, "; ")
	return out, csp
}

func sha256Source(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// CookieName is the cookie that carries the token for browsers.
const CookieName = "calculator_token"

// maxLoginBytes bounds the body of POST /session.
const maxLoginBytes = 4 << 10

// Routes registers the page and the session endpoints on r. token is the
// server's -auth-token ("" for none). They are open routes: GET /session
// checks the credentials itself, with RequireToken.
func Routes(r chi.Router, token string) {
	r.Get("/", servePage)
	var check http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]bool{"auth_required": token != ""})
	})
	if token != "" {
		check = RequireToken(token)(check)
	}
	r.Method(http.MethodGet, "/session", check)
	r.Post("/session", login(token))
	r.Delete("/session", logout)
}

func servePage(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.Write([]byte(page))
}

// RequireToken is the API's authentication middleware: it answers 401
// unless the request carries "Authorization: Bearer <token>" or, with no
// Authorization header, the cookie that POST /session sets.
func RequireToken(token string) func(http.Handler) http.Handler {
	bearer := httpapi.RequireBearer(token)
	return func(next http.Handler) http.Handler {
		check := bearer(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				if fromCookie, ok := cookieToken(r); ok {
					r = r.Clone(r.Context())
					r.Header.Set("Authorization", "Bearer "+fromCookie)
				}
			}
			check.ServeHTTP(w, r)
		})
	}
}

// The cookie holds the token base64url-encoded: a token may contain bytes
// that a cookie value cannot (spaces, quotes, semicolons, non-ASCII).
func cookieToken(r *http.Request) (string, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return "", false
	}
	token, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return "", false
	}
	return string(token), true
}

func sessionCookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     CookieName,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,                    // out of the page's scripts' reach
		SameSite: http.SameSiteStrictMode, // never sent by another site's requests (CSRF)
		Secure:   r.TLS != nil,
	}
}

type loginRequest struct {
	Token *string `json:"token"`
}

// login serves POST /session: it checks the token and sets the cookie.
func login(token string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req loginRequest
		if !httpapi.DecodeJSON(w, r, &req, maxLoginBytes) {
			return
		}
		if req.Token == nil {
			httpapi.Error(w, httpapi.InvalidBody, `"token" is required`)
			return
		}
		if token == "" {
			w.WriteHeader(http.StatusNoContent) // nothing to check, nothing to remember
			return
		}
		if subtle.ConstantTimeCompare([]byte(*req.Token), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="calculator"`)
			httpapi.Error(w, httpapi.Unauthorized, "wrong token")
			return
		}
		http.SetCookie(w, sessionCookie(r, base64.RawURLEncoding.EncodeToString([]byte(token)), 0))
		w.WriteHeader(http.StatusNoContent)
	}
}

// logout serves DELETE /session: it clears the cookie.
func logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, sessionCookie(r, "", -1))
	w.WriteHeader(http.StatusNoContent)
}
