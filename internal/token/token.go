// Package token issues and verifies the server's own access tokens.
//
// Access tokens are JWS compact-serialised JWTs following RFC 9068 ("JWT
// Profile for OAuth 2.0 Access Tokens"): the header carries alg, kid and
// typ "at+jwt"; the payload carries iss, sub, aud, iat, exp, jti plus the
// private claims sid, platform and app_id.
//
// Signing keys are Ed25519 (EdDSA) or EC P-256 (ES256). A Manager holds
// several keys of which one is active (used for signing); all of them are
// used for verification and published by JWKS. Key rotation:
//
//  1. add the new key to Config.Keys (still signing with the old one), deploy
//     so that every verifier knows the new public key;
//  2. make the new key Config.ActiveKID; tokens signed by the old key keep
//     verifying until they expire;
//  3. after at least TTL (+ Leeway), remove the old key; any token still
//     signed by it is now invalid.
//
// A Manager is immutable and safe for concurrent use; to rotate keys at
// runtime, build a new Manager from the new Config and swap it in.
package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	// MaxTokenSize is the largest token Verify will attempt to parse, in
	// bytes. Longer input is rejected as invalid before any decoding.
	MaxTokenSize = 4096

	// Leeway is the clock skew tolerated when checking exp, nbf and iat.
	Leeway = 30 * time.Second

	// TokenType is the JWS "typ" header of access tokens (RFC 9068 §2.1).
	TokenType = "at+jwt"
)

var (
	// ErrInvalidToken is returned (possibly wrapped, with detail) by Verify
	// for every token that must not be accepted. Callers should test with
	// errors.Is(err, ErrInvalidToken).
	ErrInvalidToken = errors.New("token: invalid token")

	// ErrExpiredToken is returned by Verify for an authentic token whose exp
	// has passed. It wraps ErrInvalidToken, so errors.Is(err,
	// ErrInvalidToken) is also true; test errors.Is(err, ErrExpiredToken)
	// first to tell expiry apart (e.g. to prompt a refresh).
	ErrExpiredToken = fmt.Errorf("%w: expired", ErrInvalidToken)
)

// Config configures a Manager.
type Config struct {
	// Issuer is the "iss" claim put into and required from every token.
	Issuer string
	// Audience is the "aud" claim put into and required from every token.
	Audience string
	// TTL is the lifetime of tokens signed without an explicit ExpiresAt.
	TTL time.Duration
	// Keys are all keys that verify tokens and are published by JWKS.
	Keys []Key
	// ActiveKID selects the key used for signing. May be empty if there is
	// exactly one key.
	ActiveKID string
	// Now is the clock; nil means time.Now. For tests.
	Now func() time.Time
}

// Claims are the claims of an access token.
type Claims struct {
	Subject   string    // "sub": user id
	SessionID string    // "sid": login session id
	Platform  string    // "platform": mini-program platform
	AppID     string    // "app_id": mini-program app id
	ID        string    // "jti": unique token id
	IssuedAt  time.Time // "iat"
	ExpiresAt time.Time // "exp"

	// Issuer ("iss") and Audience ("aud") are always the Manager's
	// configured values: Sign overwrites them, Verify fills them in.
	Issuer   string
	Audience string
}

// wireClaims is the JSON form of Claims.
type wireClaims struct {
	Issuer    string           `json:"iss,omitempty"`
	Subject   string           `json:"sub,omitempty"`
	Audience  jwt.Audience     `json:"aud,omitempty"`
	IssuedAt  *jwt.NumericDate `json:"iat,omitempty"`
	NotBefore *jwt.NumericDate `json:"nbf,omitempty"`
	Expiry    *jwt.NumericDate `json:"exp,omitempty"`
	ID        string           `json:"jti,omitempty"`
	SessionID string           `json:"sid,omitempty"`
	Platform  string           `json:"platform,omitempty"`
	AppID     string           `json:"app_id,omitempty"`
}

type verificationKey struct {
	alg jose.SignatureAlgorithm
	pub crypto.PublicKey
}

