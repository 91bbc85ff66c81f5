package server

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"

	aegis "github.com/go-kratos/aegis/ratelimit"
	kerrors "github.com/go-kratos/kratos/v2/errors"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
)

// rejecting is an overload limiter that always says the server is overloaded.
type rejecting struct{ calls atomic.Int32 }

func (r *rejecting) Allow() (aegis.DoneFunc, error) {
	r.calls.Add(1)
	return nil, aegis.ErrLimitExceed
}

// admitting admits everything and counts completions.
type admitting struct{ done atomic.Int32 }

func (a *admitting) Allow() (aegis.DoneFunc, error) {
	return func(aegis.DoneInfo) { a.done.Add(1) }, nil
}

func TestOverloadAnswersOverloadedWithRetryAfter(t *testing.T) {
	lim := &rejecting{}
	handled := false
	h := overload(lim)(func(context.Context, any) (any, error) { handled = true; return "ok", nil })
	reply, err := h(context.Background(), nil)
	if handled || reply != nil {
		t.Fatal("a shed request reached the handler")
	}
	if !v1.IsOverloaded(err) {
		t.Fatalf("err = %v, want OVERLOADED", err)
	}
	se := kerrors.FromError(err)
	if se.Code != 503 || se.Metadata["retry_after"] != "1" {
		t.Fatalf("err = %d %v, want 503 with retry_after 1", se.Code, se.Metadata)
	}
}

func TestOverloadPassesRequestsAndErrorsThrough(t *testing.T) {
	lim := &admitting{}
	want := v1.ErrorCodeInvalid("bad code")
	h := overload(lim)(func(context.Context, any) (any, error) { return nil, want })
	if _, err := h(context.Background(), nil); !errors.Is(err, want) || v1.IsOverloaded(err) {
		t.Fatalf("err = %v, want the handler's own error", err)
	}
	h = overload(lim)(func(context.Context, any) (any, error) { return "ok", nil })
	if reply, err := h(context.Background(), nil); reply != "ok" || err != nil {
		t.Fatalf("admitted request = %v, %v", reply, err)
	}
	if lim.done.Load() != 2 {
		t.Fatalf("limiter told of %d completions, want 2", lim.done.Load())
	}
}

func TestMinInFlightAdmitsBelowTheFloorOnly(t *testing.T) {
	inner := &rejecting{}
	l := WithMinInFlight(inner, 2)
	var dones []aegis.DoneFunc
	for i := 1; i <= 2; i++ {
		done, err := l.Allow()
		if err != nil {
			t.Fatalf("request %d in flight refused below the floor of 2", i)
		}
		dones = append(dones, done)
	}
	if _, err := l.Allow(); err == nil {
		t.Fatal("third request in flight admitted above the floor although the limiter refuses")
	}
	dones[0](aegis.DoneInfo{})
	if _, err := l.Allow(); err != nil {
		t.Fatal("refused after one finished: in-flight count leaked")
	}
	if inner.calls.Load() != 4 {
		t.Fatalf("inner limiter asked %d times, want every time (4)", inner.calls.Load())
	}
}

func TestResolveClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	tests := []struct {
		name    string
		remote  string
		xff     []string
		want    string
		wantKey string
	}{
		{"untrusted peer", "203.0.113.7:5555", nil, "203.0.113.7", "203.0.113.7"},
		{"untrusted peer's X-Forwarded-For is ignored", "203.0.113.7:5555", []string{"198.51.100.1"}, "203.0.113.7", ""},
		{"trusted peer without the header", "10.1.2.3:80", nil, "10.1.2.3", ""},
		{"trusted peer's X-Forwarded-For", "10.1.2.3:80", []string{"198.51.100.1"}, "198.51.100.1", ""},
		{"client-supplied hops before ours are ignored", "10.1.2.3:80", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1", ""},
		{"trusted hops are skipped", "127.0.0.1:80", []string{"6.6.6.6, 198.51.100.1, 10.9.9.9"}, "198.51.100.1", ""},
		{"several headers", "127.0.0.1:80", []string{"6.6.6.6", "198.51.100.1", "10.9.9.9"}, "198.51.100.1", ""},
		{"garbage stops at the last good hop", "10.1.2.3:80", []string{"198.51.100.1, <script>, 10.2.2.2"}, "10.2.2.2", ""},
		{"IPv4-mapped peer", "[::ffff:203.0.113.7]:5555", nil, "203.0.113.7", "203.0.113.7"},
		{"IPv6 counts per /64", "[2001:db8:1:2:3:4:5:6]:443", nil, "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"no port", "203.0.113.9", nil, "203.0.113.9", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := resolveClientIP(tt.remote, tt.xff, trusted)
			if !ok || got.String() != tt.want {
				t.Fatalf("client ip = %v (%v), want %s", got, ok, tt.want)
			}
			if tt.wantKey != "" && limitKey(got) != tt.wantKey {
				t.Fatalf("limit key = %s, want %s", limitKey(got), tt.wantKey)
			}
		})
	}
	if _, ok := resolveClientIP("@unix", nil, trusted); ok {
		t.Fatal("an address that is no IP yielded a client ip")
	}
}
