// Package provider exchanges a platform's one-time login code for the user's
// identity on that platform. Each platform lives in its own subpackage and
// speaks its real wire format; this package holds what they share: the
// Provider interface, the typed errors and the registry of configured apps.
package provider

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Platform names as used in the API and in config.
const (
	WeChat   = "wechat"
	Alipay   = "alipay"
	Douyin   = "douyin"
	Kuaishou = "kuaishou"
	Baidu    = "baidu"
)

// Credentials is what the mini-program sent to log in.
type Credentials struct {
	// Code is the one-time login code (wx.login, my.getAuthCode, tt.login,
	// ks.login, swan.getLoginCode).
	Code string
	// AnonymousCode is Douyin's tt.login anonymousCode (guest login); empty
	// elsewhere.
	AnonymousCode string
}

// Identity is who the platform says the code belongs to.
type Identity struct {
	Platform string
	AppID    string
	// OpenID is stable per (user, app).
	OpenID string
	// UnionID is stable per (user, union scope); empty when the platform did
	// not return one.
	UnionID string
	// SessionKey decrypts the user's encrypted data; never leaves the server.
	SessionKey string
	// AnonymousOpenID is Douyin's guest id (anonymous_openid), returned when
	// the login carried an anonymous code. With no OpenID the login is a
	// guest login.
	AnonymousOpenID string
}

// Provider exchanges login codes for one configured app.
type Provider interface {
	Exchange(ctx context.Context, c Credentials) (*Identity, error)
}

// Env is what providers may use besides their app's config.
type Env struct {
	// Tokens is the shared platform access-token broker.
	Tokens AccessTokens
	// Observer, when set, is told about every platform call and circuit
	// breaker change of the providers NewRegistry wraps (see Resilience).
	Observer Observer
	// Resilience, when set, makes NewRegistry wrap every provider with
	// per-call deadlines, bounded retries of transient failures and a
	// circuit breaker per platform (see NewResilience); its zero value
	// means the defaults. nil leaves the providers bare, as tests of a
	// provider's own behaviour want them.
	Resilience *ResilienceOptions
}

// AccessToken is a platform access token of an app.
type AccessToken struct {
	Token     string
	ExpiresIn time.Duration
}

// TokenFetcher is implemented by providers whose platform issues app access
// tokens (WeChat stable_token, Baidu oauth/2.0/token, Douyin and Kuaishou
// client tokens). force asks the platform for a new token even if the
// current one is still valid, where the platform supports that.
type TokenFetcher interface {
	FetchAccessToken(ctx context.Context, force bool) (AccessToken, error)
}

// AccessTokens hands out an app's platform access token: cached and shared
// by every mpauth instance, refreshed ahead of expiry by one caller at a time.
type AccessTokens interface {
	// Token returns a valid token of app, fetching one with f when needed.
	Token(ctx context.Context, app App, f TokenFetcher) (string, error)
	// Invalidate reports that the platform rejected token: the next Token
	// call fetches a fresh one (forcing a refresh).
	Invalidate(ctx context.Context, app App, token string) error
}

// Phone is a verified phone number as the platform gives it.
type Phone struct {
	// Number includes the country code for non-mainland numbers.
	Number string
	// PureNumber has no country code.
	PureNumber  string
	CountryCode string
}

// Profile is the user's public profile as the platform gives it.
type Profile struct {
	Nickname  string
	AvatarURL string
}

// EncryptedData is encrypted user data sent by the mini-program.
type EncryptedData struct {
	Data string
	IV   string
	// Sign is Alipay's signature over Data (my.getPhoneNumber); empty elsewhere.
	Sign string
}

// PhoneByCode is implemented by platforms that turn a phone code from the
// mini-program into a number (WeChat getuserphonenumber).
type PhoneByCode interface {
	PhoneNumber(ctx context.Context, code string) (*Phone, error)
}

// UserDataDecrypter is implemented by platforms whose mini-programs send
// encrypted user data. sessionKey is the identity's stored session_key
// (ignored by Alipay, which uses the app's AES key). Implementations check
// the watermark where the platform has one.
type UserDataDecrypter interface {
	DecryptPhone(sessionKey string, d EncryptedData) (*Phone, error)
	DecryptProfile(sessionKey string, d EncryptedData) (*Profile, error)
}

// App is one configured mini-program.
type App struct {
	Platform   string
	AppID      string
	Secret     string
	UnionScope string
	// Endpoint, when set, replaces scheme://host[:port] of every URL the
	// app's provider calls.
	Endpoint string
	// Timeout bounds one platform call.
	Timeout time.Duration
	// PrivateKeyPEM is the app's private key (Alipay RSA2 request signing).
	PrivateKeyPEM string
	// PlatformPublicKeyPEM is the platform's public key (Alipay response
	// signatures).
	PlatformPublicKeyPEM string
	// AESKey is the app's content encryption key (Alipay), base64.
	AESKey string
	// IdentityField picks the per-app user id where the platform has two
	// (Alipay: "open_id", the default for new apps, or legacy "user_id").
	IdentityField string
	// AllowGuests accepts Douyin anonymous (guest) logins.
	AllowGuests bool
}

