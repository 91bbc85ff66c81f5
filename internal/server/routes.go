package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	stdhttp "net/http"
	"regexp"
	"strings"

	"github.com/go-kratos/kratos/v2/encoding"
	"github.com/go-kratos/kratos/v2/encoding/json"
	"github.com/go-kratos/kratos/v2/middleware"
	"github.com/go-kratos/kratos/v2/transport/http"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
)

// Route is one google.api.http rule of the API.
type Route struct {
	Method    string // HTTP method
	Path      string // path template as in the proto, e.g. /v1/users/{user_id}
	Body      string // "" (none), "*" or a field name
	Operation string // the gRPC full method name, e.g. /mpauth.v1.AuthService/Login
}

// Routes lists every google.api.http rule (additional bindings included) of
// a proto service.
func Routes(service protoreflect.ServiceDescriptor) []Route {
	var out []Route
	methods := service.Methods()
	for i := 0; i < methods.Len(); i++ {
		m := methods.Get(i)
		rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
		if rule == nil {
			continue
		}
		op := fmt.Sprintf("/%s/%s", service.FullName(), m.Name())
		for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
			method, path := ruleTarget(r)
			out = append(out, Route{Method: method, Path: path, Body: r.GetBody(), Operation: op})
		}
	}
	return out
}

func ruleTarget(r *annotations.HttpRule) (string, string) {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return "GET", p.Get
	case *annotations.HttpRule_Post:
		return "POST", p.Post
	case *annotations.HttpRule_Put:
		return "PUT", p.Put
	case *annotations.HttpRule_Delete:
		return "DELETE", p.Delete
	case *annotations.HttpRule_Patch:
		return "PATCH", p.Patch
	case *annotations.HttpRule_Custom:
		return p.Custom.GetKind(), p.Custom.GetPath()
	}
	return "", ""
}

// bindBody decodes a JSON body whatever the Content-Type says (curl -d sends
// x-www-form-urlencoded; wx.request sends JSON), and other bodies with the
// codec of their Content-Type, as kratos does.
func bindBody(ctx http.Context, in any) error {
	r := ctx.Request()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if trimmed := bytes.TrimSpace(body); len(trimmed) == 0 {
		return nil
	} else if trimmed[0] == '{' {
		return encoding.GetCodec(json.Name).Unmarshal(trimmed, in)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return ctx.Bind(in)
}

// segmentVar matches a path variable with a segment pattern, {name=*}.
var segmentVar = regexp.MustCompile(`\{([a-zA-Z0-9_.]+)=\*\}`)

// muxPath turns a google.api.http path template into the router's syntax.
func muxPath(template string) string {
	return segmentVar.ReplaceAllString(template, "{$1}")
}

// RegisterHTTP serves every google.api.http rule of a gRPC service on srv,
// derived from the proto descriptors, so the protos stay the one source of
// truth. Each route binds the request like kratos's generated HTTP code
// (the body; the query string unless the body is "*"; path variables),
// sets the operation to the gRPC full method name, and runs the middleware
// chain ms before the same method the gRPC server calls.
func RegisterHTTP(srv *http.Server, desc *grpc.ServiceDesc, impl any, ms ...middleware.Middleware) error {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(desc.ServiceName))
	if err != nil {
		return fmt.Errorf("service %s: no proto descriptor: %w", desc.ServiceName, err)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return fmt.Errorf("%s is not a service", desc.ServiceName)
	}
	handlers := make(map[string]grpc.MethodHandler, len(desc.Methods))
	for _, m := range desc.Methods {
		handlers[fmt.Sprintf("/%s/%s", desc.ServiceName, m.MethodName)] = m.Handler
	}
	r := srv.Route("/")
	for _, rt := range Routes(sd) {
		h, ok := handlers[rt.Operation]
		if !ok {
			return fmt.Errorf("%s: no unary gRPC handler for %s", desc.ServiceName, rt.Operation)
		}
		r.Handle(rt.Method, muxPath(rt.Path), httpHandler(rt, h, impl, ms))
	}
	return nil
}

// unaryNextKey carries, through a route's middleware chain, the handler the
// generated gRPC code passes its interceptor for this one request.
type unaryNextKey struct{}

func callNext(ctx context.Context, req any) (any, error) {
	return ctx.Value(unaryNextKey{}).(grpc.UnaryHandler)(ctx, req)
}

func httpHandler(rt Route, h grpc.MethodHandler, impl any, ms []middleware.Middleware) http.HandlerFunc {
	// As google.api.http says (and kratos's generated code does): with body
	// "*" every field comes from the body, so the query string binds nothing.
	bindQuery := rt.Body != "*"
	hasVars := strings.Contains(rt.Path, "{")
	// The chain is built once per route. kratos's Context.Middleware builds
	// it on every request: a matcher lookup and a closure per middleware.
	chain := middleware.Chain(ms...)(callNext)
	runMiddleware := func(c context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		return chain(context.WithValue(c, unaryNextKey{}, next), req)
	}
	return func(ctx http.Context) error {
		http.SetOperation(ctx, rt.Operation)
		bind := func(in any) error {
			// Binding errors can quote the input, which may be a secret:
			// answer a fixed message instead.
			if rt.Body != "" {
				if err := bindBody(ctx, in); err != nil {
					var tooLarge *stdhttp.MaxBytesError
					if errors.As(err, &tooLarge) {
						return v1.ErrorInvalidArgument("the request body is larger than %d KiB", tooLarge.Limit>>10)
					}
					return v1.ErrorInvalidArgument("the request body is not a valid JSON object for this method: check field names and types")
				}
			}
			if bindQuery {
				if err := ctx.BindQuery(in); err != nil {
					return v1.ErrorInvalidArgument("the query string does not fit this method: check parameter names and types")
				}
			}
			if hasVars {
				if err := ctx.BindVars(in); err != nil {
					return v1.ErrorInvalidArgument("the URL path does not fit this method")
				}
			}
			return nil
		}
		out, err := h(impl, ctx, bind, runMiddleware)
		if err != nil {
			return err
		}
		return ctx.Result(200, out)
	}
}
