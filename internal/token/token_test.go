package token

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	testIssuer   = "https://auth.example.test"
	testAudience = "mp-api"
	testTTL      = 15 * time.Minute
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// ---- key helpers ----

func pemOf(t testing.TB, typ string, der []byte) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8PEM(t testing.TB, priv any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf(t, "PRIVATE KEY", der)
}

func newEdKey(t testing.TB, kid string) Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParsePrivateKeyPEM(kid, pkcs8PEM(t, priv))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newECKey(t testing.TB, kid string) Key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParsePrivateKeyPEM(kid, pkcs8PEM(t, priv))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type keyMaker struct {
	name string
	alg  string
	make func(t testing.TB, kid string) Key
}

var keyMakers = []keyMaker{
	{"EdDSA", "EdDSA", newEdKey},
	{"ES256", "ES256", newECKey},
}

func newManager(t testing.TB, c *clock, active string, keys ...Key) *Manager {
	t.Helper()
	m, err := New(Config{
		Issuer: testIssuer, Audience: testAudience, TTL: testTTL,
		Keys: keys, ActiveKID: active, Now: c.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

// rawSign signs signingInput with k the way JWS does for EdDSA/ES256.
func rawSign(t testing.TB, k Key, signingInput string) []byte {
	t.Helper()
	switch priv := k.Signer.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(priv, []byte(signingInput))
	case *ecdsa.PrivateKey:
		h := sha256.Sum256([]byte(signingInput))
		r, s, err := ecdsa.Sign(rand.Reader, priv, h[:])
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	default:
		t.Fatalf("unsupported key %T", k.Signer)
		return nil
	}
}

// craft builds a compact JWS with an arbitrary header and payload, signed by k.
func craft(t testing.TB, k Key, header, payload map[string]any) string {
	t.Helper()
	in := b64JSON(t, header) + "." + b64JSON(t, payload)
	return in + "." + b64(rawSign(t, k, in))
}

func validHeader(k Key) map[string]any {
	return map[string]any{"alg": k.Alg(), "kid": k.ID, "typ": "at+jwt"}
}

func validPayload() map[string]any {
	return map[string]any{
		"iss": testIssuer, "sub": "user-1", "aud": testAudience,
		"iat": t0.Unix(), "exp": t0.Add(testTTL).Unix(),
		"jti": "jti-1", "sid": "sess-1",
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func decodeSegment(t testing.TB, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

var sampleClaims = Claims{Subject: "user-1", SessionID: "sess-1", Platform: "wechat", AppID: "wx123"}

// ---- sign / verify ----

func TestSignThenVerifyRoundTrips(t *testing.T) {
	for _, km := range keyMakers {
		t.Run(km.name, func(t *testing.T) {
			c := &clock{t: t0}
			m := newManager(t, c, "", km.make(t, "k1"))
			tok, signed, err := m.Sign(sampleClaims)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := Claims{
				Subject: "user-1", SessionID: "sess-1", Platform: "wechat", AppID: "wx123",
				ID: signed.ID, IssuedAt: t0, ExpiresAt: t0.Add(testTTL),
				Issuer: testIssuer, Audience: testAudience,
			}
			if *got != want || signed != want {
				t.Fatalf("claims mismatch\n verified %+v\n signed   %+v\n want     %+v", *got, signed, want)
			}
		})
	}
}

func TestSignFillsDefaultsAndKeepsExplicitValues(t *testing.T) {
	c := &clock{t: t0.Add(123 * time.Millisecond)}
	m := newManager(t, c, "", newEdKey(t, "k1"))

	_, a, err := m.Sign(Claims{Subject: "u", SessionID: "s", Issuer: "evil", Audience: "evil"})
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := m.Sign(Claims{Subject: "u", SessionID: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Issuer != testIssuer || a.Audience != testAudience {
		t.Errorf("iss/aud not forced to config: %q %q", a.Issuer, a.Audience)
	}
	if !a.IssuedAt.Equal(t0) || !a.ExpiresAt.Equal(t0.Add(testTTL)) {
		t.Errorf("iat/exp = %v/%v, want %v/%v (truncated to seconds)", a.IssuedAt, a.ExpiresAt, t0, t0.Add(testTTL))
	}
	if raw, err := base64.RawURLEncoding.DecodeString(a.ID); err != nil || len(raw) != 16 {
		t.Errorf("jti %q is not 128-bit base64url (err %v)", a.ID, err)
	}
	if a.ID == b.ID {
		t.Errorf("jti repeated: %q", a.ID)
	}

	exp := t0.Add(2 * time.Minute)
	tok, e, err := m.Sign(Claims{Subject: "u", SessionID: "s", ID: "my-jti", IssuedAt: t0, ExpiresAt: exp})
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "my-jti" || !e.ExpiresAt.Equal(exp) {
		t.Errorf("explicit jti/exp not kept: %+v", e)
	}
	if got, err := m.Verify(tok); err != nil || !got.ExpiresAt.Equal(exp) {
		t.Errorf("Verify = %+v, %v", got, err)
	}
}

func TestSignRejectsIncompleteClaims(t *testing.T) {
	m := newManager(t, &clock{t: t0}, "", newEdKey(t, "k1"))
	tests := []struct {
		name string
		c    Claims
	}{
		{"missing subject", Claims{SessionID: "s"}},
		{"missing session id", Claims{Subject: "u"}},
		{"expiry before issued-at", Claims{Subject: "u", SessionID: "s", IssuedAt: t0, ExpiresAt: t0.Add(-time.Second)}},
		{"expiry equals issued-at", Claims{Subject: "u", SessionID: "s", IssuedAt: t0, ExpiresAt: t0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tok, _, err := m.Sign(tt.c); err == nil {
				t.Fatalf("Sign succeeded: %s", tok)
			}
		})
	}
}

func TestTokenHeaderCarriesAlgKidAndTypAtJWT(t *testing.T) {
	for _, km := range keyMakers {
		t.Run(km.name, func(t *testing.T) {
			m := newManager(t, &clock{t: t0}, "", km.make(t, "kid-123"))
			tok, _, err := m.Sign(sampleClaims)
			if err != nil {
				t.Fatal(err)
			}
			h := decodeSegment(t, tok, 0)
			want := map[string]any{"alg": km.alg, "kid": "kid-123", "typ": "at+jwt"}
			if len(h) != len(want) {
				t.Errorf("header = %v, want %v", h, want)
			}
			for k, v := range want {
				if h[k] != v {
					t.Errorf("header[%q] = %v, want %v", k, h[k], v)
				}
			}
		})
	}
}

func TestPayloadUsesRegisteredClaimNames(t *testing.T) {
	m := newManager(t, &clock{t: t0}, "", newEdKey(t, "k1"))
	tok, c, err := m.Sign(sampleClaims)
	if err != nil {
		t.Fatal(err)
	}
	p := decodeSegment(t, tok, 1)
	want := map[string]any{
		"iss": testIssuer, "sub": "user-1", "aud": testAudience,
		"iat": float64(t0.Unix()), "exp": float64(t0.Add(testTTL).Unix()),
		"jti": c.ID, "sid": "sess-1", "platform": "wechat", "app_id": "wx123",
	}
	if len(p) != len(want) {
		t.Errorf("payload = %v, want %v", p, want)
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("payload[%q] = %v, want %v", k, p[k], v)
		}
	}
}

// A backend holding only the published JWKS can verify our tokens.
func TestTokenVerifiesWithPublishedJWKS(t *testing.T) {
	for _, km := range keyMakers {
		t.Run(km.name, func(t *testing.T) {
			// Two keys so the lookup by kid matters.
			active, other := km.make(t, "active"), newEdKey(t, "other")
			m := newManager(t, &clock{t: t0}, "active", active, other)
			tok, _, err := m.Sign(sampleClaims)
			if err != nil {
				t.Fatal(err)
			}

			var set jose.JSONWebKeySet
			if err := json.Unmarshal(m.JWKS(), &set); err != nil {
				t.Fatal(err)
			}
			jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(km.alg)})
			if err != nil {
				t.Fatal(err)
			}
			kid := jws.Signatures[0].Header.KeyID
			found := set.Key(kid)
			if len(found) != 1 {
				t.Fatalf("JWKS has %d keys with kid %q", len(found), kid)
			}
			if !found[0].IsPublic() || found[0].Algorithm != km.alg || found[0].Use != "sig" {
				t.Fatalf("JWKS key = %+v", found[0])
			}
			payload, err := jws.Verify(found[0])
			if err != nil {
				t.Fatalf("verify with JWKS key: %v", err)
			}
			var claims map[string]any
			if err := json.Unmarshal(payload, &claims); err != nil || claims["sub"] != "user-1" {
				t.Fatalf("payload %s: %v", payload, err)
			}
			// And the other key in the set must not verify it.
			if _, err := jws.Verify(set.Key("other")[0]); err == nil {
				t.Fatal("token verified with the wrong JWKS key")
			}
		})
	}
}

func TestJWKSPublishesOnlyPublicParameters(t *testing.T) {
	ed, ec := newEdKey(t, "ed"), newECKey(t, "ec")
	m := newManager(t, &clock{t: t0}, "ed", ed, ec)
	raw := m.JWKS()

	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != 2 {
		t.Fatalf("JWKS has %d keys: %s", len(doc.Keys), raw)
	}
	want := map[string]map[string]string{
		"ed": {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig"},
		"ec": {"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig"},
	}
	for _, k := range doc.Keys {
		kid, _ := k["kid"].(string)
		w, ok := want[kid]
		if !ok {
			t.Fatalf("unexpected kid %q", kid)
		}
		for name, v := range w {
			if k[name] != v {
				t.Errorf("%s: %s = %v, want %s", kid, name, k[name], v)
			}
		}
		wantFields := []string{"kid", "kty", "crv", "alg", "use", "x"}
		if kid == "ec" {
			wantFields = append(wantFields, "y")
		}
		if len(k) != len(wantFields) {
			t.Errorf("%s has fields %v, want exactly %v", kid, k, wantFields)
		}
		for _, f := range wantFields {
			if _, ok := k[f]; !ok {
				t.Errorf("%s lacks %q", kid, f)
			}
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[private]; ok {
				t.Errorf("%s contains private member %q", kid, private)
			}
		}
	}
	if strings.Contains(string(raw), `"d"`) {
		t.Errorf(`JWKS contains "d": %s`, raw)
	}

	// Callers get a copy; mutating it does not affect the Manager.
	raw[0] = 'X'
	if m.JWKS()[0] != '{' {
		t.Error("JWKS returned the internal buffer")
	}
}

func TestVerifyRejectsInvalidTokens(t *testing.T) {
	c := &clock{t: t0}
	ed := newEdKey(t, "ed")
	ec := newECKey(t, "ec")
	m := newManager(t, c, "ed", ed, ec)

	good, _, err := m.Sign(sampleClaims)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")

	otherIssuer, err := New(Config{Issuer: "https://evil.test", Audience: testAudience, TTL: testTTL, Keys: []Key{ed}, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	otherAudience, err := New(Config{Issuer: testIssuer, Audience: "other-api", TTL: testTTL, Keys: []Key{ed}, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	signWith := func(mm *Manager) string {
		tok, _, err := mm.Sign(sampleClaims)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	// HS256 "signed" with various public representations of our key.
	edPub := []byte(ed.Signer.Public().(ed25519.PublicKey))
	ecPubDER, _ := x509.MarshalPKIXPublicKey(ec.Signer.Public())
	ecPoint, _ := ec.Signer.Public().(*ecdsa.PublicKey).Bytes()
	hs256 := func(kid string, key []byte) string {
		in := b64JSON(t, map[string]any{"alg": "HS256", "kid": kid, "typ": "at+jwt"}) + "." + b64JSON(t, validPayload())
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(in))
		return in + "." + b64(mac.Sum(nil))
	}

	tamperedPayload := parts[0] + "." + b64JSON(t, with(validPayload(), "sub", "admin")) + "." + parts[2]
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[0] ^= 0x01
	tamperedSig := parts[0] + "." + parts[1] + "." + b64(sig)

	jsonSerialised := func() string {
		jws, err := jose.ParseSignedCompact(good, []jose.SignatureAlgorithm{jose.EdDSA})
		if err != nil {
			t.Fatal(err)
		}
		return jws.FullSerialize()
	}()

	big := sampleClaims
	big.Platform = strings.Repeat("p", MaxTokenSize)
	oversized, _, err := m.Sign(big) // validly signed, just too long
	if err != nil {
		t.Fatal(err)
	}
	if len(oversized) <= MaxTokenSize {
		t.Fatalf("oversized token is only %d bytes", len(oversized))
	}

	tests := []struct {
		name  string
		token string
	}{
		{"empty string", ""},
		{"garbage word", "garbage"},
		{"garbage three dots", "a.b.c"},
		{"garbage only dots", ".."},
		{"garbage too many parts", good + ".x"},
		{"garbage non-base64", "!!!.@@@.###"},
		{"garbage header not JSON", b64([]byte("hello")) + "." + parts[1] + "." + parts[2]},
		{"whitespace around token", " " + good + " "},
		{"JWS JSON serialisation", jsonSerialised},
		{"oversized token", oversized},
		{"tampered payload", tamperedPayload},
		{"tampered signature", tamperedSig},
		{"truncated signature", parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-4]},
		{"empty signature", parts[0] + "." + parts[1] + "."},
		{"wrong issuer", signWith(otherIssuer)},
		{"wrong audience", signWith(otherAudience)},
		{"unknown kid", signWith(newManager(t, c, "", newEdKey(t, "stranger")))},
		{"missing kid", craft(t, ed, with(validHeader(ed), "kid", nil), validPayload())},
		{"empty kid", craft(t, ed, with(validHeader(ed), "kid", ""), validPayload())},
		{"kid not a string", craft(t, ed, with(validHeader(ed), "kid", 7), validPayload())},
		{"other key with our kid (EdDSA)", signWith(newManager(t, c, "", newEdKey(t, "ed")))},
		{"other key with our kid (ES256)", signWith(newManager(t, c, "", newECKey(t, "ec")))},
		{"alg mismatch: ES256 header on EdDSA kid", craft(t, ec, with(validHeader(ec), "kid", "ed"), validPayload())},
		{"alg mismatch: EdDSA header on ES256 kid", craft(t, ed, with(validHeader(ed), "kid", "ec"), validPayload())},
		{"alg none", b64JSON(t, map[string]any{"alg": "none", "kid": "ed", "typ": "at+jwt"}) + "." + b64JSON(t, validPayload()) + "."},
		{"alg none with signature", b64JSON(t, map[string]any{"alg": "none", "kid": "ed", "typ": "at+jwt"}) + "." + b64JSON(t, validPayload()) + "." + parts[2]},
		{"alg NONE uppercase", b64JSON(t, map[string]any{"alg": "NONE", "kid": "ed", "typ": "at+jwt"}) + "." + b64JSON(t, validPayload()) + "."},
		{"HS256 keyed with Ed25519 public key bytes", hs256("ed", edPub)},
		{"HS256 keyed with Ed25519 JWK x", hs256("ed", []byte(b64(edPub)))},
		{"HS256 keyed with P-256 public key DER", hs256("ec", ecPubDER)},
		{"HS256 keyed with P-256 public key PEM", hs256("ec", pemOf(t, "PUBLIC KEY", ecPubDER))},
		{"HS256 keyed with P-256 point", hs256("ec", ecPoint)},
		{"HS256 keyed with JWKS document", hs256("ed", m.JWKS())},
		{"wrong typ JWT", craft(t, ed, with(validHeader(ed), "typ", "JWT"), validPayload())},
		{"wrong typ id_token-ish", craft(t, ed, with(validHeader(ed), "typ", "dpop+jwt"), validPayload())},
		{"missing typ", craft(t, ed, with(validHeader(ed), "typ", nil), validPayload())},
		{"unsupported crit header", craft(t, ed, with(validHeader(ed), "crit", []string{"exp"}, "exp", 1), validPayload())},
		{"payload not JSON", func() string {
			in := b64JSON(t, validHeader(ed)) + "." + b64([]byte("not json"))
			return in + "." + b64(rawSign(t, ed, in))
		}()},
		{"payload JSON array", func() string {
			in := b64JSON(t, validHeader(ed)) + "." + b64([]byte("[1,2]"))
			return in + "." + b64(rawSign(t, ed, in))
		}()},
		{"sub wrong type", craft(t, ed, validHeader(ed), with(validPayload(), "sub", 42))},
		{"missing sub", craft(t, ed, validHeader(ed), with(validPayload(), "sub", nil))},
		{"missing sid", craft(t, ed, validHeader(ed), with(validPayload(), "sid", nil))},
		{"missing jti", craft(t, ed, validHeader(ed), with(validPayload(), "jti", nil))},
		{"missing exp", craft(t, ed, validHeader(ed), with(validPayload(), "exp", nil))},
		{"missing iat", craft(t, ed, validHeader(ed), with(validPayload(), "iat", nil))},
		{"missing iss", craft(t, ed, validHeader(ed), with(validPayload(), "iss", nil))},
		{"missing aud", craft(t, ed, validHeader(ed), with(validPayload(), "aud", nil))},
		{"aud array without ours", craft(t, ed, validHeader(ed), with(validPayload(), "aud", []string{"a", "b"}))},
		{"exp not a number", craft(t, ed, validHeader(ed), with(validPayload(), "exp", "tomorrow"))},
		{"exp absurdly large", craft(t, ed, validHeader(ed), with(validPayload(), "exp", 1e300))},
		{"nbf in the future", craft(t, ed, validHeader(ed), with(validPayload(), "nbf", t0.Add(time.Hour).Unix()))},
		{"iat in the future", craft(t, ed, validHeader(ed), with(validPayload(), "iat", t0.Add(time.Hour).Unix(), "exp", t0.Add(2*time.Hour).Unix()))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Verify(tt.token)
			if err == nil {
				t.Fatalf("Verify accepted the token: %+v", got)
			}
			t.Log(err)
			if got != nil {
				t.Errorf("Verify returned claims with an error: %+v", got)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("err = %v, want ErrInvalidToken", err)
			}
			if errors.Is(err, ErrExpiredToken) {
				t.Errorf("err = %v, must not be ErrExpiredToken", err)
			}
		})
	}

	// Sanity: the untampered token and well-formed crafted tokens verify,
	// so the rejections above are for the stated reasons.
	for name, tok := range map[string]string{
		"signed":                 good,
		"crafted EdDSA":          craft(t, ed, validHeader(ed), validPayload()),
		"crafted ES256":          craft(t, ec, validHeader(ec), validPayload()),
		"typ application/at+jwt": craft(t, ed, with(validHeader(ed), "typ", "application/at+jwt"), validPayload()),
		"aud array with ours":    craft(t, ed, validHeader(ed), with(validPayload(), "aud", []string{"x", testAudience})),
		"nbf in the past":        craft(t, ed, validHeader(ed), with(validPayload(), "nbf", t0.Unix())),
	} {
		if _, err := m.Verify(tok); err != nil {
			t.Errorf("control %q rejected: %v", name, err)
		}
	}
}

func TestVerifyReportsExpiryDistinctlyWithLeeway(t *testing.T) {
	c := &clock{t: t0}
	m := newManager(t, c, "", newECKey(t, "k1"))
	tok, claims, err := m.Sign(sampleClaims)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		now     time.Time
		expired bool
	}{
		{"fresh", t0, false},
		{"one second before exp", claims.ExpiresAt.Add(-time.Second), false},
		{"at exp, within leeway", claims.ExpiresAt, false},
		{"just inside leeway", claims.ExpiresAt.Add(Leeway - time.Second), false},
		{"at end of leeway", claims.ExpiresAt.Add(Leeway), true},
		{"long expired", claims.ExpiresAt.Add(24 * time.Hour), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.Set(tt.now)
			_, err := m.Verify(tok)
			if !tt.expired {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrExpiredToken) || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrExpiredToken that is also ErrInvalidToken", err)
			}
		})
	}

	// A forged expired token is a plain invalid token, not "expired".
	c.Set(claims.ExpiresAt.Add(time.Hour))
	forged := newManager(t, c, "", newECKey(t, "k1"))
	c.Set(t0)
	ftok, _, err := forged.Sign(sampleClaims)
	if err != nil {
		t.Fatal(err)
	}
	c.Set(claims.ExpiresAt.Add(time.Hour))
	if _, err := m.Verify(ftok); !errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrExpiredToken) {
		t.Fatalf("forged expired token: err = %v, want invalid but not expired", err)
	}
}

func TestRotationKeepsOldTokensValidUntilKeyRemoved(t *testing.T) {
	for _, km := range keyMakers {
		t.Run(km.name, func(t *testing.T) {
			c := &clock{t: t0}
			oldKey, newKey := km.make(t, "2030-01"), newEdKey(t, "2030-02")

			before := newManager(t, c, "", oldKey)
			oldTok, _, err := before.Sign(sampleClaims)
			if err != nil {
				t.Fatal(err)
			}

			rotated := newManager(t, c, "2030-02", oldKey, newKey)
			if got := rotated.ActiveKID(); got != "2030-02" {
				t.Fatalf("ActiveKID = %q", got)
			}
			if _, err := rotated.Verify(oldTok); err != nil {
				t.Fatalf("old token rejected after rotation: %v", err)
			}
			newTok, _, err := rotated.Sign(sampleClaims)
			if err != nil {
				t.Fatal(err)
			}
			if kid := decodeSegment(t, newTok, 0)["kid"]; kid != "2030-02" {
				t.Fatalf("new token kid = %v", kid)
			}
			if _, err := rotated.Verify(newTok); err != nil {
				t.Fatal(err)
			}
			// Old-key manager does not know the new key yet.
			if _, err := before.Verify(newTok); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("new token accepted by manager without the new key: %v", err)
			}

			// Old key retired: its tokens are invalid.
			retired := newManager(t, c, "", newKey)
			if _, err := retired.Verify(oldTok); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("token of removed key: err = %v, want ErrInvalidToken", err)
			}
			if _, err := retired.Verify(newTok); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNewValidatesConfig(t *testing.T) {
	k1, k2 := newEdKey(t, "k1"), newECKey(t, "k2")
	base := Config{Issuer: testIssuer, Audience: testAudience, TTL: testTTL, Keys: []Key{k1}}
	mod := func(f func(*Config)) Config { c := base; f(&c); return c }

	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"valid single key, empty active", base, ""},
		{"valid two keys with active", mod(func(c *Config) { c.Keys = []Key{k1, k2}; c.ActiveKID = "k2" }), ""},
		{"no keys", mod(func(c *Config) { c.Keys = nil }), "at least one key"},
		{"duplicate kid", mod(func(c *Config) { c.Keys = []Key{k1, {ID: "k1", Signer: k2.Signer}}; c.ActiveKID = "k1" }), "duplicate key ID"},
		{"active kid unknown", mod(func(c *Config) { c.ActiveKID = "nope" }), "not among the keys"},
		{"empty active with two keys", mod(func(c *Config) { c.Keys = []Key{k1, k2} }), "active key ID is required"},
		{"empty issuer", mod(func(c *Config) { c.Issuer = "" }), "issuer"},
		{"empty audience", mod(func(c *Config) { c.Audience = "" }), "audience"},
		{"zero TTL", mod(func(c *Config) { c.TTL = 0 }), "TTL"},
		{"negative TTL", mod(func(c *Config) { c.TTL = -time.Second }), "TTL"},
		{"empty key ID", mod(func(c *Config) { c.Keys = []Key{{Signer: k1.Signer}} }), "empty ID"},
		{"nil signer", mod(func(c *Config) { c.Keys = []Key{{ID: "x"}} }), "no signer"},
		{"RSA signer", mod(func(c *Config) { c.Keys = []Key{{ID: "rsa", Signer: testRSAKey(t)}} }), "RSA keys are not supported"},
		{"P-384 signer", mod(func(c *Config) {
			p, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			c.Keys = []Key{{ID: "p384", Signer: p}}
		}), "P-384"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil || m == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New succeeded, want error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// opaqueSigner hides the concrete key type, like an HSM/KMS signer would.
type opaqueSigner struct{ s crypto.Signer }

func (o opaqueSigner) Public() crypto.PublicKey { return o.s.Public() }
func (o opaqueSigner) Sign(r io.Reader, d []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.s.Sign(r, d, opts)
}

func TestOpaqueCryptoSignerSignsVerifiableTokens(t *testing.T) {
	for _, km := range keyMakers {
		t.Run(km.name, func(t *testing.T) {
			c := &clock{t: t0}
			k := km.make(t, "hsm")
			m := newManager(t, c, "", Key{ID: "hsm", Signer: opaqueSigner{k.Signer}})
			tok, _, err := m.Sign(sampleClaims)
			if err != nil {
				t.Fatal(err)
			}
			h := decodeSegment(t, tok, 0)
			if h["kid"] != "hsm" || h["typ"] != "at+jwt" || h["alg"] != km.alg {
				t.Fatalf("header = %v", h)
			}
			// Verifiable by a manager holding the plain key.
			if _, err := newManager(t, c, "", k).Verify(tok); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestVerifyIsSafeForConcurrentUse(t *testing.T) {
	c := &clock{t: t0}
	m := newManager(t, c, "", newEdKey(t, "k1"))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			tok, _, err := m.Sign(sampleClaims)
			if err == nil {
				_, err = m.Verify(tok)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// ---- keys ----

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func testRSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		var err error
		rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
	})
	return rsaKey
}

func TestParsePrivateKeyPEMAcceptsSupportedKeys(t *testing.T) {
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, err := x509.MarshalECPrivateKey(ecPriv)
	if err != nil {
		t.Fatal(err)
	}
	ecParams := pemOf(t, "EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})

	tests := []struct {
		name    string
		pem     []byte
		wantAlg string
		pub     crypto.PublicKey
	}{
		{"PKCS#8 Ed25519", pkcs8PEM(t, edPriv), "EdDSA", edPriv.Public()},
		{"PKCS#8 EC P-256", pkcs8PEM(t, ecPriv), "ES256", ecPriv.Public()},
		{"SEC1 EC P-256", pemOf(t, "EC PRIVATE KEY", sec1), "ES256", ecPriv.Public()},
		{"SEC1 EC P-256 after EC PARAMETERS", append(ecParams, pemOf(t, "EC PRIVATE KEY", sec1)...), "ES256", ecPriv.Public()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParsePrivateKeyPEM("given", tt.pem)
			if err != nil {
				t.Fatal(err)
			}
			if k.ID != "given" || k.Alg() != tt.wantAlg {
				t.Fatalf("got kid %q alg %q", k.ID, k.Alg())
			}
			if !k.Signer.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tt.pub) {
				t.Fatal("public key mismatch")
			}

			// Empty kid: RFC 7638 thumbprint.
			k2, err := ParsePrivateKeyPEM("", tt.pem)
			if err != nil {
				t.Fatal(err)
			}
			jwk := jose.JSONWebKey{Key: tt.pub}
			tp, _ := jwk.Thumbprint(crypto.SHA256)
			if k2.ID != b64(tp) {
				t.Fatalf("derived kid %q, want thumbprint %q", k2.ID, b64(tp))
			}
		})
	}
}

func TestParsePrivateKeyPEMRejectsUnsupportedInput(t *testing.T) {
	rsaPriv := testRSAKey(t)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384SEC1, _ := x509.MarshalECPrivateKey(p384)
	x25519, _ := ecdh.X25519().GenerateKey(rand.Reader)
	edPubDER, _ := x509.MarshalPKIXPublicKey(newEdKey(t, "x").Signer.Public())
	junk := make([]byte, 64)
	rand.Read(junk)

	tests := []struct {
		name    string
		pem     []byte
		wantErr string
	}{
		{"RSA PKCS#8", pkcs8PEM(t, rsaPriv), "RSA keys are not supported"},
		{"RSA PKCS#1", pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaPriv)), "RSA keys are not supported"},
		{"EC P-384 PKCS#8", pkcs8PEM(t, p384), "P-384 is not supported"},
		{"EC P-384 SEC1", pemOf(t, "EC PRIVATE KEY", p384SEC1), "P-384 is not supported"},
		{"X25519 PKCS#8", pkcs8PEM(t, x25519), "*ecdh.PrivateKey is not supported"},
		{"public key", pemOf(t, "PUBLIC KEY", edPubDER), `unsupported PEM block type "PUBLIC KEY"`},
		{"encrypted PKCS#8", pemOf(t, "ENCRYPTED PRIVATE KEY", junk), "encrypted"},
		{"legacy encrypted PEM", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: junk}), "encrypted"},
		{"corrupt PKCS#8 DER", pemOf(t, "PRIVATE KEY", junk), "invalid PKCS#8 key"},
		{"corrupt SEC1 DER", pemOf(t, "EC PRIVATE KEY", junk), "invalid SEC1 EC key"},
		{"garbage", []byte("this is not a key"), "no PEM block found"},
		{"empty", nil, "no PEM block found"},
		{"only EC PARAMETERS", pemOf(t, "EC PARAMETERS", []byte{0x06, 0x01, 0x00}), "no PEM block found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParsePrivateKeyPEM("kid", tt.pem)
			if err == nil {
				t.Fatalf("accepted: %v", k)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %q, want it to contain %q", err, tt.wantErr)
			}
			// Errors must not echo the key material.
			if body := strings.TrimSpace(string(tt.pem)); len(body) > 40 {
				for _, line := range strings.Split(body, "\n") {
					if len(line) > 20 && !strings.HasPrefix(line, "-----") && strings.Contains(err.Error(), line) {
						t.Fatalf("error echoes PEM content: %q", err)
					}
				}
			}
		})
	}
}

func TestStringsDoNotRevealPrivateKeys(t *testing.T) {
	ed, ec := newEdKey(t, "ed"), newECKey(t, "ec")
	edPriv := ed.Signer.(ed25519.PrivateKey)
	ecScalar, err := ec.Signer.(*ecdsa.PrivateKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{
		fmt.Sprint([]byte(edPriv.Seed())), hex.EncodeToString(edPriv.Seed()), b64(edPriv.Seed()),
		fmt.Sprint(ec.Signer.(*ecdsa.PrivateKey).D), hex.EncodeToString(ecScalar), b64(ecScalar),
		// fragments too
		fmt.Sprint([]byte(edPriv.Seed()[:8]))[1:20],
	}
	cfg := Config{Issuer: testIssuer, Audience: testAudience, TTL: testTTL, Keys: []Key{ed, ec}, ActiveKID: "ed"}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := ed.String(); got != `token.Key{ID: "ed", Alg: EdDSA}` {
		t.Errorf("Key.String() = %s", got)
	}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		outs = append(outs,
			fmt.Sprintf(verb, ed), fmt.Sprintf(verb, ec), fmt.Sprintf(verb, &ed),
			fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, &cfg), fmt.Sprintf(verb, m), fmt.Sprintf(verb, *m),
			fmt.Sprintf(verb, []Key{ed, ec}))
	}
	outs = append(outs, string(m.JWKS()))
	for _, out := range outs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Fatalf("output reveals private key material: %s", out)
			}
		}
	}
}