// Manager signs and verifies access tokens. Create it with New.
type Manager struct {
	issuer    string
	audience  string
	ttl       time.Duration
	now       func() time.Time
	activeKID string
	signer    jose.Signer
	keys      map[string]verificationKey
	kids      []string // config order, for String
	algs      []jose.SignatureAlgorithm
	jwks      []byte
	verified  *verifiedCache
}

// maxVerified bounds the verified-token cache (a few MB at most).
const maxVerified = 16384

// verifiedCache remembers verified tokens by their SHA-256.
type verifiedCache struct {
	mu sync.Mutex
	m  map[[32]byte]Claims
}

func (v *verifiedCache) get(k [32]byte) (Claims, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	c, ok := v.m[k]
	return c, ok
}

func (v *verifiedCache) put(k [32]byte, c Claims) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= maxVerified {
		v.m = make(map[[32]byte]Claims, 1024) // simplest bound: start over
	}
	v.m[k] = c
}

// New validates cfg and builds a Manager. It fails if Issuer or Audience is
// empty, TTL <= 0, there are no keys, a key has an empty or duplicate ID or
// an unsupported type, or ActiveKID does not name one of the keys (an empty
// ActiveKID is allowed only with exactly one key).
func New(cfg Config) (*Manager, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("token: config: issuer is required")
	}
	if cfg.Audience == "" {
		return nil, errors.New("token: config: audience is required")
	}
	if cfg.TTL <= 0 {
		return nil, fmt.Errorf("token: config: TTL must be positive, got %s", cfg.TTL)
	}
	if len(cfg.Keys) == 0 {
		return nil, errors.New("token: config: at least one key is required")
	}

	m := &Manager{
		verified: &verifiedCache{},
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		ttl:      cfg.TTL,
		now:      cfg.Now,
		keys:     make(map[string]verificationKey, len(cfg.Keys)),
	}
	if m.now == nil {
		m.now = time.Now
	}

	jwks := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(cfg.Keys))}
	for i, k := range cfg.Keys {
		if k.ID == "" {
			return nil, fmt.Errorf("token: config: key #%d has an empty ID", i)
		}
		if _, dup := m.keys[k.ID]; dup {
			return nil, fmt.Errorf("token: config: duplicate key ID %q", k.ID)
		}
		if k.Signer == nil {
			return nil, fmt.Errorf("token: config: key %q has no signer", k.ID)
		}
		alg, pub, err := publicKeyAlg(k.Signer.Public())
		if err != nil {
			return nil, fmt.Errorf("token: config: key %q: %w", k.ID, err)
		}
		m.keys[k.ID] = verificationKey{alg: alg, pub: pub}
		m.kids = append(m.kids, k.ID)
		if !slices.Contains(m.algs, alg) {
			m.algs = append(m.algs, alg)
		}
		jwks.Keys = append(jwks.Keys, jose.JSONWebKey{
			Key:       pub,
			KeyID:     k.ID,
			Use:       "sig",
			Algorithm: string(alg),
		})
	}

	active := cfg.ActiveKID
	if active == "" {
		if len(cfg.Keys) != 1 {
			return nil, errors.New("token: config: active key ID is required when there is more than one key")
		}
		active = cfg.Keys[0].ID
	}
	var activeKey Key
	for _, k := range cfg.Keys {
		if k.ID == active {
			activeKey = k
		}
	}
	if activeKey.Signer == nil {
		return nil, fmt.Errorf("token: config: active key ID %q is not among the keys", active)
	}
	m.activeKID = active

	signer, err := newJoseSigner(activeKey, m.keys[active].alg)
	if err != nil {
		return nil, fmt.Errorf("token: config: active key %q: %w", active, err)
	}
	m.signer = signer

	m.jwks, err = json.Marshal(jwks)
	if err != nil {
		return nil, fmt.Errorf("token: config: encode JWKS: %w", err)
	}
	return m, nil
}

// kidSigner gives an opaque signer's public JWK our kid, so that go-jose
// writes it into the header.
type kidSigner struct {
	jose.OpaqueSigner
	jwk *jose.JSONWebKey
}

func (s kidSigner) Public() *jose.JSONWebKey { return s.jwk }

