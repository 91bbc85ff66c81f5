package server

import (
	"context"
	"encoding/json"
	"errors"
	stdhttp "net/http"
	"sync/atomic"
	"time"

	"github.com/go-kratos/kratos/v2/log"
	"github.com/go-kratos/kratos/v2/transport/http"

	"github.com/mpauth/mpauth/internal/data"
	"github.com/mpauth/mpauth/internal/observability"
)

// Readiness reports whether the instance can serve requests
// (*data.Data: the database answers and its schema is migrated).
type Readiness interface {
	Ready(ctx context.Context) error
}

// readyTimeout bounds one readiness check: a load balancer's probe must get
// an answer before its own timeout, even when the database hangs.
const readyTimeout = 2 * time.Second

// registerOps serves the operational endpoints on srv, outside the API's
// middleware (no authentication, no rate limit, not in the API metrics):
//
//	GET /metrics  Prometheus metrics (tel's registry)
//	GET /healthz  200 while the process serves HTTP (liveness)
//	GET /readyz   200 when ready answers nil (the database is reachable and
//	              migrated), else 503 with the reason: take the instance out
//	              of the load balancer, do not restart it
func registerOps(srv *http.Server, tel *observability.Telemetry, ready Readiness, logger log.Logger) {
	if tel != nil && tel.Metrics != nil {
		srv.Handle("/metrics", getOnly(tel.Metrics.Handler()))
	}
	srv.Handle("/healthz", getOnly(stdhttp.HandlerFunc(func(w stdhttp.ResponseWriter, _ *stdhttp.Request) {
		writeStatus(w, stdhttp.StatusOK, map[string]string{"status": "ok"})
	})))
	srv.Handle("/readyz", getOnly(readyHandler(ready, logger)))
}

// readyHandler answers /readyz. It logs when the instance becomes unready
// or ready again, not on every probe.
func readyHandler(ready Readiness, logger log.Logger) stdhttp.Handler {
	h := log.NewHelper(log.With(logger, "module", "server/ready"))
	var unready atomic.Bool
	return stdhttp.HandlerFunc(func(w stdhttp.ResponseWriter, r *stdhttp.Request) {
		var err error
		if ready == nil {
			err = errors.New("no readiness check")
		} else {
			ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
			err = ready.Ready(ctx)
			cancel()
		}
		if err != nil {
			if !unready.Swap(true) {
				h.Warnw("msg", "not ready: /readyz answers 503", "err", err)
			}
			writeStatus(w, stdhttp.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": publicReason(err)})
			return
		}
		if unready.Swap(false) {
			h.Info("ready again: /readyz answers 200")
		}
		writeStatus(w, stdhttp.StatusOK, map[string]string{"status": "ok"})
	})
}

// publicReason says why the instance is not ready without quoting driver
// errors (hosts, users, paths).
func publicReason(err error) string {
	switch {
	case errors.Is(err, data.ErrSchemaNotMigrated):
		return data.ErrSchemaNotMigrated.Error()
	case errors.Is(err, data.ErrDatabaseUnreachable), errors.Is(err, context.DeadlineExceeded):
		return data.ErrDatabaseUnreachable.Error()
	}
	return "not ready"
}

func getOnly(h stdhttp.Handler) stdhttp.Handler {
	return stdhttp.HandlerFunc(func(w stdhttp.ResponseWriter, r *stdhttp.Request) {
		if r.Method != stdhttp.MethodGet && r.Method != stdhttp.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeStatus(w, stdhttp.StatusMethodNotAllowed, map[string]string{"status": "method not allowed"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

func writeStatus(w stdhttp.ResponseWriter, code int, body map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