// URL returns base+path with the app's endpoint override applied to base.
func (a App) URL(base, path string) string {
	if a.Endpoint != "" {
		base = a.Endpoint
	}
	return strings.TrimSuffix(base, "/") + path
}

// ValidateEndpoint checks an endpoint override: scheme://host[:port] only.
func ValidateEndpoint(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return fmt.Errorf("must be scheme://host[:port] (for example http://127.0.0.1:8001), got %q", s)
	}
	return nil
}

// The kinds of failure every provider reports. Providers wrap them with
// details for the log (never secrets), and callers test with errors.Is.
var (
	// ErrCodeInvalid: the code is invalid, expired or belongs to another app.
	ErrCodeInvalid = errors.New("login code invalid or expired")
	// ErrCodeUsed: the code was already exchanged.
	ErrCodeUsed = errors.New("login code already used")
	// ErrRateLimited: the platform throttles this app or user.
	ErrRateLimited = errors.New("platform rate limit")
	// ErrUserBlocked: the platform refuses this user (risk control).
	ErrUserBlocked = errors.New("user blocked by the platform")
	// ErrUnavailable: busy, timeout, 5xx or an undecodable answer.
	ErrUnavailable = errors.New("platform unavailable")
	// ErrMisconfigured: the app's credentials or parameters are wrong.
	ErrMisconfigured = errors.New("platform rejected the app's configuration")
	// ErrGuestNotAllowed: an anonymous (guest) login for an app that does
	// not accept guests.
	ErrGuestNotAllowed = errors.New("guest login not enabled for this app")
	// ErrAccessTokenInvalid: the platform rejected the app's access token
	// (expired or replaced); invalidate it and retry once.
	ErrAccessTokenInvalid = errors.New("platform access token rejected")
	// ErrDecrypt: the encrypted data is malformed (bad base64, wrong IV or
	// block size) and can never be decrypted.
	ErrDecrypt = errors.New("encrypted data cannot be decrypted")
	// ErrSessionKeyStale: well-formed data that does not decrypt with the
	// stored session_key: the platform rotated it (the user logged in again
	// on the device); log in again and retry.
	ErrSessionKeyStale = errors.New("session key does not match the data")
	// ErrWatermark: the data decrypted but was issued for another app.
	ErrWatermark = errors.New("encrypted data is for another app")
	// ErrNotSupported: the platform does not offer this operation.
	ErrNotSupported = errors.New("not supported by this platform")
)

// Error is a platform failure of one of the kinds above, with the platform's
// own code and message for operators.
type Error struct {
	Kind     error
	Platform string
	// Code and Message are the platform's; they never contain secrets.
	Code    string
	Message string
	// RetryAfter is the platform's back-off hint, when it gave one.
	RetryAfter time.Duration
	// Retryable is true only when the platform certainly did not act on the
	// request (the connection was refused, an HTTP 5xx other than 504, the
	// platform's documented "system busy" answer), so that sending it again
	// cannot burn a single-use code. Never set after a timeout.
	Retryable bool
	// Local is true when the failure says nothing about the platform's
	// health: it is mpauth's own (the access-token store) or one app's
	// configuration (an Alipay answer that does not verify with the app's
	// alipay_public_key). Local failures do not open the breaker.
	Local bool
}

// BrokerError is the error of a provider whose access-token broker (see
// Env.Tokens) failed: the broker's platform error as is, or, for a failure
// of the broker itself, a Local PLATFORM_UNAVAILABLE (its text is not
// quoted: it may name database internals).
func BrokerError(platform string, err error) error {
	var pe *Error
	if errors.As(err, &pe) {
		return err
	}
	msg := "access-token broker failed"
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		msg += ": " + err.Error()
	}
	return &Error{Kind: ErrUnavailable, Platform: platform, Message: msg, Local: true}
}

func (e *Error) Error() string {
	s := e.Platform + ": " + e.Kind.Error()
	if e.Code != "" || e.Message != "" {
		s += fmt.Sprintf(" (platform code %s: %s)", e.Code, e.Message)
	}
	return s
}

func (e *Error) Unwrap() error { return e.Kind }

// Observer is told about every platform call and circuit-breaker change
// (metrics). Implementations must be cheap and safe for concurrent use.
type Observer interface {
	// PlatformCall reports one call to a platform: op names it ("exchange",
	// "access_token", "phone", "unionid"), result is "ok" or the failure
	// (the error kind and the platform's code).
	PlatformCall(platform, op, result string, d time.Duration)
	// BreakerState reports a platform's circuit breaker opening or closing.
	BreakerState(platform string, open bool)
}
