package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mpauth/mpauth/internal/token"
)

// In-process verification of mpauth's access tokens: what a backend does
// with the JWKS (no network per request), measured on every core and on
// one.

// VerifyResult is the in-process verification figures.
type VerifyResult struct {
	// JWKS: go-jose against the served key set, as a backend verifies
	// (pinned algorithm, key by kid, iss/aud/exp checked).
	JWKSOpsPerSec        float64 `json:"jwks_ops_per_sec"`
	JWKSOpsPerSecOneCore float64 `json:"jwks_ops_per_sec_one_core"`
	// Manager: internal/token's Manager.Verify (mpauth's own check), which
	// remembers tokens it verified: over Tokens tokens, repeated, this is
	// mostly its cache.
	ManagerOpsPerSec        float64 `json:"manager_ops_per_sec"`
	ManagerOpsPerSecOneCore float64 `json:"manager_ops_per_sec_one_core"`
	Tokens                  int     `json:"tokens"`
	Cores                   int     `json:"cores"`
	Seconds                 float64 `json:"seconds_each"`
}

// jwksVerifier verifies tokens as a backend does with the served JWKS.
type jwksVerifier struct {
	keys     jose.JSONWebKeySet
	issuer   string
	audience string
}

func fetchJWKS(ctx context.Context, c *http.Client, baseURL string) (*jwksVerifier, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/.well-known/jwks.json", nil)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	v := &jwksVerifier{issuer: benchIssuer, audience: benchAudience}
	if err := json.Unmarshal(b, &v.keys); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	return v, nil
}

func (v *jwksVerifier) verify(raw string) error {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256})
	if err != nil {
		return err
	}
	if len(tok.Headers) != 1 {
		return errors.New("one signature expected")
	}
	keys := v.keys.Key(tok.Headers[0].KeyID)
	if len(keys) == 0 {
		return errors.New("unknown kid")
	}
	var c jwt.Claims
	if err := tok.Claims(keys[0].Key, &c); err != nil {
		return err
	}
	return c.ValidateWithLeeway(jwt.Expected{Issuer: v.issuer, AnyAudience: jwt.Audience{v.audience}, Time: time.Now()}, 30*time.Second)
}

// measureVerify runs verify over tokens on n goroutines for d and returns
// verifications per second; any failure is an error.
func measureVerify(d time.Duration, n int, tokens []string, verify func(string) error) (float64, error) {
	var (
		total atomic.Int64
		fail  atomic.Value
		wg    sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(d)
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var done int64
			for i := w; time.Now().Before(end); i++ {
				for j := 0; j < 64; j++ { // check the clock now and then
					if err := verify(tokens[(i*64+j)%len(tokens)]); err != nil {
						fail.Store(err)
						return
					}
					done++
				}
			}
			total.Add(done)
		}(w)
	}
	wg.Wait()
	if err, _ := fail.Load().(error); err != nil {
		return 0, err
	}
	return float64(total.Load()) / time.Since(start).Seconds(), nil
}

// benchVerify measures both verification paths on tokens issued by mpauth.
func benchVerify(ctx context.Context, c *http.Client, baseURL string, key token.Key, tokens []string, d time.Duration) (*VerifyResult, error) {
	jv, err := fetchJWKS(ctx, c, baseURL)
	if err != nil {
		return nil, err
	}
	m, err := benchTokens(key)
	if err != nil {
		return nil, err
	}
	mv := func(t string) error { _, err := m.Verify(t); return err }
	cores := runtime.GOMAXPROCS(0)
	r := &VerifyResult{Cores: cores, Seconds: d.Seconds(), Tokens: len(tokens)}
	for _, s := range []struct {
		dst *float64
		n   int
		f   func(string) error
	}{
		{&r.JWKSOpsPerSec, cores, jv.verify},
		{&r.JWKSOpsPerSecOneCore, 1, jv.verify},
		{&r.ManagerOpsPerSec, cores, mv},
		{&r.ManagerOpsPerSecOneCore, 1, mv},
	} {
		if *s.dst, err = measureVerify(d, s.n, tokens, s.f); err != nil {
			return nil, fmt.Errorf("verifying mpauth's tokens: %w", err)
		}
	}
	return r, nil
}

// benchTokens is a token manager signing as mpauth does in the benchmark.
func benchTokens(key token.Key) (*token.Manager, error) {
	return token.New(token.Config{Issuer: benchIssuer, Audience: benchAudience, TTL: 15 * time.Minute, Keys: []token.Key{key}})
}
