package provider_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpauth/mpauth/internal/provider"
	"github.com/mpauth/mpauth/internal/provider/douyin"
	"github.com/mpauth/mpauth/internal/provider/platforms"
	"github.com/mpauth/mpauth/internal/provider/wechat"
)

// fake is a platform on loopback: every request, whatever its path, is
// answered by answer with the request's 1-based number.
type fake struct {
	srv    *httptest.Server
	hits   atomic.Int64
	mu     sync.Mutex
	answer func(w http.ResponseWriter, r *http.Request, n int64)
}

func newFake(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, n int64)) *fake {
	t.Helper()
	f := &fake{answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.hits.Add(1)
		f.mu.Lock()
		a := f.answer
		f.mu.Unlock()
		a(w, r, n)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) set(answer func(w http.ResponseWriter, r *http.Request, n int64)) {
	f.mu.Lock()
	f.answer = answer
	f.mu.Unlock()
}

// WeChat answers.
const (
	wxOK      = `{"openid":"oAlice0000000000000000000000","session_key":"tiihtNczf5v6AKRyjwEUhQ=="}`
	wxBusy    = `{"errcode":-1,"errmsg":"system busy"}`
	wxBadCode = `{"errcode":40029,"errmsg":"invalid code"}`
)

func say(status int, body string) func(http.ResponseWriter, *http.Request, int64) {
	return func(w http.ResponseWriter, _ *http.Request, _ int64) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// sequence answers the bodies in turn (HTTP 200), repeating the last.
func sequence(bodies ...string) func(http.ResponseWriter, *http.Request, int64) {
	return func(w http.ResponseWriter, _ *http.Request, n int64) {
		_, _ = w.Write([]byte(bodies[min(int(n), len(bodies))-1]))
	}
}

// hang never answers; the caller gives up.
func hang(_ http.ResponseWriter, r *http.Request, _ int64) { <-r.Context().Done() }

// observer records what it is told.
type observer struct {
	mu       sync.Mutex
	calls    []string // platform op result
	breakers []string // platform open|closed
}

func (o *observer) PlatformCall(platform, op, result string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, platform+" "+op+" "+result)
}

func (o *observer) BreakerState(platform string, open bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := "closed"
	if open {
		s = "open"
	}
	o.breakers = append(o.breakers, platform+" "+s)
}

func (o *observer) seen() (calls, breakers []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.calls...), append([]string(nil), o.breakers...)
}

// clock is a manual clock for the breakers' open periods.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newResilience returns a Resilience on a manual clock.
func newResilience(opts provider.ResilienceOptions, obs provider.Observer) (*provider.Resilience, *clock) {
	c := &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	res := provider.NewResilience(opts, obs)
	res.SetClock(c.now)
	return res, c
}

func wxApp(endpoint string) provider.App {
	return provider.App{Platform: provider.WeChat, AppID: "wx4f4bc4dec97d474b", Secret: "wechat-test-secret", Endpoint: endpoint, Timeout: 2 * time.Second}
}

func dyApp(endpoint string) provider.App {
	return provider.App{Platform: provider.Douyin, AppID: "tt07e3715e98c9aac0", Secret: "douyin-test-secret", Endpoint: endpoint, Timeout: 2 * time.Second}
}

