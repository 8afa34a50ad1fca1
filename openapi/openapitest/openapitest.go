// Package openapitest holds HTTP traffic to the OpenAPI document: a
// Transport that validates every request a test sends and every response it
// gets (with kin-openapi's openapi3filter, which validates OpenAPI 3.1
// documents with JSON Schema 2020-12), including each message of a
// Server-Sent Events stream as the test reads it.
//
// What a Transport checks, for each round trip:
//
//   - A request the document has no operation for must be answered 404 (no
//     such path) or 405 (no such method on the path) with a problem document:
//     the router's own answers.
//   - The request is validated (parameters, body). A request the document
//     says is invalid must get a 4xx: a server that accepts what the
//     document forbids has drifted from it. A test that sends such a request
//     on purpose marks it with Departing.
//   - The response's status must be documented for the operation, and its
//     headers, content type and body must match what the document says of
//     that status. A body where the document says none is an error too.
//   - A text/event-stream response is checked as it is read: every message's
//     event name must be one the operation's x-sse-events lists, and its
//     data must match that name's schema. (Messages are split at blank
//     lines written "\n\n", as the calculator writes them.)
//
// Violations go to the report function; the traffic itself passes through
// unchanged, so a test that tolerates transport errors (a server killed on
// purpose) still sees every contract violation.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"calculator/internal/ssetest"
)

func init() {
	// The dashboard's page: a string, as far as the document says.
	if openapi3filter.RegisteredBodyDecoder("text/html") == nil {
		openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	}
	for _, mediaType := range []string{"application/json", "application/problem+json"} {
		openapi3filter.RegisterBodyDecoder(mediaType, decodeJSONBody)
	}
}

// decodeJSONBody is kin-openapi's JSON decoder with numbers beyond a
// float64 brought within its range (see withinFloat64).
func decodeJSONBody(body io.Reader, header http.Header, schema *openapi3.SchemaRef, encFn openapi3filter.EncodingFn) (any, error) {
	v, err := openapi3filter.JSONBodyDecoder(body, header, schema, encFn)
	return withinFloat64(v), err
}

// withinFloat64 replaces in v (JSON read with json.Number) each number
// whose magnitude a float64 cannot hold by the largest float64 of its sign.
// The document's numbers are decimals up to 9.99…e+6144 (its Number
// schema), and kin-openapi checks a number as a float64, failing on
// 1e+700; the document sets no bounds on numbers, so only their type is
// checked either way.
func withinFloat64(v any) any {
	switch x := v.(type) {
	case json.Number:
		if f, err := strconv.ParseFloat(string(x), 64); err != nil && math.IsInf(f, 0) {
			return json.Number(strconv.FormatFloat(math.Copysign(math.MaxFloat64, f), 'g', -1, 64))
		}
	case map[string]any:
		for k, e := range x {
			x[k] = withinFloat64(e)
		}
	case []any:
		for i, e := range x {
			x[i] = withinFloat64(e)
		}
	}
	return v
}

// Contract is a loaded OpenAPI document. It is safe for concurrent use.
type Contract struct {
	doc    *openapi3.T
	router routers.Router
	// events maps an operation (method and path template) to the schemas of
	// its stream's messages, by event name.
	events map[string]map[string]*openapi3.SchemaRef
	// options validate requests and responses; schema validates the
	// other values (stream messages).
	options *openapi3filter.Options
	schema  []openapi3.SchemaValidationOption
}

// uuidPattern is the format "uuid": the hyphenated hex form, any version.
const uuidPattern = `^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`

// Load parses and validates an OpenAPI 3.1 document.
func Load(document []byte) (*Contract, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(document)
	if err != nil {
		return nil, fmt.Errorf("load the OpenAPI document: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("the document is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	router, err := legacy.NewRouter(doc) // validates the document
	if err != nil {
		return nil, fmt.Errorf("the OpenAPI document is not valid: %w", err)
	}
	// JSON Schema formats are only annotations unless a validator asserts
	// them; kin-openapi knows date-time, not uuid.
	doc.SetStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(uuidPattern))
	c := &Contract{doc: doc, router: router, events: map[string]map[string]*openapi3.SchemaRef{}}
	c.schema = append(doc.GetSchemaValidationOptions(), openapi3.EnableJSONSchema2020())
	c.options = &openapi3filter.Options{
		IncludeResponseStatus:   true, // an undocumented status is a violation
		SkipSettingDefaults:     true, // never change the request
		MultiError:              true,
		AuthenticationFunc:      openapi3filter.NoopAuthenticationFunc, // the server checks credentials; 401 is documented
		SchemaValidationOptions: doc.GetSchemaValidationOptions(),
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status, resp := range op.Responses.Map() {
				for contentType, media := range resp.Value.Content {
					if contentType != "text/event-stream" {
						continue
					}
					schemas, err := c.sseEvents(media)
					if err != nil {
						return nil, fmt.Errorf("%s %s %s: %w", method, path, status, err)
					}
					c.events[method+" "+path] = schemas
				}
			}
		}
	}
	return c, nil
}

