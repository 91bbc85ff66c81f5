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
	WeChat = "wechat"
)

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
}

// Provider exchanges login codes for one configured app.
type Provider interface {
	Exchange(ctx context.Context, code string) (*Identity, error)
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
}

func (e *Error) Error() string {
	s := e.Platform + ": " + e.Kind.Error()
	if e.Code != "" || e.Message != "" {
		s += fmt.Sprintf(" (platform code %s: %s)", e.Code, e.Message)
	}
	return s
}

func (e *Error) Unwrap() error { return e.Kind }
