package provider

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// Defaults of ResilienceOptions.
const (
	// DefaultMaxRetries: one retry of a transient failure.
	DefaultMaxRetries = 1
	// DefaultRetryBackoff is the pause before the first retry (jittered
	// ±50%, doubled for each further one).
	DefaultRetryBackoff = 50 * time.Millisecond
	// DefaultBreakerFailures consecutive platform failures open its breaker.
	DefaultBreakerFailures = 5
	// DefaultBreakerOpenFor is how long an open breaker refuses calls
	// before it lets one probe through.
	DefaultBreakerOpenFor = 5 * time.Second
)

// MsgCircuitOpen is the Message of the ErrUnavailable a platform call gets
// while the platform's circuit breaker is open.
const MsgCircuitOpen = "circuit open"

// msgTimedOut is the Message of a platform call that timed out (Do).
const msgTimedOut = "timed out"

// ResilienceOptions tunes Resilience. Zero fields take the defaults.
type ResilienceOptions struct {
	// MaxRetries bounds the retries of a Retryable failure (0: default 1;
	// negative: none).
	MaxRetries int
	// Backoff is the pause before the first retry (0: 50ms).
	Backoff time.Duration
	// BreakerFailures is how many consecutive platform failures open the
	// platform's breaker (0: 5).
	BreakerFailures int
	// BreakerOpenFor is how long an open breaker refuses every call before
	// it lets one probe through (0: 5s).
	BreakerOpenFor time.Duration
}

func (o ResilienceOptions) withDefaults() ResilienceOptions {
	switch {
	case o.MaxRetries == 0:
		o.MaxRetries = DefaultMaxRetries
	case o.MaxRetries < 0:
		o.MaxRetries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultRetryBackoff
	}
	if o.BreakerFailures <= 0 {
		o.BreakerFailures = DefaultBreakerFailures
	}
	if o.BreakerOpenFor <= 0 {
		o.BreakerOpenFor = DefaultBreakerOpenFor
	}
	return o
}

// Resilience guards the calls to the platforms: each call is bounded by its
// app's timeout; a Retryable failure (the platform certainly did not act,
// so a single-use code is not burnt) is retried up to MaxRetries times
// after a short jittered pause; and one circuit breaker per platform,
// shared by all of the platform's apps, answers ErrUnavailable ("circuit
// open") at once, without a network call, while the platform keeps failing.
//
// The breaker is a consecutive-failure one: BreakerFailures platform
// failures in a row (ErrUnavailable: down, busy, slow, garbage; a user's
// bad code or a rate limit is the platform answering, not failing) open it
// for BreakerOpenFor; then one probe call goes through (the others are still
// refused) and closes it on an answer or opens it again on a failure.
// (aegis's SRE breaker was not used: it only ever drops a share of the
// calls, never all of them, and has no open period.)
//
// Every call is reported to the Observer, when there is one.
type Resilience struct {
	opts ResilienceOptions
	obs  Observer
	now  func() time.Time

	mu       sync.Mutex
	breakers map[string]*breaker
}

// NewResilience returns the resilience layer of one registry; obs may be
// nil.
func NewResilience(opts ResilienceOptions, obs Observer) *Resilience {
	return &Resilience{opts: opts.withDefaults(), obs: obs, now: time.Now, breakers: map[string]*breaker{}}
}

// Wrap returns p guarded by r for app. The result implements TokenFetcher,
// PhoneByCode and UserDataDecrypter exactly when p does (decryption is
// local and passed through as is).
func (r *Resilience) Wrap(p Provider, app App) Provider {
	w := &resilient{p: p, r: r, app: app, b: r.breaker(app.Platform)}
	tf, pc := tokenFetcher{w}, phoneByCode{w}
	_, isTF := p.(TokenFetcher)
	_, isPC := p.(PhoneByCode)
	ud, isUD := p.(UserDataDecrypter)
	switch {
	case isTF && isPC && isUD:
		return struct {
			*resilient
			tokenFetcher
			phoneByCode
			UserDataDecrypter
		}{w, tf, pc, ud}
	case isTF && isPC:
		return struct {
			*resilient
			tokenFetcher
			phoneByCode
		}{w, tf, pc}
	case isTF && isUD:
		return struct {
			*resilient
			tokenFetcher
			UserDataDecrypter
		}{w, tf, ud}
	case isPC && isUD:
		return struct {
			*resilient
			phoneByCode
			UserDataDecrypter
		}{w, pc, ud}
	case isTF:
		return struct {
			*resilient
			tokenFetcher
		}{w, tf}
	case isPC:
		return struct {
			*resilient
			phoneByCode
		}{w, pc}
	case isUD:
		return struct {
			*resilient
			UserDataDecrypter
		}{w, ud}
	default:
		return w
	}
}

