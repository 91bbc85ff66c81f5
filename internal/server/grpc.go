package server

import (
	"github.com/go-kratos/kratos/v2/log"
	"github.com/go-kratos/kratos/v2/transport/grpc"
	stdgrpc "google.golang.org/grpc"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/observability"
)

// NewGRPCServer returns the gRPC server of the same API.
func NewGRPCServer(c *conf.Server, auth *biz.AuthUsecase, keys *biz.APIKeys, svcs *Services, prot *Protection, tel *observability.Telemetry, logger log.Logger) *grpc.Server {
	opts := []grpc.ServerOption{
		grpc.Middleware(middlewares(auth, keys, prot, tel, logger)...),
		// The HTTP body limit's counterpart.
		grpc.Options(stdgrpc.MaxRecvMsgSize(maxRequestBody)),
	}
	if c.GetGrpc().GetAddr() != "" {
		opts = append(opts, grpc.Address(c.GetGrpc().GetAddr()))
	}
	if t := c.GetGrpc().GetTimeout(); t != nil {
		opts = append(opts, grpc.Timeout(t.AsDuration()))
	}
	srv := grpc.NewServer(opts...)
	_ = svcs.register(func(desc *stdgrpc.ServiceDesc, impl any) error {
		srv.RegisterService(desc, impl)
		return nil
	})
	return srv
}
