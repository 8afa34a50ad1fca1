package app

import (
	"context"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"calculator/httpapi"
)

// The methods: a 405 says which methods the path has (Allow), and HEAD is
// answered wherever GET is.

// routedMethods are the methods an Allow header may name.
var routedMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// methodNotAllowed answers 405 with an Allow header listing the methods
// the path has (HEAD wherever GET is).
func methodNotAllowed(routes chi.Routes) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allowed []string
		for _, method := range routedMethods {
			if routes.Match(chi.NewRouteContext(), method, r.URL.Path) ||
				method == http.MethodHead && routes.Match(chi.NewRouteContext(), http.MethodGet, r.URL.Path) {
				allowed = append(allowed, method)
			}
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		httpapi.MethodNotAllowed(w, r)
	}
}

// headAsGet answers a HEAD request on a route that has GET and no HEAD of
// its own as GET would, without the body (net/http drops it), and ends the
// answer with its header: a stream, which would never end by itself, has its
// request's context cancelled at its first flush.
func headAsGet(next http.Handler) http.Handler {
	get := middleware.GetHead(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		get.ServeHTTP(&headWriter{ResponseWriter: w, cancel: cancel}, r.WithContext(ctx))
	})
}

// headWriter is the writer of a HEAD answer: its first flush sends the
// header and ends the request.
type headWriter struct {
	http.ResponseWriter
	cancel context.CancelFunc
}

func (w *headWriter) FlushError() error {
	w.cancel()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *headWriter) Flush() { _ = w.FlushError() }

func (w *headWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
