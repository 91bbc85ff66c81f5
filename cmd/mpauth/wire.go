//go:build wireinject
// +build wireinject

// The build tag makes sure the stub is not built in the final build.

package main

import (
	"github.com/go-kratos/kratos/v2"
	"github.com/go-kratos/kratos/v2/log"
	"github.com/google/wire"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/data"
	"github.com/mpauth/mpauth/internal/server"
	"github.com/mpauth/mpauth/internal/service"
)

// wireApp builds the application from its config.
func wireApp(*conf.Bootstrap, log.Logger) (*kratos.App, func(), error) {
	panic(wire.Build(
		wire.FieldsOf(new(*conf.Bootstrap), "Server", "Data"),
		data.ProviderSet, biz.ProviderSet, service.ProviderSet, server.ProviderSet, observabilitySet,
		newRegistry, newAuthConfig, newAPIKeys, newTokenManager, newSandbox, newLoginLimiter, newRedis, newProtection, newApp, newSecretBox,
	))
}
