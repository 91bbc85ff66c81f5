package biz

import (
	"context"
	"time"
)

// Principal is the caller authenticated by an access token.
type Principal struct {
	// UserID is the canonical user (aliases resolved).
	UserID    string
	SessionID string
	Platform  string
	AppID     string
	// IssuedAt and ExpiresAt are the access token's.
	IssuedAt  time.Time
	ExpiresAt time.Time
}

type principalKey struct{}

// NewPrincipalContext returns ctx carrying p.
func NewPrincipalContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFromContext returns the authenticated caller, if any.
func PrincipalFromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok
}

// Caller is a backend or operator authenticated by an API key.
type Caller struct {
	KeyID  string
	Scopes []string
}

type callerKey struct{}

// NewCallerContext returns ctx carrying c.
func NewCallerContext(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFromContext returns the API-key caller, if any.
func CallerFromContext(ctx context.Context) (*Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(*Caller)
	return c, ok
}
