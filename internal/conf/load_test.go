package conf

import (
	"os"
	"strings"
	"testing"
	"time"
)

const minimal = `
auth:
  issuer: https://auth.test
  audience: backend
  dev_generate_key: true
secrets:
  dev_generate_key: true
apps:
  - platform: wechat
    app_id: wx1
    secret: ${TEST_SECRET:fallback}
`

// testKey32 and testKey16 are base64 keys of 32 and 16 bytes.
const (
	testKey32 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	testKey16 = "AAECAwQFBgcICQoLDA0ODw=="
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestParseAppliesDefaultsAndPlaceholders(t *testing.T) {
	bc, err := Parse([]byte(minimal), env(map[string]string{"TEST_SECRET": "from-env"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := bc.Apps[0].Secret; got != "from-env" {
		t.Errorf("secret = %q, want the env value", got)
	}
	if bc.Data.Database.Driver != "sqlite" || bc.Server.Http.Addr != "127.0.0.1:8000" {
		t.Errorf("defaults not applied: %v", bc)
	}
	if bc.Auth.AccessTokenTtl.AsDuration() != 15*time.Minute || bc.Auth.RefreshTokenTtl.AsDuration() != 720*time.Hour {
		t.Errorf("token ttl defaults = %v %v", bc.Auth.AccessTokenTtl, bc.Auth.RefreshTokenTtl)
	}
	if bc.Apps[0].Timeout.AsDuration() != 3*time.Second {
		t.Errorf("app timeout default = %v", bc.Apps[0].Timeout)
	}

	bc, err = Parse([]byte(minimal), env(nil))
	if err != nil || bc.Apps[0].Secret != "fallback" {
		t.Fatalf("placeholder default: %v %v", bc, err)
	}
}

func TestParseReadsGoDurations(t *testing.T) {
	bc, err := Parse([]byte(minimal+"    timeout: 1500ms\n"+"sandbox:\n  code_ttl: 2m\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if bc.Apps[0].Timeout.AsDuration() != 1500*time.Millisecond || bc.Sandbox.CodeTtl.AsDuration() != 2*time.Minute {
		t.Fatalf("durations = %v %v", bc.Apps[0].Timeout, bc.Sandbox.CodeTtl)
	}
}

func TestParseRejectsBadConfigNamingTheField(t *testing.T) {
	bare := strings.Replace(minimal, "secrets:\n  dev_generate_key: true\n", "", 1) // no secrets block
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"misspelt field", minimal + "sandbox:\n  enabeld: true\n", "enabeld"},
		{"unset env var", strings.Replace(minimal, "${TEST_SECRET:fallback}", "${TEST_MISSING}", 1), "apps[0].secret: environment variable TEST_MISSING"},
		{"bad duration", minimal + "    timeout: soon\n", "apps[0].timeout"},
		{"unknown driver", minimal + "data:\n  database:\n    driver: oracle\n", "data.database.driver"},
		{"mysql without dsn", minimal + "data:\n  database:\n    driver: mysql\n", "data.database.source"},
		{"no issuer", strings.Replace(minimal, "issuer: https://auth.test", "", 1), "auth.issuer"},
		{"no audience", strings.Replace(minimal, "audience: backend", "", 1), "auth.audience"},
		{"no key outside dev", strings.Replace(minimal, "dev_generate_key: true", "", 1), "auth.keys"},
		{"key without kid", minimal + "  keys:\n    - private_key: x\n", ""},
		{"no apps", "auth:\n  issuer: a\n  audience: b\n  dev_generate_key: true\n", "apps"},
		{"app without app_id", strings.Replace(minimal, "app_id: wx1", "", 1), "apps[0].app_id"},
		{"bad log level", minimal + "log:\n  level: loud\n", "log.level"},
		{"bad log format", minimal + "observability:\n  log_format: xml\n", "observability.log_format"},
		{"otlp endpoint without a scheme", minimal + "observability:\n  otlp_endpoint: otel:4318\n", "observability.otlp_endpoint"},
		{"bad union merge", minimal + "accounts:\n  union_merge: sometimes\n", "accounts.union_merge"},
		{"short api key", minimal + "api_keys:\n  - id: k\n    key: short\n    scopes: [admin]\n", "api_keys[0].key"},
		{"api key without scope", minimal + "api_keys:\n  - id: k\n    key: 0123456789abcdef0123456789abcdef\n", "api_keys[0].scopes"},
		{"unknown scope", minimal + "api_keys:\n  - id: k\n    key: 0123456789abcdef0123456789abcdef\n    scopes: [root]\n", "api_keys[0].scopes"},
		{"not yaml", "{", "not valid YAML"},
		{"no secrets key outside dev", bare, "secrets.keys"},
		{"secrets key not base64", bare + "secrets:\n  keys:\n    - id: k1\n      key: not-base64!!\n", "secrets.keys[0].key"},
		{"secrets key too short", bare + "secrets:\n  keys:\n    - id: k1\n      key: " + testKey16 + "\n", "secrets.keys[0].key"},
		{"secrets key without id", bare + "secrets:\n  keys:\n    - key: " + testKey32 + "\n", "secrets.keys[0].id"},
		{"secrets key id with a dot", bare + "secrets:\n  keys:\n    - id: k.1\n      key: " + testKey32 + "\n", "secrets.keys[0].id"},
		{"secrets key id twice", bare + "secrets:\n  active_key_id: k1\n  keys:\n    - id: k1\n      key: " + testKey32 + "\n    - id: k1\n      key: " + testKey32 + "\n", "secrets.keys[1].id"},
		{"secrets key and key_file", bare + "secrets:\n  keys:\n    - id: k1\n      key: " + testKey32 + "\n      key_file: /k\n", "secrets.keys[0]"},
		{"secrets active key not listed", bare + "secrets:\n  active_key_id: k9\n  keys:\n    - id: k1\n      key: " + testKey32 + "\n", "secrets.active_key_id"},
		{"an unquoted all-digit secret", strings.Replace(minimal, "${TEST_SECRET:fallback}", "918273645", 1), "apps[0].secret: a string is expected"},
		{"an unquoted all-digit secrets key", bare + "secrets:\n  keys:\n    - id: k1\n      key: 12345678901234567890\n", "secrets.keys[0].key: a string is expected"},
		{"secrets two keys and no active", bare + "secrets:\n  keys:\n    - id: k1\n      key: " + testKey32 + "\n    - id: k2\n      key: " + testKey32 + "\n", "secrets.active_key_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), env(nil))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not name %q", err, tt.want)
			}
			for _, secret := range []string{"918273645", "12345678901234567890"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q quotes the secret", err)
				}
			}
		})
	}
}