// guarded returns app's real provider wrapped by res.
func guarded(t *testing.T, res *provider.Resilience, app provider.App) provider.Provider {
	t.Helper()
	f := platforms.Factories[app.Platform]
	p, err := f(app, provider.Env{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return res.Wrap(p, app)
}

func login(p provider.Provider) error {
	_, err := p.Exchange(context.Background(), provider.Credentials{Code: "0a3Xs8000VL9bS1KfG200vJ5Nj1Xs80V"})
	return err
}

// fast are options for tests: tiny back-off, a breaker opening after 3
// failures and staying open for a minute unless a test says otherwise.
func fast(o func(*provider.ResilienceOptions)) provider.ResilienceOptions {
	opts := provider.ResilienceOptions{Backoff: time.Millisecond, BreakerFailures: 3, BreakerOpenFor: time.Minute}
	if o != nil {
		o(&opts)
	}
	return opts
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name       string
		answer     func(http.ResponseWriter, *http.Request, int64)
		maxRetries int
		timeout    time.Duration
		wantErr    error // nil: success
		wantHits   int64
	}{
		{name: "transient answer then success is retried once", answer: sequence(wxBusy, wxOK), wantHits: 2},
		{name: "transient twice gives up after max_retries", answer: sequence(wxBusy), wantErr: provider.ErrUnavailable, wantHits: 2},
		{name: "more retries when configured", answer: sequence(wxBusy, wxBusy, wxOK), maxRetries: 2, wantHits: 3},
		{name: "no retries when turned off", answer: sequence(wxBusy, wxOK), maxRetries: -1, wantErr: provider.ErrUnavailable, wantHits: 1},
		{name: "HTTP 503 is retried", answer: func(w http.ResponseWriter, r *http.Request, n int64) {
			if n == 1 {
				w.WriteHeader(503)
				return
			}
			_, _ = w.Write([]byte(wxOK))
		}, wantHits: 2},
		{name: "HTTP 504 is not retried: the platform may have acted", answer: say(504, "<html>gateway timeout</html>"), wantErr: provider.ErrUnavailable, wantHits: 1},
		{name: "a timeout is not retried: the code may be spent", answer: hang, timeout: 200 * time.Millisecond, wantErr: provider.ErrUnavailable, wantHits: 1},
		{name: "a truncated answer is not retried", answer: say(200, `{"openid":"oAl`), wantErr: provider.ErrUnavailable, wantHits: 1},
		{name: "an invalid code is not retried", answer: sequence(wxBadCode, wxOK), wantErr: provider.ErrCodeInvalid, wantHits: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.answer)
			app := wxApp(f.srv.URL)
			if tt.timeout > 0 {
				app.Timeout = tt.timeout
			}
			p := guarded(t, provider.NewResilience(fast(func(o *provider.ResilienceOptions) { o.MaxRetries = tt.maxRetries }), nil), app)
			err := login(p)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Exchange = %v, want %v", err, tt.wantErr)
			}
			if n := f.hits.Load(); n != tt.wantHits {
				t.Errorf("platform called %d times, want %d", n, tt.wantHits)
			}
		})
	}
}

func TestConnectionRefusedIsRetried(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	obs := &observer{}
	p := guarded(t, provider.NewResilience(fast(nil), obs), wxApp("http://"+addr))
	err = login(p)
	var pe *provider.Error
	if !errors.As(err, &pe) || !errors.Is(err, provider.ErrUnavailable) || !pe.Retryable {
		t.Fatalf("Exchange = %#v, want a Retryable ErrUnavailable", err)
	}
	if calls, _ := obs.seen(); len(calls) != 2 {
		t.Errorf("calls = %q, want two attempts", calls)
	}
}

func TestRetriesRespectTheCallersDeadline(t *testing.T) {
	f := newFake(t, sequence(wxBusy, wxOK))
	// A back-off longer than what is left of the caller's deadline: the
	// failure is returned instead of waiting past it.
	p := guarded(t, provider.NewResilience(fast(func(o *provider.ResilienceOptions) { o.Backoff = time.Hour }), nil), wxApp(f.srv.URL))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := p.Exchange(ctx, provider.Credentials{Code: "0a3Xs8000VL9bS1KfG200vJ5Nj1Xs80V"})
	if !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("Exchange = %v, want the busy answer", err)
	}
	if ctx.Err() != nil {
		t.Errorf("the retry waited past the caller's deadline")
	}
	if n := f.hits.Load(); n != 1 {
		t.Errorf("platform called %d times, want 1", n)
	}
}

func TestUserErrorsDoNotOpenTheBreaker(t *testing.T) {
	f := newFake(t, sequence(wxBadCode))
	obs := &observer{}
	res := provider.NewResilience(fast(nil), obs)
	p := guarded(t, res, wxApp(f.srv.URL))
	for i := 0; i < 10; i++ {
		if err := login(p); !errors.Is(err, provider.ErrCodeInvalid) {
			t.Fatalf("login %d = %v, want ErrCodeInvalid", i, err)
		}
	}
	if res.BreakerOpen(provider.WeChat) {
		t.Errorf("invalid codes opened the breaker")
	}
	if n := f.hits.Load(); n != 10 {
		t.Errorf("platform called %d times, want 10", n)
	}
	// Nor do they count towards it: two failures, a user error, two
	// failures keep it closed (3 consecutive open it).
	f.set(sequence(wxBusy, wxBusy, wxBadCode, wxBusy, wxBusy, wxOK))
	f.hits.Store(0)
	for i := 0; i < 3; i++ {
		_ = login(p)
	}
	if res.BreakerOpen(provider.WeChat) {
		t.Errorf("non-consecutive failures opened the breaker")
	}
	if _, breakers := obs.seen(); len(breakers) != 0 {
		t.Errorf("breaker changes = %q, want none", breakers)
	}
}