// sseEvents resolves a text/event-stream media type's x-sse-events: an
// object from event name to {"$ref": "#/components/schemas/<name>"}.
func (c *Contract) sseEvents(media *openapi3.MediaType) (map[string]*openapi3.SchemaRef, error) {
	raw, ok := media.Extensions["x-sse-events"].(map[string]any)
	if !ok || len(raw) == 0 {
		return nil, errors.New("a text/event-stream response without x-sse-events")
	}
	out := make(map[string]*openapi3.SchemaRef, len(raw))
	for name, v := range raw {
		ref, _ := v.(map[string]any)["$ref"].(string)
		schema := c.doc.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
		if !strings.HasPrefix(ref, "#/components/schemas/") || schema == nil || schema.Value == nil {
			return nil, fmt.Errorf("x-sse-events %q: %v is not a $ref to a schema of the components", name, v)
		}
		out[name] = schema
	}
	return out, nil
}

// Operations returns every operation of the document as "METHOD /path",
// with each path parameter written "{}" (so that the names need not match a
// router's), sorted.
func (c *Contract) Operations() []string {
	var out []string
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+NormalizePath(path))
		}
	}
	slices.Sort(out)
	return out
}

var pathParam = regexp.MustCompile(`\{[^}]*\}`)

// NormalizePath writes every path parameter of a route pattern as "{}":
// "/values/{id}" and "/values/{value_id:[0-9a-f-]+}" are both
// "/values/{}".
func NormalizePath(pattern string) string { return pathParam.ReplaceAllString(pattern, "{}") }

type departingKey struct{}

// Departing marks a request that departs from the document on purpose (a
// leniency of the server that the document does not promise, such as a JSON
// body sent as application/x-www-form-urlencoded): its response is still
// checked against the document, but the server may accept it.
func Departing(ctx context.Context, why string) context.Context {
	return context.WithValue(ctx, departingKey{}, why)
}

// Transport returns a RoundTripper that sends requests through next (the
// default transport if nil) and reports each violation of the document.
// report may be called from any goroutine that uses the transport, and
// while a stream's body is being read.
func (c *Contract) Transport(next http.RoundTripper, report func(error)) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{c: c, next: next, report: report}
}

type transport struct {
	c      *Contract
	next   http.RoundTripper
	report func(error)
}

// CloseIdleConnections closes the idle connections of the transport it
// wraps, so that http.Client.CloseIdleConnections reaches them.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	where := req.Method + " " + req.URL.RequestURI()
	fail := func(format string, args ...any) {
		t.report(fmt.Errorf("%s: "+format, append([]any{where}, args...)...))
	}
	// Read the body once: both the validator and the server get it.
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}

	route, pathParams, routeErr := t.c.router.FindRoute(req)
	var input *openapi3filter.RequestValidationInput
	var requestErr error
	if routeErr == nil {
		check := req.Clone(req.Context())
		check.Body = io.NopCloser(bytes.NewReader(body))
		input = &openapi3filter.RequestValidationInput{Request: check, PathParams: pathParams, Route: route, Options: t.c.options}
		requestErr = openapi3filter.ValidateRequest(req.Context(), input)
	}

	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}

	if routeErr != nil {
		return t.checkUnrouted(req, resp, routeErr, fail)
	}
	if requestErr != nil && resp.StatusCode < 400 {
		if why, ok := req.Context().Value(departingKey{}).(string); !ok {
			fail("the document says the request is invalid, but the server answered %d: %v", resp.StatusCode, requestErr)
		} else if why == "" {
			fail("Departing needs a reason")
		}
	}
	if requestErr == nil && req.Context().Value(departingKey{}) != nil {
		fail("marked as departing from the document, but the document accepts it")
	}

	responseInput := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: input,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                t.c.options,
	}
	if mediaType(resp.Header) == "text/event-stream" {
		return t.checkStream(req, resp, route, responseInput, fail)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	responseInput.SetBodyBytes(raw)
	if err := openapi3filter.ValidateResponse(req.Context(), responseInput); err != nil {
		fail("response %d does not match the document: %v\nbody: %s", resp.StatusCode, err, raw)
	} else if documented := route.Operation.Responses.Status(resp.StatusCode); documented != nil &&
		len(documented.Value.Content) == 0 && len(raw) > 0 {
		fail("response %d has a body, but the document gives it none: %s", resp.StatusCode, raw)
	}
	return resp, nil
}

