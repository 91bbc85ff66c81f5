package server

import (
	stdhttp "net/http"

	"github.com/go-kratos/kratos/v2/errors"
	"github.com/go-kratos/kratos/v2/log"
	"github.com/go-kratos/kratos/v2/transport/http"

	"google.golang.org/grpc"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/observability"
	"github.com/mpauth/mpauth/internal/token"
)

// maxRequestBody caps request bodies; every API request is well under it.
const maxRequestBody = 64 << 10

// NewHTTPServer returns the HTTP server: the API (routes derived from the
// protos' google.api.http rules) and the JWKS.
func NewHTTPServer(c *conf.Server, auth *biz.AuthUsecase, keys *biz.APIKeys, tokens *token.Manager, svcs *Services, prot *Protection, tel *observability.Telemetry, ready Readiness, logger log.Logger) (*http.Server, error) {
	opts := []http.ServerOption{
		http.Filter(limitBody),
		http.ErrorEncoder(encodeError),
	}
	if c.GetHttp().GetAddr() != "" {
		opts = append(opts, http.Address(c.GetHttp().GetAddr()))
	}
	if t := c.GetHttp().GetTimeout(); t != nil {
		opts = append(opts, http.Timeout(t.AsDuration()))
	}
	srv := http.NewServer(opts...)
	ms := middlewares(auth, keys, prot, tel, logger)
	if err := svcs.register(func(desc *grpc.ServiceDesc, impl any) error { return RegisterHTTP(srv, desc, impl, ms...) }); err != nil {
		return nil, err
	}
	registerOps(srv, tel, ready, logger) // /metrics, /healthz, /readyz (ops.go)
	jwks := tokens.JWKS()
	srv.HandleFunc("/.well-known/jwks.json", func(w stdhttp.ResponseWriter, r *stdhttp.Request) {
		w.Header().Set("Content-Type", "application/json")
		// Short enough that a rotated-in key is picked up quickly.
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(jwks)
	})
	return srv, nil
}

func limitBody(next stdhttp.Handler) stdhttp.Handler {
	return stdhttp.HandlerFunc(func(w stdhttp.ResponseWriter, r *stdhttp.Request) {
		r.Body = stdhttp.MaxBytesReader(w, r.Body, maxRequestBody)
		next.ServeHTTP(w, r)
	})
}

// encodeError is kratos's error encoder plus Retry-After when the error says
// when to retry.
func encodeError(w stdhttp.ResponseWriter, r *stdhttp.Request, err error) {
	if se := errors.FromError(err); se != nil {
		if s := se.GetMetadata()["retry_after"]; s != "" {
			w.Header().Set("Retry-After", s)
		}
	}
	http.DefaultErrorEncoder(w, r, err)
}
