// Package server builds mpauth's HTTP and gRPC servers: one middleware chain
// and one set of operations for both transports.
package server

import (
	"github.com/go-kratos/kratos/v2/encoding/json"
	"github.com/go-kratos/kratos/v2/log"
	"github.com/go-kratos/kratos/v2/middleware"
	"github.com/go-kratos/kratos/v2/middleware/logging"
	"github.com/go-kratos/kratos/v2/middleware/recovery"
	"github.com/google/wire"
	"google.golang.org/grpc"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/observability"
	"github.com/mpauth/mpauth/internal/service"
)

// ProviderSet is server providers.
var ProviderSet = wire.NewSet(NewHTTPServer, NewGRPCServer, wire.Struct(new(Services), "*"))

func init() {
	// The API's JSON uses the proto field names (snake_case), as documented.
	json.MarshalOptions.UseProtoNames = true
}

// middlewares is the chain both transports run, in order. kratos's logging
// middleware logs requests through their Redact() methods (api/mpauth/v1/redact.go).
// Telemetry comes first (every outcome, panics and shed requests included,
// is traced and counted, and log lines carry the trace id); load shedding
// next (a shed request costs next to nothing); the per-address login limit
// after logging (refusals are logged).
func middlewares(auth *biz.AuthUsecase, keys *biz.APIKeys, prot *Protection, tel *observability.Telemetry, logger log.Logger) []middleware.Middleware {
	shed, perIP := protection(prot)
	chain := []middleware.Middleware{tel.Middleware(), recovery.Recovery()}
	chain = append(chain, shed...)
	chain = append(chain, logging.Server(logger))
	chain = append(chain, perIP...)
	return append(chain,
		authenticate(auth, keys),
		validate(),
	)
}

// Services is every API service; both servers serve all of them.
type Services struct {
	Auth    *service.AuthService
	Account *service.AccountService
	Admin   *service.AdminService
	Backend *service.BackendService
}

// register calls fn with each service's gRPC description and implementation.
func (s *Services) register(fn func(desc *grpc.ServiceDesc, impl any) error) error {
	for _, r := range []struct {
		desc *grpc.ServiceDesc
		impl any
	}{
		{&v1.AuthService_ServiceDesc, s.Auth},
		{&v1.AccountService_ServiceDesc, s.Account},
		{&v1.AdminService_ServiceDesc, s.Admin},
		{&v1.BackendService_ServiceDesc, s.Backend},
	} {
		if err := fn(r.desc, r.impl); err != nil {
			return err
		}
	}
	return nil
}
