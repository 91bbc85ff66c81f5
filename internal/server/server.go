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

	"github.com/mpauth/mpauth/internal/biz"
)

// ProviderSet is server providers.
var ProviderSet = wire.NewSet(NewHTTPServer, NewGRPCServer)

func init() {
	// The API's JSON uses the proto field names (snake_case), as documented.
	json.MarshalOptions.UseProtoNames = true
}

// middlewares is the chain both transports run, in order. kratos's logging
// middleware logs requests through their Redact() methods (api/mpauth/v1/redact.go).
func middlewares(auth *biz.AuthUsecase, logger log.Logger) []middleware.Middleware {
	return []middleware.Middleware{
		recovery.Recovery(),
		logging.Server(logger),
		validate(),
		authenticate(auth),
	}
}
