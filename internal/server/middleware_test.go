package server

import (
	"context"
	"testing"

	"github.com/go-kratos/kratos/v2/middleware"
	"github.com/go-kratos/kratos/v2/transport"
)

// operationTransport is a server transport that carries only an operation.
type operationTransport struct {
	transport.Transporter
	op string
}

func (t operationTransport) Operation() string { return t.op }

func TestOnOperations(t *testing.T) {
	const selected, other = "/svc/Selected", "/svc/Other"
	tests := []struct {
		name    string
		ctx     context.Context
		wantRan bool
	}{
		{"runs on a matching operation", transport.NewServerContext(context.Background(), operationTransport{op: selected}), true},
		{"skips other operations", transport.NewServerContext(context.Background(), operationTransport{op: other}), false},
		// Deny by default: authenticate must not be skipped because a call
		// came without a transport.
		{"runs when there is no transport", context.Background(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wraps, ran := 0, false
			m := onOperations(func(op string) bool { return op == selected }, func(next middleware.Handler) middleware.Handler {
				wraps++
				return func(ctx context.Context, req any) (any, error) {
					ran = true
					return next(ctx, req)
				}
			})
			h := m(func(context.Context, any) (any, error) { return "reply", nil })
			for i := 0; i < 2; i++ {
				ran = false
				reply, err := h(tt.ctx, nil)
				if err != nil || reply != "reply" {
					t.Fatalf("call %d: %v, %v; want the handler's reply", i, reply, err)
				}
				if ran != tt.wantRan {
					t.Fatalf("call %d: middleware ran = %v; want %v", i, ran, tt.wantRan)
				}
			}
			if wraps != 1 {
				t.Fatalf("the middleware wrapped the handler %d times over two calls; want once", wraps)
			}
		})
	}
}