func TestParseAcceptsSecretsKeys(t *testing.T) {
	bare := strings.Replace(minimal, "secrets:\n  dev_generate_key: true\n", "", 1)
	tests := []struct {
		name, yaml string
	}{
		{"one key, active implied", bare + "secrets:\n  keys:\n    - id: k1\n      key: " + testKey32 + "\n"},
		{"one key from the environment", bare + "secrets:\n  keys:\n    - id: k1\n      key: ${TEST_SECRETS_KEY}\n"},
		{"rotation: two keys, the new one active", bare + "secrets:\n  active_key_id: k2\n  keys:\n    - id: k1\n      key: " + testKey32 + "\n    - id: k2\n      key_file: /run/secrets/k2\n"},
		{"unpadded url base64", bare + "secrets:\n  keys:\n    - id: k1\n      key: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bc, err := Parse([]byte(tt.yaml), env(map[string]string{"TEST_SECRETS_KEY": testKey32}))
			if err != nil {
				t.Fatal(err)
			}
			if len(bc.Secrets.Keys) == 0 {
				t.Fatal("no secrets keys parsed")
			}
		})
	}
}

func TestShippedConfigsParse(t *testing.T) {
	for _, f := range []string{"../../configs/config.yaml", "../../configs/mysql.example.yaml"} {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		vars := env(map[string]string{"MPAUTH_MYSQL_DSN": "u:p@tcp(db:3306)/mpauth", "MPAUTH_WECHAT_APP_ID": "wx1", "MPAUTH_WECHAT_SECRET": "s",
			"MPAUTH_BACKEND_KEY_SHA256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			"MPAUTH_SECRETS_KEY":        testKey32})
		bc, err := Parse(raw, vars)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if strings.Contains(f, "config.yaml") && (!bc.Sandbox.Enabled || bc.Data.Database.Driver != "sqlite") {
			t.Errorf("the embedded default must run sqlite with the sandbox on")
		}
		if strings.Contains(f, "mysql") && bc.Sandbox.Enabled {
			t.Errorf("the sandbox must be off outside the dev config")
		}
	}
}

func TestParseLimitsDefaultsAndValidation(t *testing.T) {
	bc, err := Parse([]byte(minimal), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if l := bc.Limits; l.LoginPerIpPerMinute != 120 || l.LoginPerIdentityPerMinute != 30 || l.DisableOverloadProtection {
		t.Errorf("limit defaults = %v, want 120/min per IP, 30/min per identity, overload protection on", l)
	}
	if bc.GetRedis().GetAddr() != "" {
		t.Errorf("redis configured by default: %v", bc.Redis)
	}

	bc, err = Parse([]byte(minimal+"limits:\n  login_per_ip_per_minute: -1\n  login_per_identity_per_minute: 5\n  disable_overload_protection: true\n  trusted_proxies: [10.0.0.0/8, 192.168.1.7, \"::1\"]\nredis:\n  addr: 127.0.0.1:6379\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if l := bc.Limits; l.LoginPerIpPerMinute != -1 || l.LoginPerIdentityPerMinute != 5 || !l.DisableOverloadProtection || len(l.TrustedProxies) != 3 {
		t.Errorf("limits = %v", l)
	}
	if bc.Redis.KeyPrefix != "mpauth:" {
		t.Errorf("redis.key_prefix default = %q, want mpauth:", bc.Redis.KeyPrefix)
	}
	proxies, err := ParseTrustedProxies(bc.Limits.TrustedProxies)
	if err != nil || len(proxies) != 3 || proxies[1].Bits() != 32 || proxies[2].Bits() != 128 {
		t.Errorf("trusted proxies = %v, %v: a bare address is a single-address prefix", proxies, err)
	}

	tests := []struct {
		name, yaml, want string
	}{
		{"ip limit below -1", "limits:\n  login_per_ip_per_minute: -2\n", "limits.login_per_ip_per_minute"},
		{"identity limit below -1", "limits:\n  login_per_identity_per_minute: -5\n", "limits.login_per_identity_per_minute"},
		{"trusted proxy not an address", "limits:\n  trusted_proxies: [10.0.0.1, proxy.local]\n", "limits.trusted_proxies[1]"},
		{"trusted proxy bad CIDR", "limits:\n  trusted_proxies: [10.0.0.0/33]\n", "limits.trusted_proxies[0]"},
		{"redis addr without port", "redis:\n  addr: localhost\n", "redis.addr"},
		{"redis negative db", "redis:\n  addr: localhost:6379\n  db: -1\n", "redis.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal+tt.yaml), env(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %s", err, tt.want)
			}
		})
	}
}
