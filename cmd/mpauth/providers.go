package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-kratos/kratos/v2/log"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/provider"
	"github.com/mpauth/mpauth/internal/provider/platforms"
	"github.com/mpauth/mpauth/internal/sandbox"
	"github.com/mpauth/mpauth/internal/token"
)

// Glue between the config and the constructors wire calls.

// sandboxEndpoint is the `endpoint` value that means "the built-in sandbox,
// wherever it listens" (tests bind it to port 0).
const sandboxEndpoint = "sandbox"

func newRegistry(bc *conf.Bootstrap, sb *sandbox.Sandbox, tokens *biz.TokenBroker, obs provider.Observer) (*provider.Registry, error) {
	apps := bc.Apps
	for i, a := range apps {
		if a.GetEndpoint() != sandboxEndpoint {
			continue
		}
		if sb == nil {
			return nil, fmt.Errorf("config apps[%d].endpoint: %q needs sandbox.enabled", i, sandboxEndpoint)
		}
		resolved := proto.Clone(a).(*conf.App)
		resolved.Endpoint = sb.Endpoint()
		apps = append(apps[:i:i], append([]*conf.App{resolved}, apps[i+1:]...)...)
	}
	up := bc.GetUpstream()
	return platforms.NewRegistry(apps, provider.Env{Tokens: tokens, Observer: obs, Resilience: &provider.ResilienceOptions{
		MaxRetries:     int(up.GetMaxRetries()),
		BreakerOpenFor: up.GetBreakerOpenFor().AsDuration(),
	}})
}

func newAuthConfig(bc *conf.Bootstrap) biz.AuthConfig {
	return biz.AuthConfig{RefreshTokenTTL: bc.Auth.RefreshTokenTtl.AsDuration(), UnionMerge: bc.GetAccounts().GetUnionMerge()}
}

// newAPIKeys loads the backend and operator API keys.
func newAPIKeys(bc *conf.Bootstrap) (*biz.APIKeys, error) {
	var keys []biz.APIKey
	for i, k := range bc.ApiKeys {
		key := k.Key
		if k.KeyFile != "" {
			b, err := os.ReadFile(k.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("config api_keys[%d].key_file: %w", i, err)
			}
			key = strings.TrimSpace(string(b))
		}
		ak, err := biz.NewAPIKey(k.Id, key, k.KeySha256, k.Scopes)
		if err != nil {
			return nil, fmt.Errorf("config api_keys[%d]: %w", i, err)
		}
		keys = append(keys, ak)
	}
	return biz.NewAPIKeys(keys), nil
}

// newTokenManager loads the signing keys; with none configured and
// dev_generate_key set, it generates one under data_dir once and reuses it.
func newTokenManager(bc *conf.Bootstrap, logger log.Logger) (*token.Manager, error) {
	a := bc.Auth
	var keys []token.Key
	for i, k := range a.Keys {
		pemBytes := []byte(k.PrivateKey)
		if k.PrivateKeyFile != "" {
			b, err := os.ReadFile(k.PrivateKeyFile)
			if err != nil {
				return nil, fmt.Errorf("config auth.keys[%d].private_key_file: %w", i, err)
			}
			pemBytes = b
		}
		key, err := token.ParsePrivateKeyPEM(k.Kid, pemBytes)
		if err != nil {
			return nil, fmt.Errorf("config auth.keys[%d]: %w", i, err)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 && a.DevGenerateKey {
		path := filepath.Join(bc.Data.DataDir, "dev-signing-key.pem")
		key, err := token.LoadOrCreateDevKey(path)
		if err != nil {
			return nil, fmt.Errorf("config auth.dev_generate_key: %w", err)
		}
		log.NewHelper(logger).Warnf("using the development signing key %s: configure auth.keys in production", path)
		keys = append(keys, key)
	}
	m, err := token.New(token.Config{
		Issuer:    a.Issuer,
		Audience:  a.Audience,
		TTL:       a.AccessTokenTtl.AsDuration(),
		Keys:      keys,
		ActiveKID: a.ActiveKid,
	})
	if err != nil {
		return nil, fmt.Errorf("config auth: %w", err)
	}
	return m, nil
}

// newSandbox returns the fake platforms when enabled, else nil.
func newSandbox(bc *conf.Bootstrap, logger log.Logger) (*sandbox.Sandbox, error) {
	if !bc.Sandbox.GetEnabled() {
		return nil, nil
	}
	apps, err := platforms.Apps(bc.Apps)
	if err != nil {
		return nil, err
	}
	sb := sandbox.New(apps,
		sandbox.WithAddr(bc.Sandbox.Addr),
		sandbox.WithCodeTTL(bc.Sandbox.CodeTtl.AsDuration()),
		sandbox.WithLogger(logger),
	)
	// Bind now so a taken port stops the server at start, not later.
	if _, err := sb.Listen(); err != nil {
		return nil, fmt.Errorf("config sandbox.addr: %w", err)
	}
	return sb, nil
}

// newLoginLimiter returns the per-identity login limiter
// (limits.login_per_identity_per_minute; shared through Redis when
// configured). See limits.go.
func newLoginLimiter(bc *conf.Bootstrap, rdb *redis.Client, logger log.Logger) biz.LoginLimiter {
	return identityLoginLimiter(bc, rdb, logger)
}
