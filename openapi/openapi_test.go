package openapi_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"calculator/openapi"
)

func TestServe(t *testing.T) {
	rec := httptest.NewRecorder()
	openapi.Serve(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" || !bytes.Equal(rec.Body.Bytes(), openapi.Document) {
		t.Fatalf("GET /openapi.json = %d %s, %d bytes: want the document as JSON", rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
	}
}

// TestDocumentConventions checks what a valid document may still get wrong
// when a route is added: each operation is named and tagged, a protected one
// says it may answer 401, one with a path id says it may answer 400, every
// error but a ?wait rejection is a problem document, and a stream names its
// messages.
func TestDocumentConventions(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.Document)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("not a valid OpenAPI document: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			if op.OperationID == "" || len(op.Tags) != 1 || op.Summary == "" {
				t.Errorf("%s: want an operationId, one tag and a summary", where)
			}
			protected := op.Security == nil // inherits the document's
			if protected && op.Responses.Status(http.StatusUnauthorized) == nil {
				t.Errorf("%s is protected but does not document 401", where)
			}
			if strings.Contains(path, "{") && op.Responses.Status(http.StatusBadRequest) == nil {
				t.Errorf("%s has a path id but does not document 400", where)
			}
			for code, resp := range op.Responses.Map() {
				content := resp.Value.Content
				switch {
				case (code[0] == '4' || code[0] == '5') && code != "409" && code != "412" && code != "422": // 409, 412, 422 may carry a rejection
					if content.Get("application/problem+json") == nil || len(content) != 1 {
						t.Errorf("%s %s: want application/problem+json only", where, code)
					}
				case content.Get("text/event-stream") != nil:
					if _, ok := content.Get("text/event-stream").Extensions["x-sse-events"]; !ok {
						t.Errorf("%s %s: a stream without x-sse-events", where, code)
					}
				}
			}
		}
	}
}