// checkUnrouted checks the answer to a request the document has no
// operation for: the router's 404 or 405 problem.
func (t *transport) checkUnrouted(req *http.Request, resp *http.Response, routeErr error, fail func(string, ...any)) (*http.Response, error) {
	want := http.StatusNotFound
	if t.c.pathExists(req) {
		want = http.StatusMethodNotAllowed
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	if resp.StatusCode != want {
		fail("no operation of the document matches (%v), so the answer must be %d, not %d: a route the document lacks?", routeErr, want, resp.StatusCode)
		return resp, nil
	}
	var problem any
	if mediaType(resp.Header) != "application/problem+json" || json.Unmarshal(raw, &problem) != nil {
		fail("the %d for a route the document lacks is not a problem document: %s %s", want, resp.Header.Get("Content-Type"), raw)
		return resp, nil
	}
	if err := t.c.doc.Components.Schemas["Problem"].Value.VisitJSON(problem, t.c.schema...); err != nil {
		fail("the %d problem does not match the Problem schema: %v", want, err)
	}
	return resp, nil
}

// pathExists reports whether the document has an operation on the request's
// path with any method.
func (c *Contract) pathExists(req *http.Request) bool {
	for _, method := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"} {
		other := req.Clone(req.Context())
		other.Method = method
		if _, _, err := c.router.FindRoute(other); err == nil {
			return true
		}
	}
	return false
}

// checkStream checks a stream's status and headers now, and its messages as
// the caller reads them.
func (t *transport) checkStream(req *http.Request, resp *http.Response, route *routers.Route, input *openapi3filter.ResponseValidationInput, fail func(string, ...any)) (*http.Response, error) {
	opts := *t.c.options
	opts.ExcludeResponseBody = true
	input.Options = &opts
	if err := openapi3filter.ValidateResponse(req.Context(), input); err != nil {
		fail("stream response %d does not match the document: %v", resp.StatusCode, err)
	}
	documented := route.Operation.Responses.Status(resp.StatusCode)
	if documented == nil || documented.Value.Content.Get("text/event-stream") == nil {
		fail("response %d is a text/event-stream, which the document does not give it", resp.StatusCode)
		return resp, nil
	}
	resp.Body = &streamChecker{
		body:   resp.Body,
		events: t.c.events[route.Method+" "+route.Path],
		schema: t.c.schema,
		fail:   fail,
	}
	return resp, nil
}

// streamChecker validates the messages of an event stream as they are read.
type streamChecker struct {
	body    io.ReadCloser
	events  map[string]*openapi3.SchemaRef
	schema  []openapi3.SchemaValidationOption
	fail    func(string, ...any)
	pending []byte // the start of a message not complete yet
}

func (s *streamChecker) Read(p []byte) (int, error) {
	n, err := s.body.Read(p)
	s.pending = append(s.pending, p[:n]...)
	if end := bytes.LastIndex(s.pending, []byte("\n\n")); end >= 0 {
		s.check(s.pending[:end+2])
		s.pending = append(s.pending[:0], s.pending[end+2:]...)
	}
	return n, err
}

func (s *streamChecker) Close() error { return s.body.Close() }

// check validates complete messages.
func (s *streamChecker) check(messages []byte) {
	r := ssetest.NewReader(bytes.NewReader(messages))
	for {
		ev, err := r.Next()
		if err != nil {
			return // io.EOF: every complete message is checked
		}
		schema, ok := s.events[ev.Type]
		if !ok {
			s.fail("stream message %q is not one of the document's x-sse-events %v", ev.Type, slices.Sorted(maps.Keys(s.events)))
			continue
		}
		var data any
		dec := json.NewDecoder(strings.NewReader(ev.Data))
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil {
			s.fail("stream message %q: data is not JSON: %v: %s", ev.Type, err, ev.Data)
			continue
		}
		if err := schema.Value.VisitJSON(withinFloat64(data), s.schema...); err != nil {
			s.fail("stream message %q does not match its schema: %v\ndata: %s", ev.Type, err, ev.Data)
		}
	}
}

func mediaType(h http.Header) string {
	t, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return t
}
