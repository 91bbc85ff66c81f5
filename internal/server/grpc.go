package server

import (
	"github.com/go-kratos/kratos/v2/log"
	"github.com/go-kratos/kratos/v2/transport/grpc"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/service"
)

// NewGRPCServer returns the gRPC server of the same API.
func NewGRPCServer(c *conf.Server, auth *biz.AuthUsecase, authSvc *service.AuthService, accountSvc *service.AccountService, logger log.Logger) *grpc.Server {
	opts := []grpc.ServerOption{grpc.Middleware(middlewares(auth, logger)...)}
	if c.GetGrpc().GetAddr() != "" {
		opts = append(opts, grpc.Address(c.GetGrpc().GetAddr()))
	}
	if t := c.GetGrpc().GetTimeout(); t != nil {
		opts = append(opts, grpc.Timeout(t.AsDuration()))
	}
	srv := grpc.NewServer(opts...)
	v1.RegisterAuthServiceServer(srv, authSvc)
	v1.RegisterAccountServiceServer(srv, accountSvc)
	return srv
}
