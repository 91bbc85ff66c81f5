package biz

import "context"

// Principal is the caller authenticated by an access token.
type Principal struct {
	UserID    string
	SessionID string
	Platform  string
	AppID     string
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
