// Package service implements the proto API: it converts between the API's
// messages and biz's types and leaves every decision to biz.
package service

import (
	"context"

	"github.com/go-kratos/kratos/v2/transport"
	"github.com/google/wire"

	"github.com/mpauth/mpauth/internal/biz"
)

// ProviderSet is service providers.
var ProviderSet = wire.NewSet(NewAuthService, NewAccountService, NewAdminService, NewBackendService)

// principal returns the caller authenticated by the server's auth middleware.
func principal(ctx context.Context) (*biz.Principal, error) {
	p, ok := biz.PrincipalFromContext(ctx)
	if !ok {
		return nil, biz.ErrUnauthenticated
	}
	return p, nil
}

// noStore marks a response that carries tokens as not cacheable (RFC 6749 §5.1).
func noStore(ctx context.Context) {
	if tr, ok := transport.FromServerContext(ctx); ok {
		tr.ReplyHeader().Set("Cache-Control", "no-store")
		tr.ReplyHeader().Set("Pragma", "no-cache")
	}
}