// Tokens returns t with every access-token fetch it makes through a
// provider bounded, retried and observed like a platform call (op
// "access_token"). Such a fetch happens inside another guarded call (a
// login, a phone number), which holds the breaker, so it does not consult
// the breaker itself; and its errors come back not Retryable, so the outer
// call does not retry what was already retried.
func (r *Resilience) Tokens(t AccessTokens) AccessTokens {
	if t == nil {
		return nil
	}
	return resilientTokens{AccessTokens: t, r: r}
}

func (r *Resilience) breaker(platform string) *breaker {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.breakers[platform]
	if !ok {
		b = &breaker{platform: platform, failures: r.opts.BreakerFailures, openFor: r.opts.BreakerOpenFor, now: r.now, obs: r.obs}
		r.breakers[platform] = b
	}
	return b
}

// NotRetryable clears Retryable on err's *Error: for a failure after a
// single-use code was spent (a login's second step), or whose retries were
// already made. It returns err.
func NotRetryable(err error) error {
	var pe *Error
	if errors.As(err, &pe) {
		pe.Retryable = false
	}
	return err
}

// resilient is a guarded provider.
type resilient struct {
	p   Provider
	r   *Resilience
	app App
	b   *breaker
}

func (w *resilient) Exchange(ctx context.Context, c Credentials) (*Identity, error) {
	return guard(ctx, w.r, w.app, w.b, "exchange", func(ctx context.Context) (*Identity, error) {
		return w.p.Exchange(ctx, c)
	})
}

type tokenFetcher struct{ w *resilient }

func (t tokenFetcher) FetchAccessToken(ctx context.Context, force bool) (AccessToken, error) {
	f := t.w.p.(TokenFetcher)
	return guard(ctx, t.w.r, t.w.app, t.w.b, "access_token", func(ctx context.Context) (AccessToken, error) {
		return f.FetchAccessToken(ctx, force)
	})
}

type phoneByCode struct{ w *resilient }

func (p phoneByCode) PhoneNumber(ctx context.Context, code string) (*Phone, error) {
	f := p.w.p.(PhoneByCode)
	return guard(ctx, p.w.r, p.w.app, p.w.b, "phone", func(ctx context.Context) (*Phone, error) {
		return f.PhoneNumber(ctx, code)
	})
}

type resilientTokens struct {
	AccessTokens
	r *Resilience
}

func (t resilientTokens) Token(ctx context.Context, app App, f TokenFetcher) (string, error) {
	return t.AccessTokens.Token(ctx, app, nestedFetcher{f: f, r: t.r, app: app})
}

type nestedFetcher struct {
	f   TokenFetcher
	r   *Resilience
	app App
}

func (n nestedFetcher) FetchAccessToken(ctx context.Context, force bool) (AccessToken, error) {
	tok, err := guard(ctx, n.r, n.app, nil, "access_token", func(ctx context.Context) (AccessToken, error) {
		return n.f.FetchAccessToken(ctx, force)
	})
	return tok, NotRetryable(err)
}

