package biz_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kratos/kratos/v2/log"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data"
	"github.com/mpauth/mpauth/internal/data/dbtest"
	"github.com/mpauth/mpauth/internal/provider"
)

// countingFetcher is a platform token endpoint that counts its calls.
type countingFetcher struct {
	calls  atomic.Int32
	forced atomic.Int32
	ttl    time.Duration
	delay  time.Duration
	fail   atomic.Bool
}

func (f *countingFetcher) FetchAccessToken(ctx context.Context, force bool) (provider.AccessToken, error) {
	n := f.calls.Add(1)
	if force {
		f.forced.Add(1)
	}
	time.Sleep(f.delay)
	if f.fail.Load() {
		return provider.AccessToken{}, &provider.Error{Kind: provider.ErrUnavailable, Platform: "wechat", Code: "-1"}
	}
	return provider.AccessToken{Token: fmt.Sprintf("token-%d", n), ExpiresIn: f.ttl}, nil
}

var brokerApp = provider.App{Platform: "wechat", AppID: "wxbroker"}

// TestTokenBrokerSharesOneRefreshAcrossInstances: three instances on one
// database, many concurrent callers, one platform call.
func TestTokenBrokerSharesOneRefreshAcrossInstances(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			d := dbtest.Open(t, driver)
			f := &countingFetcher{ttl: 2 * time.Hour, delay: 50 * time.Millisecond}
			brokers := []*biz.TokenBroker{
				biz.NewTokenBroker(data.NewPlatformTokenRepo(d), log.DefaultLogger),
				biz.NewTokenBroker(data.NewPlatformTokenRepo(d), log.DefaultLogger),
				biz.NewTokenBroker(data.NewPlatformTokenRepo(d), log.DefaultLogger),
			}
			var wg sync.WaitGroup
			tokens := make([]string, 30)
			errs := make([]error, 30)
			for i := range tokens {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					tokens[i], errs[i] = brokers[i%3].Token(context.Background(), brokerApp, f)
				}(i)
			}
			wg.Wait()
			for i := range tokens {
				if errs[i] != nil || tokens[i] != "token-1" {
					t.Fatalf("caller %d got %q, %v; want token-1", i, tokens[i], errs[i])
				}
			}
			if n := f.calls.Load(); n != 1 {
				t.Fatalf("%d platform calls, want 1", n)
			}
		})
	}
}

// TestTokenBrokerForcesOneRefreshAfterInvalidate: a platform's "invalid
// token" answer makes the next caller force a new token, once.
func TestTokenBrokerForcesOneRefreshAfterInvalidate(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			d := dbtest.Open(t, driver)
			f := &countingFetcher{ttl: 2 * time.Hour}
			a := biz.NewTokenBroker(data.NewPlatformTokenRepo(d), log.DefaultLogger)
			b := biz.NewTokenBroker(data.NewPlatformTokenRepo(d), log.DefaultLogger)
			ctx := context.Background()
			first, err := a.Token(ctx, brokerApp, f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Token(ctx, brokerApp, f); err != nil { // b caches it too
				t.Fatal(err)
			}
			if err := a.Invalidate(ctx, brokerApp, first); err != nil {
				t.Fatal(err)
			}
			second, err := a.Token(ctx, brokerApp, f)
			if err != nil || second == first {
				t.Fatalf("after invalidate: %q, %v", second, err)
			}
			if f.forced.Load() != 1 || f.calls.Load() != 2 {
				t.Fatalf("calls=%d forced=%d, want 2 and 1", f.calls.Load(), f.forced.Load())
			}
			// b learns of the new token once it, too, is told the old one is bad.
			if err := b.Invalidate(ctx, brokerApp, first); err != nil {
				t.Fatal(err)
			}
			got, err := b.Token(ctx, brokerApp, f)
			if err != nil || got != second || f.calls.Load() != 2 {
				t.Fatalf("b after invalidating the stale token: %q, %v, calls=%d", got, err, f.calls.Load())
			}
		})
	}
}

// TestTokenBrokerRefreshesExpiringTokensAndSurvivesFailures: a token inside
// the refresh-ahead window is refreshed; when that refresh fails the still
// valid token is served; an expired one with a failing platform is an error.
func TestTokenBrokerRefreshesExpiringTokensAndSurvivesFailures(t *testing.T) {
	d := dbtest.Open(t, "sqlite")
	ctx := context.Background()
	f := &countingFetcher{ttl: 90 * time.Second} // inside the refresh-ahead window at once
	b := biz.NewTokenBroker(data.NewPlatformTokenRepo(d), log.DefaultLogger)
	if tok, err := b.Token(ctx, brokerApp, f); err != nil || tok != "token-1" {
		t.Fatalf("%q %v", tok, err)
	}
	if tok, err := b.Token(ctx, brokerApp, f); err != nil || tok != "token-2" {
		t.Fatalf("refresh-ahead: %q %v", tok, err)
	}
	f.fail.Store(true)
	if tok, err := b.Token(ctx, brokerApp, f); err != nil || tok != "token-2" {
		t.Fatalf("failed refresh-ahead should keep the valid token: %q %v", tok, err)
	}
	if err := b.Invalidate(ctx, brokerApp, "token-2"); err != nil {
		t.Fatal(err)
	}
	_, err := b.Token(ctx, brokerApp, f)
	if !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("no usable token and a failing platform: %v, want ErrUnavailable", err)
	}
}
