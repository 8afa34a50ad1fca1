package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"calculator/internal/browsertest"
)

var screenshot = flag.String("screenshot", "", "write a screenshot of the dashboard to this PNG file (go test ./e2e -run TestDashboard$ -args -screenshot $PWD/docs/dashboard.png)")

// browser is a headless Chromium showing the server's dashboard through a
// proxy that holds every request the page sends, and every answer and
// stream message it gets, to the OpenAPI document.
type browser struct {
	t   *testing.T
	ctx context.Context // a chromedp context: one tab
}

func openDashboard(t *testing.T, s *server) *browser {
	t.Helper()
	path := browsertest.Chromium(t, "the dashboard tests")
	target, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: contract.Transport(nil, func(err error) { t.Errorf("OpenAPI contract violated by the dashboard's traffic: %v", err) }),
	})
	t.Cleanup(proxy.Close)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-gpu", true), chromedp.UserDataDir(t.TempDir()))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelTab(); cancelAlloc() }) // ends the browser and waits for it
	b := &browser{t: t, ctx: ctx}
	// The first action starts the browser; it gets no timeout of its own
	// (chromedp: a timeout there would stop the browser).
	if err := chromedp.Do(ctx, chromedp.Navigate(proxy.URL+"/")); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	return b
}

// do runs actions with the tests' deadline.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, deadline)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\nthe page shows: %s", what, err, b.text())
	}
}

// until waits until a JavaScript expression on the page is true.
func (b *browser) until(what, expression string) {
	b.t.Helper()
	b.do("wait until "+what, chromedp.Poll[chromedp.Void](expression, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(deadline)))
}

// eval returns the value of a JavaScript expression on the page.
func eval[T any](b *browser, expression string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, deadline)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expression))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expression, err)
	}
	return v
}

// text is what the page shows, for failure messages.
func (b *browser) text() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body.innerText"))
	return s
}

// create and update use the page's forms.
func (b *browser) create(value string) {
	b.t.Helper()
	b.do("create "+value,
		chromedp.SetValue(chromedp.CSS("#create-value"), value),
		chromedp.Click(chromedp.CSS("#create")))
}

func (b *browser) update(valueID, op, operand string) {
	b.t.Helper()
	b.do(op+" "+operand,
		chromedp.SetValue(chromedp.CSS("#update-id"), valueID),
		chromedp.SetValue(chromedp.CSS("#update-op"), op),
		chromedp.SetValue(chromedp.CSS("#update-operand"), operand),
		chromedp.Click(chromedp.CSS("#update")))
}

// latestCommand is the status of the command sent last, as the page shows it.
const latestCommand = `document.querySelector('#commands li')`

func (b *browser) waitCommand(status string) string {
	b.t.Helper()
	b.until("the latest command is "+status, latestCommand+`?.dataset.status === '`+status+`'`)
	return eval[string](b, latestCommand+`.dataset.commandId`)
}

// eventRow is the JavaScript of the event-log row at a position.
func eventRow(position int) string {
	return fmt.Sprintf(`document.querySelector('#events tr[data-position="%d"]')`, position)
}