func TestLoadOrCreateDevKeyCreatesOnceWithPrivatePerms(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "keys")
	path := filepath.Join(dir, "dev.pem")

	k1, err := LoadOrCreateDevKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if k1.Alg() != "EdDSA" || k1.ID == "" {
		t.Fatalf("key = %v", k1)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %o, want 600", perm)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm != 0o700 {
		t.Errorf("key dir mode = %o, want 700", perm)
	}
	first, _ := os.ReadFile(path)

	k2, err := LoadOrCreateDevKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if k2.ID != k1.ID || !k2.Signer.Public().(ed25519.PublicKey).Equal(k1.Signer.Public()) {
		t.Fatalf("second call returned a different key: %v vs %v", k2, k1)
	}
	if second, _ := os.ReadFile(path); string(second) != string(first) {
		t.Fatal("key file was rewritten")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("dir has leftover files: %v", entries)
	}

	// The dev key is usable.
	m := newManager(t, &clock{t: t0}, "", k2)
	tok, _, err := newManager(t, &clock{t: t0}, "", k1).Sign(sampleClaims)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(tok); err != nil {
		t.Fatal(err)
	}
}

func TestLoadOrCreateDevKeyConcurrentCallersGetSameKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev.pem")
	const n = 8
	kids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, err := LoadOrCreateDevKey(path)
			kids[i], errs[i] = k.ID, err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if kids[i] != kids[0] {
			t.Fatalf("caller %d got kid %q, caller 0 got %q", i, kids[i], kids[0])
		}
	}
}

func TestLoadOrCreateDevKeyRejectsBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev.pem")
	if err := os.WriteFile(path, pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(testRSAKey(t))), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateDevKey(path); err == nil || !strings.Contains(err.Error(), "RSA") {
		t.Fatalf("err = %v, want RSA rejection", err)
	}
	// And it did not overwrite the file.
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "RSA PRIVATE KEY") {
		t.Fatal("existing key file was overwritten")
	}
}

// ---- benchmarks ----

func BenchmarkSign(b *testing.B) {
	for _, km := range keyMakers {
		b.Run(km.name, func(b *testing.B) {
			m := newManager(b, &clock{t: t0}, "", km.make(b, "k1"))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := m.Sign(sampleClaims); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, km := range keyMakers {
		b.Run(km.name, func(b *testing.B) {
			m := newManager(b, &clock{t: t0}, "", km.make(b, "k1"))
			tok, _, err := m.Sign(sampleClaims)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestVerifiedTokensAreRememberedButStillExpire: a second Verify of the same
// token is answered from memory (same claims, callers cannot alter the
// cache), yet a remembered token still expires, and other bytes are
// verified afresh.
func TestVerifiedTokensAreRememberedButStillExpire(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	m := newManager(t, c, "k1", newEdKey(t, "k1"))
	tok, _, err := m.Sign(Claims{Subject: "u_1", SessionID: "s_1"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := m.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	first.Subject = "tampered-by-caller"
	second, err := m.Verify(tok)
	if err != nil || second.Subject != "u_1" {
		t.Fatalf("remembered verify = %+v, %v", second, err)
	}
	// A character well inside the signature: every bit of it counts (the
	// last one's low bits are padding), and it always changes.
	tampered := []byte(tok)
	if i := len(tampered) - 10; tampered[i] == 'A' {
		tampered[i] = 'B'
	} else {
		tampered[i] = 'A'
	}
	if _, err := m.Verify(string(tampered)); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("a tampered signature passed: %v", err)
	}
	c.Set(c.Now().Add(testTTL + Leeway))
	if _, err := m.Verify(tok); !errors.Is(err, ErrExpiredToken) {
		t.Fatalf("a remembered token did not expire: %v", err)
	}
}
