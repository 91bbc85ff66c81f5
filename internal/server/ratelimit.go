package server

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"

	aegis "github.com/go-kratos/aegis/ratelimit"
	"github.com/go-kratos/aegis/ratelimit/bbr"
	"github.com/go-kratos/kratos/v2/middleware"
	kratelimit "github.com/go-kratos/kratos/v2/middleware/ratelimit"
	"github.com/go-kratos/kratos/v2/transport"
	khttp "github.com/go-kratos/kratos/v2/transport/http"
	"google.golang.org/grpc/peer"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/ratelimit"
)

// Protection is the abuse and overload protection both servers run.
type Protection struct {
	// LoginPerIP limits Login and Refresh calls per client address (nil:
	// no limit).
	LoginPerIP *ratelimit.Limiter
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// Overload sheds load when the server is overloaded (nil: never). One
	// limiter for both servers: they share the CPU.
	Overload aegis.Limiter
}

// NewOverloadLimiter is the adaptive overload protection: aegis BBR, which
// refuses requests while the CPU is above 80% and more requests are in
// flight than the recent throughput and latency say the server can finish.
// It never refuses while at most minInFlight requests are in flight: at a
// trickle of requests, a busy CPU is someone else's load, not ours.
func NewOverloadLimiter() aegis.Limiter {
	return WithMinInFlight(bbr.NewLimiter(), minInFlight())
}

// minInFlight is the concurrency below which the server never sheds load.
func minInFlight() int64 {
	return int64(max(64, 16*runtime.GOMAXPROCS(0)))
}

// WithMinInFlight wraps an overload limiter so it never refuses while at
// most n requests (this one included) are in flight.
func WithMinInFlight(l aegis.Limiter, n int64) aegis.Limiter {
	return &floorLimiter{next: l, min: n}
}

type floorLimiter struct {
	next     aegis.Limiter
	min      int64
	inFlight atomic.Int64
}

func (f *floorLimiter) Allow() (aegis.DoneFunc, error) {
	n := f.inFlight.Add(1)
	done, err := f.next.Allow()
	if err != nil {
		if n <= f.min {
			return func(aegis.DoneInfo) { f.inFlight.Add(-1) }, nil
		}
		f.inFlight.Add(-1)
		return nil, err
	}
	return func(di aegis.DoneInfo) {
		f.inFlight.Add(-1)
		done(di)
	}, nil
}

// overload sheds load with OVERLOADED (503, Retry-After: 1) when the
// limiter says the server is overloaded. It is kratos's rate-limit
// middleware with its error mapped to the API's.
func overload(l aegis.Limiter) middleware.Middleware {
	shed := kratelimit.Server(kratelimit.WithLimiter(l))
	return func(next middleware.Handler) middleware.Handler {
		h := shed(next)
		return func(ctx context.Context, req any) (any, error) {
			reply, err := h(ctx, req)
			if err != nil && err == kratelimit.ErrLimitExceed { //nolint:errorlint // the middleware returns this very value
				return nil, v1.ErrorOverloaded("the server is overloaded: retry with backoff").
					WithMetadata(map[string]string{"retry_after": "1"})
			}
			return reply, err
		}
	}
}

// loginOperations are the operations limited per client address.
var loginOperations = map[string]bool{
	v1.AuthService_Login_FullMethodName:   true,
	v1.AuthService_Refresh_FullMethodName: true,
}

// loginPerIP limits Login and Refresh per client address.
func loginPerIP(p *Protection) middleware.Middleware {
	return onOperations(func(op string) bool { return loginOperations[op] }, func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			if ip, ok := clientIP(ctx, p.TrustedProxies); ok {
				if ok, after := p.LoginPerIP.Allow(ctx, limitKey(ip)); !ok {
					return nil, biz.RateLimited(biz.LimitIP, "too many logins from this address", after)
				}
			}
			return next(ctx, req)
		}
	})
}

// protection returns the protection middlewares in p.
func protection(p *Protection) (shed, perIP []middleware.Middleware) {
	if p == nil {
		return nil, nil
	}
	if p.Overload != nil {
		shed = append(shed, overload(p.Overload))
	}
	if p.LoginPerIP != nil {
		perIP = append(perIP, loginPerIP(p))
	}
	return shed, perIP
}

// clientIP is the address of the request's client (see resolveClientIP).
func clientIP(ctx context.Context, trusted []netip.Prefix) (netip.Addr, bool) {
	var remote string
	if r, ok := khttp.RequestFromServerContext(ctx); ok {
		remote = r.RemoteAddr
	} else if pr, ok := peer.FromContext(ctx); ok && pr.Addr != nil {
		remote = pr.Addr.String()
	}
	var xff []string
	if tr, ok := transport.FromServerContext(ctx); ok {
		xff = tr.RequestHeader().Values("X-Forwarded-For")
	}
	return resolveClientIP(remote, xff, trusted)
}

// resolveClientIP returns the transport peer's address (remote), or, when
// the peer is a trusted proxy, the nearest address in X-Forwarded-For (xff,
// the header's values) that is not a trusted proxy.
func resolveClientIP(remote string, xff []string, trusted []netip.Prefix) (netip.Addr, bool) {
	ip, ok := parseHostIP(remote)
	if !ok {
		return netip.Addr{}, false
	}
	if !isTrusted(ip, trusted) {
		return ip, true
	}
	// Rightmost first: each proxy appends the address it received from.
	var hops []string
	for _, v := range xff {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			// Garbage from the client side of the chain: the last good
			// hop is as far as we can trust.
			return ip, true
		}
		ip = hop.Unmap().WithZone("")
		if !isTrusted(ip, trusted) {
			return ip, true
		}
	}
	return ip, true
}

func parseHostIP(hostport string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.Unmap().WithZone(""), true
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// limitKey is what one client's limit counts under: its IPv4 address, or
// its IPv6 /64 (one subscriber's prefix: an address per request is free
// within it).
func limitKey(ip netip.Addr) string {
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