// A code the platform answered with but nobody maps (WeChat's unknown
// errcodes are PLATFORM_UNAVAILABLE) proves the platform is up: ten of them
// must not shut every app of the platform out.
func TestUnknownPlatformCodesDoNotOpenTheBreaker(t *testing.T) {
	f := newFake(t, sequence(`{"errcode":48001,"errmsg":"api unauthorized"}`))
	res := provider.NewResilience(fast(nil), &observer{})
	p := guarded(t, res, wxApp(f.srv.URL))
	for i := 0; i < 10; i++ {
		if err := login(p); !errors.Is(err, provider.ErrUnavailable) {
			t.Fatalf("login %d = %v, want ErrUnavailable", i, err)
		}
	}
	if res.BreakerOpen(provider.WeChat) {
		t.Errorf("answers with an unknown code opened the breaker")
	}
}

func TestDeadPlatformOpensTheBreaker(t *testing.T) {
	refused := func(t *testing.T) (string, func(func(http.ResponseWriter, *http.Request, int64)), func() int64) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		var srv *fake
		revive := func(a func(http.ResponseWriter, *http.Request, int64)) {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatalf("port %s taken meanwhile: %v", addr, err)
			}
			srv = &fake{answer: a}
			s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				srv.hits.Add(1)
				a(w, r, srv.hits.Load())
			}))
			s.Listener.Close()
			s.Listener = l
			s.Start()
			t.Cleanup(s.Close)
		}
		hits := func() int64 {
			if srv == nil {
				return 0
			}
			return srv.hits.Load()
		}
		return "http://" + addr, revive, hits
	}
	answering := func(status int, body string) func(t *testing.T) (string, func(func(http.ResponseWriter, *http.Request, int64)), func() int64) {
		return func(t *testing.T) (string, func(func(http.ResponseWriter, *http.Request, int64)), func() int64) {
			f := newFake(t, say(status, body))
			return f.srv.URL, f.set, f.hits.Load
		}
	}
	tests := []struct {
		name     string
		platform func(t *testing.T) (endpoint string, revive func(func(http.ResponseWriter, *http.Request, int64)), hits func() int64)
		// wantHits: platform calls until the breaker opens (3 failures).
		wantHits int64
	}{
		{name: "answering HTTP 503", platform: answering(503, "<html>503 Service Unavailable</html>"), wantHits: 3},
		{name: "answering system busy", platform: answering(200, wxBusy), wantHits: 3},
		{name: "answering garbage", platform: answering(200, "<html>maintenance</html>"), wantHits: 3},
		{name: "refusing connections", platform: refused, wantHits: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			endpoint, revive, hits := tt.platform(t)
			obs := &observer{}
			res, clk := newResilience(fast(nil), obs)
			p := guarded(t, res, wxApp(endpoint))
			// Failures until the breaker opens (retries count too).
			for i := 0; i < 3 && !res.BreakerOpen(provider.WeChat); i++ {
				if err := login(p); !errors.Is(err, provider.ErrUnavailable) {
					t.Fatalf("login %d = %v, want ErrUnavailable", i, err)
				}
			}
			if !res.BreakerOpen(provider.WeChat) {
				t.Fatalf("three failed logins did not open the breaker")
			}
			if n := hits(); n != tt.wantHits {
				t.Errorf("platform called %d times before the breaker opened, want %d", n, tt.wantHits)
			}
			// Open: every call fails at once, without reaching the
			// platform, and nothing is left running.
			before := hits()
			goroutines := runtime.NumGoroutine()
			var wg sync.WaitGroup
			errs := make(chan error, 200)
			for i := 0; i < 200; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- login(p)
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				var pe *provider.Error
				if !errors.As(err, &pe) || !errors.Is(err, provider.ErrUnavailable) || pe.Message != provider.MsgCircuitOpen {
					t.Fatalf("login with the breaker open = %v, want ErrUnavailable %q", err, provider.MsgCircuitOpen)
				}
			}
			if n := hits(); n != before {
				t.Errorf("the platform was called %d times with the breaker open", n-before)
			}
			// The 200 callers have returned; give their goroutines a moment
			// to exit (a loaded machine schedules them late), then nothing
			// the open breaker started may remain.
			g := runtime.NumGoroutine()
			for deadline := time.Now().Add(5 * time.Second); g > goroutines+5 && time.Now().Before(deadline); g = runtime.NumGoroutine() {
				time.Sleep(10 * time.Millisecond)
			}
			if g > goroutines+5 {
				t.Errorf("goroutines grew from %d to %d", goroutines, g)
			}
			calls, breakers := obs.seen()
			if fmt.Sprint(breakers) != "[wechat open]" {
				t.Errorf("breaker changes = %q, want it opened once", breakers)
			}
			if last := calls[len(calls)-1]; last != "wechat exchange circuit_open" {
				t.Errorf("last observed call = %q", last)
			}
			// After the open period one probe goes through; still dead,
			// it opens the breaker again.
			openPeriodPasses(t, res, clk)
			before = hits()
			if err := login(p); !errors.Is(err, provider.ErrUnavailable) {
				t.Fatalf("probe = %v, want ErrUnavailable", err)
			}
			if !res.BreakerOpen(provider.WeChat) {
				t.Fatalf("a failed probe left the breaker closed")
			}
			if err := login(p); err == nil || !errors.Is(err, provider.ErrUnavailable) {
				t.Fatalf("login after a failed probe = %v", err)
			}
			if n := hits() - before; tt.wantHits > 0 && n != 1 {
				t.Errorf("platform called %d times after the failed probe, want 1 (the probe, not retried)", n)
			}
			// Back to life: the next probe succeeds and closes it.
			revive(say(200, wxOK))
			openPeriodPasses(t, res, clk)
			for i := 0; i < 5; i++ {
				if err := login(p); err != nil {
					t.Fatalf("login %d after recovery = %v", i, err)
				}
			}
			if _, breakers := obs.seen(); fmt.Sprint(breakers) != "[wechat open wechat closed]" {
				t.Errorf("breaker changes = %q, want open then closed", breakers)
			}
		})
	}
}