// TestDashboard creates and updates values through the page and watches it
// show each command's progress, the value, the event log with positions, a
// change made by another client, and the process's state.
func TestDashboard(t *testing.T) {
	s := start(t, t.TempDir())
	_, other := s.create(5) // before the page opens: in the tail
	s.waitValue(other, 1)
	b := openDashboard(t, s)

	b.until("the process is ready", `document.querySelector('#state').textContent === 'ready'`)
	b.until("the tail shows the first event", eventRow(0)+`?.dataset.action === 'ValueCreated'`)
	b.until("the values show the first value", `document.querySelector('#values tr[data-value-id="`+other+`"]') !== null`)

	// Create: accepted → succeeded → applied, then the value is selected.
	b.create("7")
	commandID := b.waitCommand("applied")
	steps := eval[string](b, latestCommand+`.querySelector('.steps').textContent`)
	for _, want := range []string{"accepted", "succeeded", "applied: 7 (v1)"} {
		if !bytes.Contains([]byte(steps), []byte(want)) {
			t.Errorf("the command's steps say %q, want %q in them", steps, want)
		}
	}
	b.until("the new value is selected, live", `document.querySelector('#selected-value').textContent === '7' && document.querySelector('#selected-version').textContent === '1'`)
	id := eval[string](b, `document.querySelector('#selected-id').textContent`)
	if r := s.must("GET", "/commands/"+commandID, ""); r.Body["value_id"] != id || r.Body["status"] != "succeeded" {
		t.Fatalf("the page says command %s created %s; the API says %s", commandID, id, r.Raw)
	}
	b.until("the event log shows the creation at position 1", eventRow(1)+`?.dataset.action === 'ValueCreated' && `+eventRow(1)+`.textContent.includes('= 7')`)

	// Update the selected value.
	b.update(id, "MULTIPLY", "6")
	b.waitCommand("applied")
	b.until("the value shows 42 at version 2", `document.querySelector('#selected-value').textContent === '42' && document.querySelector('#selected-version').textContent === '2'`)
	b.until("the event log shows the update at position 2", eventRow(2)+`?.dataset.action === 'ValueUpdated' && `+eventRow(2)+`.textContent.includes('MULTIPLY 6 → 42')`)
	if got := s.waitValue(id, 2); got["value"] != 42.0 {
		t.Fatalf("GET /values/%s = %v, want 42 as the page shows", id, got)
	}

	// A rejection is shown as such.
	b.update(id, "DIVIDE", "0")
	b.waitCommand("rejected-applied")
	b.until("the rejection's reason", latestCommand+`.textContent.includes('division_by_zero')`)
	b.until("the event log shows the rejection at position 3", eventRow(3)+`?.dataset.action === 'CommandRejected'`)

	// Another client's change shows up live.
	s.update(other, "ADD", 1)
	b.until("the other value shows 6", `document.querySelector('#values tr[data-value-id="`+other+`"] td.num')?.textContent === '6'`)

	// The process's state.
	b.until("no command is behind", `document.querySelector('#lag').textContent === '0'`)
	b.until("the page counts the 5 events and their rate", `document.querySelector('#events-read').textContent === '5' && document.querySelector('#throughput').textContent !== '–'`)

	// The selected value's history, and the time-travel slider.
	b.pick(id)
	b.until("the history shows the two versions and the rejection", `document.querySelectorAll('#history-list li').length === 3 && `+
		`document.querySelector('#history-list li.rejected')?.textContent.includes('division_by_zero')`)
	b.until("the slider is at the last version, live", `document.querySelector('#history-at').textContent.startsWith('version 2 of 2 (now): 42')`)
	eval[bool](b, `(() => { const s = document.querySelector('#history-slider'); s.value = '1'; s.dispatchEvent(new Event('input')); return true; })()`)
	b.until("the value as it was at version 1", `document.querySelector('#history-at').textContent.startsWith('version 1 of 2: 7') && `+
		`document.querySelector('#history-list li[data-version="1"]').classList.contains('at') && `+
		`document.querySelector('#history-list li[data-version="2"]').classList.contains('later')`)

	b.pick(id)
	shot := b.screenshot()
	if *screenshot != "" {
		if err := os.WriteFile(*screenshot, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", *screenshot, len(shot))
	}
}

// pick clicks a value's row.
func (b *browser) pick(id string) {
	b.t.Helper()
	b.do("select "+id, chromedp.Click(chromedp.CSS(`#values tr[data-value-id="`+id+`"]`)))
	b.until("the value is selected", `document.querySelector('#selected-id').textContent === '`+id+`'`)
}

func (b *browser) screenshot() []byte {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, deadline)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) || len(png) < 10_000 {
		b.t.Fatalf("the screenshot is %d bytes, not a PNG of the page", len(png))
	}
	return png
}

// TestDashboardLogin runs the server with -auth-token: the page asks for the
// token, refuses a wrong one, and with the right one works as without auth,
// through an HttpOnly cookie its scripts cannot read.
func TestDashboardLogin(t *testing.T) {
	s := start(t, t.TempDir(), "-auth-token", "s3cret")
	b := openDashboard(t, s)

	b.until("the login dialog", `document.querySelector('#login').open`)
	b.do("a wrong token",
		chromedp.SetValue(chromedp.CSS("#login-token"), "nope"),
		chromedp.Click(chromedp.CSS("#login-submit")))
	b.until("the page says the token is wrong", `document.querySelector('#login-error').textContent === 'Wrong token.'`)
	b.do("the right token",
		chromedp.SetValue(chromedp.CSS("#login-token"), "s3cret"),
		chromedp.Click(chromedp.CSS("#login-submit")))
	b.until("the dialog closes and log out is offered", `!document.querySelector('#login').open && !document.querySelector('#logout').hidden`)

	b.create("3")
	b.waitCommand("applied")
	b.until("the new value is shown", `document.querySelector('#selected-value').textContent === '3'`)
	b.until("the event log shows it", eventRow(0)+`?.dataset.action === 'ValueCreated'`)

	if got := eval[string](b, `document.cookie`); got != "" {
		t.Errorf("the page's scripts can read the cookies %q; want the token HttpOnly", got)
	}
	ctx, cancel := context.WithTimeout(b.ctx, deadline)
	defer cancel()
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cookies.Cookies) != 1 || !cookies.Cookies[0].HTTPOnly || cookies.Cookies[0].SameSite != network.CookieSameSiteStrict {
		t.Errorf("cookies %+v, want one, HttpOnly and SameSite=Strict", cookies.Cookies)
	}

	// Logging out reloads the page.
	loadCtx, cancelLoad := context.WithTimeout(b.ctx, deadline)
	defer cancelLoad()
	loaded := chromedp.Events(loadCtx, page.LoadEventFired)
	b.do("log out", chromedp.Click(chromedp.CSS("#logout")))
	for _, err := range loaded {
		if err != nil {
			t.Fatalf("waiting for the page to load again after logging out: %v", err)
		}
		break
	}
	b.until("the login dialog again", `document.querySelector('#login')?.open === true`)
	if r := s.must("GET", "/session", ""); r.Status != http.StatusUnauthorized {
		t.Errorf("GET /session without credentials = %d, want 401", r.Status)
	}
}