func newJoseSigner(k Key, alg jose.SignatureAlgorithm) (jose.Signer, error) {
	var key any
	switch priv := k.Signer.(type) {
	case ed25519.PrivateKey, *ecdsa.PrivateKey:
		key = jose.JSONWebKey{Key: priv, KeyID: k.ID, Algorithm: string(alg)}
	default:
		// Any other crypto.Signer (HSM, KMS, ...) via go-jose's adapter.
		key = kidSigner{
			OpaqueSigner: cryptosigner.Opaque(k.Signer),
			jwk:          &jose.JSONWebKey{Key: k.Signer.Public(), KeyID: k.ID, Algorithm: string(alg)},
		}
	}
	return jose.NewSigner(
		jose.SigningKey{Algorithm: alg, Key: key},
		(&jose.SignerOptions{}).WithType(TokenType),
	)
}

// TTL returns the configured token lifetime (e.g. for an "expires_in"
// response field).
func (m *Manager) TTL() time.Duration { return m.ttl }

// ActiveKID returns the kid of the key used for signing.
func (m *Manager) ActiveKID() string { return m.activeKID }

// String describes the Manager without any key material.
func (m *Manager) String() string {
	return fmt.Sprintf("token.Manager{Issuer: %q, Audience: %q, TTL: %s, ActiveKID: %q, KIDs: %q}",
		m.issuer, m.audience, m.ttl, m.activeKID, m.kids)
}

// GoString implements fmt.GoStringer (%#v) without any key material.
func (m *Manager) GoString() string { return m.String() }

// Sign signs an access token with the active key and returns it together
// with the claims actually put into it.
//
// Subject and SessionID are required. Issuer and Audience are set to the
// configured values (any input values are ignored). IssuedAt defaults to
// now, ExpiresAt to IssuedAt+TTL, and ID to a random 128-bit base64url
// string. Times are truncated to whole seconds (the JWT NumericDate
// resolution), so the returned claims equal what Verify will return.
func (m *Manager) Sign(c Claims) (string, Claims, error) {
	if c.Subject == "" {
		return "", Claims{}, errors.New("token: sign: subject is required")
	}
	if c.SessionID == "" {
		return "", Claims{}, errors.New("token: sign: session ID is required")
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = m.now()
	}
	c.IssuedAt = time.Unix(c.IssuedAt.Unix(), 0).UTC()
	if c.ExpiresAt.IsZero() {
		c.ExpiresAt = c.IssuedAt.Add(m.ttl)
	}
	c.ExpiresAt = time.Unix(c.ExpiresAt.Unix(), 0).UTC()
	if !c.ExpiresAt.After(c.IssuedAt) {
		return "", Claims{}, errors.New("token: sign: expiry must be after issued-at")
	}
	if c.ID == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", Claims{}, fmt.Errorf("token: sign: generate jti: %w", err)
		}
		c.ID = base64.RawURLEncoding.EncodeToString(b[:])
	}
	c.Issuer = m.issuer
	c.Audience = m.audience

	payload, err := json.Marshal(wireClaims{
		Issuer:    c.Issuer,
		Subject:   c.Subject,
		Audience:  jwt.Audience{c.Audience},
		IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
		Expiry:    jwt.NewNumericDate(c.ExpiresAt),
		ID:        c.ID,
		SessionID: c.SessionID,
		Platform:  c.Platform,
		AppID:     c.AppID,
	})
	if err != nil {
		return "", Claims{}, fmt.Errorf("token: sign: encode claims: %w", err)
	}
	jws, err := m.signer.Sign(payload)
	if err != nil {
		return "", Claims{}, fmt.Errorf("token: sign: %w", err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		return "", Claims{}, fmt.Errorf("token: sign: serialize: %w", err)
	}
	return tok, c, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidToken}, args...)...)
}