// openPeriodPasses moves the clock past the open period.
func openPeriodPasses(t *testing.T, res *provider.Resilience, c *clock) {
	t.Helper()
	c.advance(time.Minute - time.Millisecond)
	if !res.BreakerOpen(provider.WeChat) {
		t.Fatalf("the breaker closed before its open period passed")
	}
	c.advance(time.Millisecond)
	if res.BreakerOpen(provider.WeChat) {
		t.Fatalf("the breaker is still open after its open period")
	}
}

func TestTheProbeIsTheOnlyCallWhileHalfOpen(t *testing.T) {
	release := make(chan struct{})
	f := newFake(t, say(503, ""))
	res, clk := newResilience(fast(nil), nil)
	p := guarded(t, res, wxApp(f.srv.URL))
	for i := 0; i < 2; i++ {
		_ = login(p)
	}
	openPeriodPasses(t, res, clk)
	// The probe hangs at the platform; meanwhile every other call is
	// refused.
	f.set(func(w http.ResponseWriter, r *http.Request, _ int64) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = w.Write([]byte(wxOK))
	})
	before := f.hits.Load()
	probe := make(chan error, 1)
	go func() { probe <- login(p) }()
	deadline := time.Now().Add(10 * time.Second)
	for f.hits.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("the probe never reached the platform")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := 0; i < 20; i++ {
		if err := login(p); !errors.Is(err, provider.ErrUnavailable) {
			t.Fatalf("call during the probe = %v, want ErrUnavailable", err)
		}
	}
	close(release)
	if err := <-probe; err != nil {
		t.Fatalf("probe = %v", err)
	}
	if n := f.hits.Load() - before; n != 1 {
		t.Errorf("platform called %d times during the probe, want 1", n)
	}
	if err := login(p); err != nil {
		t.Errorf("after a successful probe: %v", err)
	}
}

