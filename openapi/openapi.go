// Package openapi holds the OpenAPI 3.1 document of the calculator's HTTP
// API (openapi.json, written by hand and embedded in the binary) and serves
// it at GET /openapi.json.
//
// The document cannot drift from the code, because two kinds of test hold
// them together:
//
//   - app's TestRoutesMatchTheDocument walks the real router (chi.Walk) and
//     fails when a route is missing from the document, or the document names
//     a route the router lacks;
//   - the end-to-end tests send every request through a client that
//     validates the request and the response against the document
//     (kin-openapi's openapi3filter), and the messages of every
//     Server-Sent Events stream against its x-sse-events.
//
// To add a route: register it on the router, then add its path (or its
// method under an existing path) to openapi.json: every parameter, the
// request body's schema, every status it can answer with its schema, and for
// a problem the types it can carry. Reuse components where they fit
// (responses Unauthorized, InvalidID, Replaying; parameters value_id,
// command_id; schemas Problem, Position). Give a protected route no
// "security" of its own (it inherits the document's); an open one
// "security": []. A Server-Sent Events stream is a 200 with text/event-stream
// content and an "x-sse-events" object naming each message type and the
// schema of its data. Then run the app and e2e tests.
package openapi

import (
	_ "embed"
	"net/http"
)

// Document is the OpenAPI 3.1 document, as JSON.
//
//go:embed openapi.json
var Document []byte

// Serve answers GET /openapi.json with the document.
func Serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(Document)
}