// guard makes the call f: through the breaker b (nil: none), each attempt
// bounded by the app's timeout and all of them by twice that, retrying
// Retryable failures.
func guard[T any](ctx context.Context, r *Resilience, app App, b *breaker, op string, f func(context.Context) (T, error)) (T, error) {
	timeout := app.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// Each attempt gets one context, its deadline the earlier of its own
	// and all attempts' (no context for all of them besides: a login makes
	// one attempt, and a context costs allocations).
	deadline := time.Now().Add(2 * timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	var (
		v   T
		err error
	)
	for attempt := 0; ; attempt++ {
		if b != nil && !b.allow() {
			r.observe(app.Platform, op, "circuit_open", 0)
			if err == nil { // a retry refused keeps the failure it retries
				err = &Error{Kind: ErrUnavailable, Platform: app.Platform, Message: MsgCircuitOpen}
			}
			var zero T
			return zero, err
		}
		start := r.now()
		actx, acancel := context.WithDeadline(ctx, earlier(time.Now().Add(timeout), deadline))
		v, err = f(actx)
		acancel()
		d := r.now().Sub(start)
		if b != nil {
			b.record(outcomeOf(ctx, err))
		}
		r.observe(app.Platform, op, resultOf(err), d)
		if err == nil || attempt >= r.opts.MaxRetries || !retryable(err) || ctx.Err() != nil {
			return v, err
		}
		pause := r.opts.Backoff << attempt
		pause = pause/2 + rand.N(pause) // ±50%
		if time.Until(deadline) <= pause {
			return v, err
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return v, err
		}
	}
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func retryable(err error) bool {
	var pe *Error
	return errors.As(err, &pe) && pe.Retryable
}

func (r *Resilience) observe(platform, op, result string, d time.Duration) {
	if r.obs != nil {
		r.obs.PlatformCall(platform, op, result, d)
	}
}

// resultOf names the outcome of a call for the Observer: "ok", "timeout",
// "canceled", "circuit_open" (see guard), or the kind of failure
// ("unavailable", "code_invalid", ...) followed by ":" and the platform's
// code when it gave one ("unavailable:-1").
func resultOf(err error) string {
	if err == nil {
		return "ok"
	}
	if errors.Is(err, context.Canceled) {
		return "canceled"
	}
	var pe *Error
	isPE := errors.As(err, &pe)
	if isPE && errors.Is(err, ErrUnavailable) && pe.Code == "" && pe.Message == msgTimedOut {
		return "timeout"
	}
	kind := "error"
	for _, k := range kindNames {
		if errors.Is(err, k.err) {
			kind = k.name
			break
		}
	}
	if isPE && pe.Code != "" && labelSafe(pe.Code) {
		kind += ":" + pe.Code
	}
	return kind
}

var kindNames = []struct {
	err  error
	name string
}{
	{ErrCodeInvalid, "code_invalid"},
	{ErrCodeUsed, "code_used"},
	{ErrRateLimited, "rate_limited"},
	{ErrUserBlocked, "user_blocked"},
	{ErrUnavailable, "unavailable"},
	{ErrMisconfigured, "misconfigured"},
	{ErrGuestNotAllowed, "guest_not_allowed"},
	{ErrAccessTokenInvalid, "access_token_invalid"},
	{ErrDecrypt, "decrypt"},
	{ErrSessionKeyStale, "session_key_stale"},
	{ErrWatermark, "watermark"},
	{ErrNotSupported, "not_supported"},
}

// labelSafe accepts a platform code as a metric label value: short, and
// only [A-Za-z0-9._/-] (Alipay's are "40004/isv.code-invalid").
func labelSafe(s string) bool {
	if len(s) > 48 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '/', c == '-':
		default:
			return false
		}
	}
	return true
}

// outcome is what a call tells the breaker.
type outcome int

const (
	// answered: the platform is up (it answered, even "invalid code").
	answered outcome = iota
	// failed: the platform is down, busy, slow or talks garbage.
	failed
	// unknown: the call says nothing about the platform (the caller went
	// away, or it failed before reaching the platform).
	unknown
)

func outcomeOf(parent context.Context, err error) outcome {
	var pe *Error
	switch {
	case err == nil:
		return answered
	case errors.Is(parent.Err(), context.Canceled), errors.As(err, &pe) && pe.Local:
		return unknown
	case errors.Is(err, ErrUnavailable) && errors.As(err, &pe) && pe.Code != "" && !pe.Retryable:
		// The platform answered, with a code we do not know (or one about
		// this app): it is up. Its busy codes are Retryable.
		return answered
	case errors.Is(err, ErrUnavailable):
		return failed
	case !errors.As(err, &pe) || pe.Code == "":
		// Only an answer carrying the platform's own code proves the
		// platform answered; our own checks (an empty code) do not.
		return unknown
	default:
		return answered
	}
}

type breakerState int

const (
	closed breakerState = iota
	open
	halfOpen // one probe call is in flight
)

// breaker is one platform's consecutive-failure circuit breaker.
type breaker struct {
	platform string
	failures int
	openFor  time.Duration
	now      func() time.Time
	obs      Observer

	mu        sync.Mutex
	state     breakerState
	failed    int // consecutive failures while closed
	openUntil time.Time
}

// allow reports whether a call may go to the platform.
func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case closed:
		return true
	case open:
		if b.now().Before(b.openUntil) {
			return false
		}
		b.state = halfOpen
		return true
	default: // halfOpen: the probe is still out
		return false
	}
}

// record takes the outcome of a call allow admitted.
func (b *breaker) record(o outcome) {
	var notify, isOpen bool
	b.mu.Lock()
	switch o {
	case answered:
		b.failed = 0
		if b.state != closed {
			b.state, notify, isOpen = closed, true, false
		}
	case failed:
		switch b.state {
		case closed:
			b.failed++
			if b.failed >= b.failures {
				b.state, b.openUntil, notify, isOpen = open, b.now().Add(b.openFor), true, true
				b.failed = 0
			}
		case halfOpen:
			// The probe failed: stay open (already reported) for another
			// period.
			b.state, b.openUntil = open, b.now().Add(b.openFor)
		}
	case unknown:
		if b.state == halfOpen {
			// No verdict: the next call probes again.
			b.state = open
		}
	}
	b.mu.Unlock()
	if notify && b.obs != nil {
		b.obs.BreakerState(b.platform, isOpen)
	}
}