func TestBreakersArePerPlatform(t *testing.T) {
	wx := newFake(t, say(503, ""))
	dy := newFake(t, say(200, `{"err_no":0,"err_tips":"success","data":{"openid":"dyAlice","session_key":"","unionid":""}}`))
	res := provider.NewResilience(fast(nil), nil)
	wx1 := guarded(t, res, wxApp(wx.srv.URL))
	app2 := wxApp(wx.srv.URL)
	app2.AppID = "wx0000000000000002"
	wx2 := guarded(t, res, app2)
	dyP := guarded(t, res, dyApp(dy.srv.URL))
	for i := 0; i < 2; i++ {
		_ = login(wx1)
	}
	if !res.BreakerOpen(provider.WeChat) {
		t.Fatal("the WeChat breaker did not open")
	}
	// Shared by every WeChat app...
	before := wx.hits.Load()
	if err := login(wx2); !errors.Is(err, provider.ErrUnavailable) || wx.hits.Load() != before {
		t.Errorf("another WeChat app = %v after %d calls, want refused without a call", err, wx.hits.Load()-before)
	}
	// ...and no other platform's.
	if res.BreakerOpen(provider.Douyin) {
		t.Error("the Douyin breaker is open")
	}
	if err := login(dyP); err != nil {
		t.Errorf("Douyin with the WeChat breaker open: %v", err)
	}
	if dy.hits.Load() != 1 {
		t.Errorf("Douyin called %d times, want 1", dy.hits.Load())
	}
	if douyin.DefaultBaseURL == "" { // keep the import honest
		t.Fatal()
	}
}

func TestCanceledCallsDoNotCount(t *testing.T) {
	f := newFake(t, hang)
	res := provider.NewResilience(fast(nil), nil)
	p := guarded(t, res, wxApp(f.srv.URL))
	for i := 0; i < 5; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			for f.hits.Load() <= int64(i) {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		if _, err := p.Exchange(ctx, provider.Credentials{Code: "0a3Xs8000VL9bS1KfG200vJ5Nj1Xs80V"}); err == nil {
			t.Fatal("a canceled call succeeded")
		}
		cancel()
	}
	if res.BreakerOpen(provider.WeChat) {
		t.Error("callers going away opened the breaker")
	}
	if n := f.hits.Load(); n != 5 {
		t.Errorf("platform called %d times, want 5 (no retries of a canceled call)", n)
	}
}

func TestObserverSeesEveryAttempt(t *testing.T) {
	f := newFake(t, sequence(wxBusy, wxOK, wxBadCode))
	obs := &observer{}
	p := guarded(t, provider.NewResilience(fast(nil), obs), wxApp(f.srv.URL))
	_ = login(p)
	_ = login(p)
	calls, _ := obs.seen()
	want := "[wechat exchange unavailable:-1 wechat exchange ok wechat exchange code_invalid:40029]"
	if fmt.Sprint(calls) != want {
		t.Errorf("observed %q, want %s", calls, want)
	}
}

// bare implements only Exchange.
type bare struct{}

func (bare) Exchange(context.Context, provider.Credentials) (*provider.Identity, error) {
	return &provider.Identity{OpenID: "o"}, nil
}

func TestOptionalInterfacesSurviveTheWrapper(t *testing.T) {
	appKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	alipayKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := x509.MarshalPKCS8PrivateKey(appKey)
	pub, _ := x509.MarshalPKIXPublicKey(&alipayKey.PublicKey)
	res := provider.NewResilience(provider.ResilienceOptions{}, nil)
	for name, f := range platforms.Factories {
		t.Run(name, func(t *testing.T) {
			app := provider.App{
				Platform: name, AppID: "app-" + name, Secret: "secret-" + name, Timeout: time.Second,
				PrivateKeyPEM:        string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv})),
				PlatformPublicKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
			}
			p, err := f(app, provider.Env{Tokens: noTokens{}})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			checkSameInterfaces(t, p, res.Wrap(p, app))
		})
	}
	t.Run("bare", func(t *testing.T) {
		checkSameInterfaces(t, bare{}, res.Wrap(bare{}, provider.App{Platform: "bare"}))
	})
}

