package app

import (
	"net/http"
	"slices"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"calculator/openapi"
	"calculator/openapi/openapitest"
)

// TestRoutesMatchTheDocument walks the real router and compares its routes
// with the operations of the OpenAPI document (openapi/openapi.json), both
// ways: a route added without documenting it, or a documented route that
// is gone, fails here. With and without -auth-token, which changes the
// middleware, not the routes.
func TestRoutesMatchTheDocument(t *testing.T) {
	contract, err := openapitest.Load(openapi.Document)
	if err != nil {
		t.Fatal(err)
	}
	documented := contract.Operations()
	for _, token := range []string{"", "s3cret"} {
		a, err := New(Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), AuthToken: token, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		a.listener.Close()
		a.log.Close()

		var routed []string
		err = chi.Walk(a.router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
			routed = append(routed, method+" "+openapitest.NormalizePath(route))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(routed)
		for _, r := range routed {
			if _, found := slices.BinarySearch(documented, r); !found {
				t.Errorf("auth token %q: the router serves %s, which openapi/openapi.json does not document", token, r)
			}
		}
		for _, d := range documented {
			if _, found := slices.BinarySearch(routed, d); !found {
				t.Errorf("auth token %q: openapi/openapi.json documents %s, which the router does not serve", token, d)
			}
		}
		if len(routed) < 10 {
			t.Errorf("the walk found only %d routes: %v", len(routed), routed)
		}
	}
}
