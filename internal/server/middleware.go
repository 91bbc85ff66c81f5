package server

import (
	"context"
	"errors"
	"strings"
	"unicode"

	"github.com/go-kratos/kratos/v2/middleware"
	"github.com/go-kratos/kratos/v2/transport"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
	"github.com/mpauth/mpauth/internal/biz"
)

// publicOperations need no access token; every other operation does
// (deny by default: a new RPC is protected unless listed here).
var publicOperations = map[string]bool{
	v1.AuthService_Login_FullMethodName:   true,
	v1.AuthService_Refresh_FullMethodName: true,
}

// apiKeyServices need an API key with the given scope instead of a user's
// access token.
var apiKeyServices = map[string]string{
	"/" + v1.AdminService_ServiceDesc.ServiceName + "/":   biz.ScopeAdmin,
	"/" + v1.BackendService_ServiceDesc.ServiceName + "/": biz.ScopeBackend,
}

// scopeOf returns the API-key scope an operation needs ("" if none).
func scopeOf(op string) string {
	for prefix, scope := range apiKeyServices {
		if strings.HasPrefix(op, prefix) {
			return scope
		}
	}
	return ""
}

// authenticate requires, on every non-public operation, a valid Bearer
// access token of an active session (user APIs) or an API key with the
// service's scope (admin and backend APIs), and puts the caller in the
// context.
func authenticate(auth *biz.AuthUsecase, keys *biz.APIKeys) middleware.Middleware {
	return onOperations(func(op string) bool { return !publicOperations[op] }, func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			tr, ok := transport.FromServerContext(ctx)
			if !ok {
				return nil, biz.ErrUnauthenticated
			}
			tok, hasTok := bearer(tr.RequestHeader().Get("Authorization"))
			if scope := scopeOf(tr.Operation()); scope != "" {
				c, err := keys.Authenticate(tok, scope)
				if err != nil {
					return nil, err
				}
				return next(biz.NewCallerContext(ctx, c), req)
			}
			if !hasTok {
				return nil, biz.ErrUnauthenticated
			}
			p, err := auth.Authenticate(ctx, tok)
			if err != nil {
				return nil, err
			}
			return next(biz.NewPrincipalContext(ctx, p), req)
		}
	})
}

// onOperations runs m on the operations match accepts, and on a call with no
// server transport, which has no operation to judge. It is kratos's
// selector, except that m wraps next once, not on every call (the selector
// chains its middlewares anew for each matching request), and that the
// selector skips m when there is no transport.
func onOperations(match func(op string) bool, m middleware.Middleware) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		selected := m(next)
		return func(ctx context.Context, req any) (any, error) {
			if tr, ok := transport.FromServerContext(ctx); ok && !match(tr.Operation()) {
				return next(ctx, req)
			}
			return selected(ctx, req)
		}
	}
}

func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// validate runs the request's protoc-gen-validate rules and answers
// INVALID_ARGUMENT naming the field (as in the API's JSON) and what to do.
func validate() middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			if v, ok := req.(interface{ Validate() error }); ok {
				if err := v.Validate(); err != nil {
					return nil, invalidArgument(req, err)
				}
			}
			return next(ctx, req)
		}
	}
}

type fieldError interface {
	Field() string
	Reason() string
}

func invalidArgument(req any, err error) error {
	var fe fieldError
	if !errors.As(err, &fe) {
		return v1.ErrorInvalidArgument("invalid request")
	}
	field := snake(fe.Field())
	md := map[string]string{"field": field}
	if m, ok := req.(proto.Message); ok {
		if fd := m.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(field)); fd != nil && !m.ProtoReflect().Has(fd) {
			return v1.ErrorInvalidArgument("%s is required", field).WithMetadata(md)
		}
	}
	// PGV reasons describe the rule ("value length must be between 1 and
	// 256 runes, inclusive"); they never echo the value.
	return v1.ErrorInvalidArgument("%s is invalid: %s", field, fe.Reason()).WithMetadata(md)
}

// snake turns PGV's Go field names (AppId) into the API's JSON names (app_id).
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