func checkSameInterfaces(t *testing.T, p, w provider.Provider) {
	t.Helper()
	_, tf := p.(provider.TokenFetcher)
	_, pc := p.(provider.PhoneByCode)
	_, ud := p.(provider.UserDataDecrypter)
	_, wtf := w.(provider.TokenFetcher)
	_, wpc := w.(provider.PhoneByCode)
	_, wud := w.(provider.UserDataDecrypter)
	if tf != wtf || pc != wpc || ud != wud {
		t.Errorf("provider is TokenFetcher %v PhoneByCode %v UserDataDecrypter %v; wrapped %v %v %v", tf, pc, ud, wtf, wpc, wud)
	}
}

type noTokens struct{}

func (noTokens) Token(context.Context, provider.App, provider.TokenFetcher) (string, error) {
	return "", errors.New("no tokens")
}
func (noTokens) Invalidate(context.Context, provider.App, string) error { return nil }

func TestWrappedMethodsReachThePlatform(t *testing.T) {
	// stable_token: busy once, then a token; getuserphonenumber: busy once,
	// then a number. Both are retried through the wrapper.
	var tokenHits, phoneHits atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc(wechat.StableTokenPath, func(w http.ResponseWriter, _ *http.Request) {
		if tokenHits.Add(1) == 1 {
			_, _ = w.Write([]byte(wxBusy))
			return
		}
		_, _ = w.Write([]byte(`{"access_token":"tok-1","expires_in":7200}`))
	})
	mux.HandleFunc(wechat.PhoneNumberPath, func(w http.ResponseWriter, _ *http.Request) {
		if phoneHits.Add(1) == 1 {
			_, _ = w.Write([]byte(wxBusy))
			return
		}
		_, _ = w.Write([]byte(`{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":"86","watermark":{"timestamp":1700000000,"appid":"wx4f4bc4dec97d474b"}}}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	obs := &observer{}
	reg, err := provider.NewRegistry([]provider.App{wxApp(srv.URL)}, platforms.Factories, provider.Env{
		Tokens:     &fetchingTokens{},
		Observer:   obs,
		Resilience: &provider.ResilienceOptions{Backoff: time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, p, _ := reg.Lookup(provider.WeChat, "wx4f4bc4dec97d474b")
	tok, err := p.(provider.TokenFetcher).FetchAccessToken(context.Background(), false)
	if err != nil || tok.Token != "tok-1" {
		t.Fatalf("FetchAccessToken = %+v, %v", tok, err)
	}
	tokenHits.Store(0)
	phone, err := p.(provider.PhoneByCode).PhoneNumber(context.Background(), "phone-code-0123456789")
	if err != nil || phone.PureNumber != "13800138000" {
		t.Fatalf("PhoneNumber = %+v, %v", phone, err)
	}
	calls, _ := obs.seen()
	want := "[wechat access_token unavailable:-1 wechat access_token ok " + // FetchAccessToken
		"wechat access_token unavailable:-1 wechat access_token ok " + // the broker's fetch inside PhoneNumber
		"wechat phone unavailable:-1 wechat access_token ok wechat phone ok]" // the retry takes a token again
	if fmt.Sprint(calls) != want {
		t.Errorf("observed %q,\nwant %s", calls, want)
	}
}

// fetchingTokens is a broker without a cache: it fetches a token for every
// call, with the fetcher it is given.
type fetchingTokens struct{}

func (fetchingTokens) Token(ctx context.Context, _ provider.App, f provider.TokenFetcher) (string, error) {
	t, err := f.FetchAccessToken(ctx, false)
	return t.Token, err
}
func (fetchingTokens) Invalidate(context.Context, provider.App, string) error { return nil }

func TestNestedTokenFetchErrorsAreNotRetriedAgain(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(wxBusy))
	}))
	defer srv.Close()
	reg, err := provider.NewRegistry([]provider.App{wxApp(srv.URL)}, platforms.Factories, provider.Env{
		Tokens:     &fetchingTokens{},
		Resilience: &provider.ResilienceOptions{Backoff: time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, p, _ := reg.Lookup(provider.WeChat, "wx4f4bc4dec97d474b")
	_, err = p.(provider.PhoneByCode).PhoneNumber(context.Background(), "phone-code-0123456789")
	if !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("PhoneNumber = %v, want ErrUnavailable", err)
	}
	// The fetch is tried twice; PhoneNumber does not multiply that.
	if n := hits.Load(); n != 2 {
		t.Errorf("stable_token called %d times, want 2", n)
	}
}

func TestRegistryWithoutResilienceKeepsProvidersBare(t *testing.T) {
	f := newFake(t, sequence(wxBusy, wxOK))
	reg, err := provider.NewRegistry([]provider.App{wxApp(f.srv.URL)}, platforms.Factories, provider.Env{})
	if err != nil {
		t.Fatal(err)
	}
	_, p, _ := reg.Lookup(provider.WeChat, "wx4f4bc4dec97d474b")
	if err := login(p); !errors.Is(err, provider.ErrUnavailable) || f.hits.Load() != 1 {
		t.Errorf("bare provider = %v after %d calls, want the busy answer after 1", err, f.hits.Load())
	}
}

// brokenTokens is a broker whose store is down.
type brokenTokens struct{}

func (brokenTokens) Token(context.Context, provider.App, provider.TokenFetcher) (string, error) {
	return "", errors.New("token store: connection refused")
}
func (brokenTokens) Invalidate(context.Context, provider.App, string) error { return nil }

// Our own token store failing says nothing about WeChat: it must not shut
// every app of the platform out.
func TestLocalBrokerFailuresDoNotOpenTheBreaker(t *testing.T) {
	f := newFake(t, sequence(wxOK))
	res := provider.NewResilience(fast(nil), &observer{})
	app := wxApp(f.srv.URL)
	bare, err := platforms.Factories[app.Platform](app, provider.Env{Tokens: brokenTokens{}})
	if err != nil {
		t.Fatal(err)
	}
	p := res.Wrap(bare, app).(provider.PhoneByCode)
	for i := 0; i < 10; i++ {
		_, err := p.PhoneNumber(context.Background(), "phone-code-0123456789")
		var pe *provider.Error
		if !errors.Is(err, provider.ErrUnavailable) || !errors.As(err, &pe) || !pe.Local || strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("PhoneNumber %d = %v, want a Local ErrUnavailable without the store's text", i, err)
		}
	}
	if res.BreakerOpen(provider.WeChat) {
		t.Errorf("token store failures opened the breaker")
	}
}

// deadlineRecorder is a provider whose first answer is a retryable failure
// at its deadline, and that records every call's deadline.
type deadlineRecorder struct {
	mu        sync.Mutex
	deadlines []time.Time
}

func (d *deadlineRecorder) Exchange(ctx context.Context, _ provider.Credentials) (*provider.Identity, error) {
	dl, _ := ctx.Deadline()
	d.mu.Lock()
	d.deadlines = append(d.deadlines, dl)
	first := len(d.deadlines) == 1
	d.mu.Unlock()
	if first {
		<-ctx.Done()
		return nil, &provider.Error{Kind: provider.ErrUnavailable, Platform: provider.WeChat, Retryable: true}
	}
	return &provider.Identity{OpenID: "o1"}, nil
}

func TestAllAttemptsEndByTwiceTheTimeout(t *testing.T) {
	rec := &deadlineRecorder{}
	app := wxApp("http://unused.invalid")
	app.Timeout = 100 * time.Millisecond
	p := provider.NewResilience(fast(nil), nil).Wrap(rec, app)
	if err := login(p); err != nil {
		t.Fatalf("Exchange = %v, want the retry's success", err)
	}
	if len(rec.deadlines) != 2 {
		t.Fatalf("%d attempts, want 2", len(rec.deadlines))
	}
	first, second := rec.deadlines[0], rec.deadlines[1]
	if first.IsZero() || second.IsZero() {
		t.Fatalf("an attempt had no deadline: %v", rec.deadlines)
	}
	// The retry starts after the first attempt's whole timeout, so a full
	// timeout of its own would end later than twice the timeout from the
	// start; it ends by then instead.
	if gap := second.Sub(first); gap > app.Timeout {
		t.Errorf("the retry's deadline is %v after the first's, want at most the timeout (%v): all attempts end by twice the timeout", gap, app.Timeout)
	}
}