// Verify parses and verifies an access token and returns its claims.
//
// It accepts only compact JWS no longer than MaxTokenSize, signed with an
// algorithm of one of our keys, with typ "at+jwt" (or
// "application/at+jwt") and a kid naming one of our keys; the header alg
// must match that key's algorithm. It then checks the signature, iss, aud
// (one of the values must be ours), exp (required), nbf and iat (if
// present / not in the future), all with Leeway, and requires sub, sid and
// jti.
//
// Every failure satisfies errors.Is(err, ErrInvalidToken); an authentic but
// expired token additionally satisfies errors.Is(err, ErrExpiredToken).
func (m *Manager) Verify(token string) (*Claims, error) {
	// A token's signature and claims never change, so a verified token is
	// remembered until it expires: backends introspect the same token on
	// every request, and the signature check is most of the cost.
	key := sha256.Sum256([]byte(token))
	if c, ok := m.verified.get(key); ok {
		if !m.now().Before(c.ExpiresAt.Add(Leeway)) {
			return nil, ErrExpiredToken
		}
		return &c, nil
	}
	c, err := m.verify(token)
	if err != nil {
		return nil, err
	}
	m.verified.put(key, *c)
	return c, nil
}

// verify checks a token from scratch.
func (m *Manager) verify(token string) (*Claims, error) {
	if token == "" {
		return nil, invalid("empty")
	}
	if len(token) > MaxTokenSize {
		return nil, invalid("longer than %d bytes", MaxTokenSize)
	}
	if strings.Count(token, ".") != 2 {
		return nil, invalid("not a compact JWS")
	}
	jws, err := jose.ParseSignedCompact(token, m.algs)
	if err != nil {
		return nil, invalid("malformed: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, invalid("expected exactly one signature")
	}
	h := jws.Signatures[0].Protected

	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !strings.EqualFold(typ, TokenType) && !strings.EqualFold(typ, "application/"+TokenType) {
		return nil, invalid("wrong typ")
	}
	if h.KeyID == "" {
		return nil, invalid("missing kid")
	}
	key, ok := m.keys[h.KeyID]
	if !ok {
		return nil, invalid("unknown kid")
	}
	if jose.SignatureAlgorithm(h.Algorithm) != key.alg {
		return nil, invalid("alg does not match key")
	}

	payload, err := jws.Verify(key.pub)
	if err != nil {
		if errors.Is(err, jose.ErrCryptoFailure) {
			return nil, invalid("bad signature")
		}
		return nil, invalid("verification failed: %v", err)
	}

	var wc wireClaims
	if err := json.Unmarshal(payload, &wc); err != nil {
		return nil, invalid("malformed claims: %v", err)
	}
	if wc.Issuer != m.issuer {
		return nil, invalid("wrong issuer")
	}
	if !slices.Contains(wc.Audience, m.audience) {
		return nil, invalid("wrong audience")
	}
	if wc.Expiry == nil {
		return nil, invalid("missing exp")
	}
	if wc.IssuedAt == nil {
		return nil, invalid("missing iat")
	}
	if wc.Subject == "" {
		return nil, invalid("missing sub")
	}
	if wc.SessionID == "" {
		return nil, invalid("missing sid")
	}
	if wc.ID == "" {
		return nil, invalid("missing jti")
	}

	now := m.now()
	exp := wc.Expiry.Time()
	if !now.Before(exp.Add(Leeway)) {
		return nil, ErrExpiredToken
	}
	if wc.NotBefore != nil && now.Add(Leeway).Before(wc.NotBefore.Time()) {
		return nil, invalid("not valid yet")
	}
	iat := wc.IssuedAt.Time()
	if now.Add(Leeway).Before(iat) {
		return nil, invalid("issued in the future")
	}

	return &Claims{
		Subject:   wc.Subject,
		SessionID: wc.SessionID,
		Platform:  wc.Platform,
		AppID:     wc.AppID,
		ID:        wc.ID,
		IssuedAt:  iat.UTC(),
		ExpiresAt: exp.UTC(),
		Issuer:    wc.Issuer,
		Audience:  m.audience,
	}, nil
}

// JWKS returns the public key set (RFC 7517) of all configured keys as
// JSON, e.g. for /.well-known/jwks.json. It never contains private key
// parameters. The result is computed once in New; each call returns a fresh
// copy the caller may keep or modify.
func (m *Manager) JWKS() []byte {
	return slices.Clone(m.jwks)
}
