// Command baseline is the yardstick of the throughput target: a trivial chi
// server that decodes the same JSON as the calculator's commander, with the
// same strict decoder (httpapi.DecodeJSON), and answers 202 with the same
// headers and body, but writes no log, so nothing is durable and nothing is
// applied. The calculator's end-to-end throughput is compared with this
// server's under the same load, in the same run (scripts/bench.sh):
//
//	go run ./bench/baseline -addr 127.0.0.1:3031
//	go run ./bench -url http://127.0.0.1:3031 -applied=false
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"

	"calculator/domain"
	"calculator/httpapi"
)

const maxBodyBytes = 64 << 10 // as commander.MaxBodyBytes

type accepted struct {
	CommandID uuid.UUID `json:"command_id"`
	ValueID   uuid.UUID `json:"value_id"`
	Status    string    `json:"status"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:3031", "HTTP listen address")
	flag.Parse()

	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.NotFound(httpapi.NotFound)
	r.MethodNotAllowed(httpapi.MethodNotAllowed)
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Post("/values", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Value *float64 `json:"value"`
		}
		if !httpapi.DecodeJSON(w, r, &req, maxBodyBytes) {
			return
		}
		if req.Value == nil {
			httpapi.Error(w, httpapi.InvalidBody, `"value" is required and must be a number`)
			return
		}
		accept(w, uuid.New(), uuid.New())
	})
	r.Put("/values/{id}", func(w http.ResponseWriter, r *http.Request) {
		valueID, ok := httpapi.ParseID(w, chi.URLParam(r, "id"), "value id")
		if !ok {
			return
		}
		var req struct {
			Operation *string  `json:"operation"`
			Value     *float64 `json:"value"`
		}
		if !httpapi.DecodeJSON(w, r, &req, maxBodyBytes) {
			return
		}
		if req.Operation == nil || req.Value == nil {
			httpapi.Error(w, httpapi.InvalidBody, `"operation" and "value" are required`)
			return
		}
		if _, err := domain.ParseOperation(*req.Operation); err != nil {
			httpapi.Error(w, httpapi.InvalidOperation, err.Error())
			return
		}
		accept(w, uuid.New(), valueID)
	})

	srv := &http.Server{Addr: *addr, Handler: r, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	fmt.Fprintln(os.Stderr, "baseline: listening on", *addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func accept(w http.ResponseWriter, commandID, valueID uuid.UUID) {
	w.Header().Set("Location", "/commands/"+commandID.String())
	httpapi.WriteJSON(w, http.StatusAccepted, accepted{CommandID: commandID, ValueID: valueID, Status: "accepted"})
}
