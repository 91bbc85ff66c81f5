package conf

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"gopkg.in/yaml.v3"

	"github.com/mpauth/mpauth/internal/secretbox"
)

// Load reads a YAML config file, expands ${ENV_VAR} and ${ENV_VAR:default}
// placeholders from the environment, rejects unknown fields, applies the
// defaults and validates the result. Errors name the offending field.
func Load(path string) (*Bootstrap, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(raw, os.LookupEnv)
}

// Parse is Load on bytes with an explicit environment lookup.
func Parse(raw []byte, lookupEnv func(string) (string, bool)) (*Bootstrap, error) {
	var tree any
	if err := yaml.Unmarshal(raw, &tree); err != nil {
		return nil, fmt.Errorf("config is not valid YAML: %w", err)
	}
	tree, err := expand(tree, "", lookupEnv)
	if err != nil {
		return nil, err
	}
	if err := normalize(tree, (&Bootstrap{}).ProtoReflect().Descriptor(), ""); err != nil {
		return nil, err
	}
	js, err := json.Marshal(tree)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	bc := &Bootstrap{}
	// Strict: a misspelt field stops the server instead of being ignored.
	if err := protojson.Unmarshal(js, bc); err != nil {
		return nil, fmt.Errorf("config: %v", withoutValue(strings.TrimPrefix(err.Error(), "proto: ")))
	}
	applyDefaults(bc)
	if err := Validate(bc); err != nil {
		return nil, err
	}
	return bc, nil
}

// withoutValue cuts a protojson error after the field it names ("invalid
// value for string field password: <value>"): the value may be a secret.
func withoutValue(msg string) string {
	if i := strings.Index(msg, " field "); i >= 0 {
		if j := strings.IndexByte(msg[i+len(" field "):], ':'); j >= 0 {
			return msg[:i+len(" field ")+j]
		}
	}
	return msg
}

var placeholder = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}`)

// expand replaces placeholders in every string of the YAML tree. A
// placeholder without a default whose variable is unset is an error naming
// the field and the variable.
func expand(v any, path string, lookupEnv func(string) (string, bool)) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, sub := range t {
			e, err := expand(sub, join(path, k), lookupEnv)
			if err != nil {
				return nil, err
			}
			t[k] = e
		}
	case []any:
		for i, sub := range t {
			e, err := expand(sub, fmt.Sprintf("%s[%d]", path, i), lookupEnv)
			if err != nil {
				return nil, err
			}
			t[i] = e
		}
	case string:
		var missing string
		out := placeholder.ReplaceAllStringFunc(t, func(m string) string {
			g := placeholder.FindStringSubmatch(m)
			if val, ok := lookupEnv(g[1]); ok {
				return val
			}
			if strings.Contains(m, ":") {
				return g[2]
			}
			missing = g[1]
			return ""
		})
		if missing != "" {
			return nil, fmt.Errorf("config %s: environment variable %s is not set", path, missing)
		}
		return out, nil
	}
	return v, nil
}

// normalize rewrites Go-style durations ("15m", "720h") of Duration fields
// into the seconds form protojson reads ("900s"), and refuses a number or a
// boolean where a string belongs (an unquoted all-digit password) naming
// the field only: protojson's own error would quote the value, which may be
// a secret, and converting it could lose digits of a long number.
func normalize(v any, md protoreflect.MessageDescriptor, path string) error {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	for k, sub := range m {
		fd := md.Fields().ByName(protoreflect.Name(k))
		if fd == nil {
			fd = md.Fields().ByJSONName(k)
		}
		if fd != nil && fd.Kind() == protoreflect.StringKind && !fd.IsMap() {
			items := []any{sub}
			if list, ok := sub.([]any); ok && fd.IsList() {
				items = list
			}
			for _, item := range items {
				switch item.(type) {
				case int, int64, uint64, float64, bool:
					return fmt.Errorf("config %s: a string is expected: put the value in quotes", join(path, k))
				}
			}
			continue
		}
		if fd == nil || fd.Message() == nil {
			continue
		}
		p := join(path, k)
		if fd.Message().FullName() == "google.protobuf.Duration" {
			s, ok := sub.(string)
			if !ok {
				return fmt.Errorf("config %s: a duration like 3s, 15m or 720h is expected", p)
			}
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("config %s: %q is not a duration like 3s, 15m or 720h", p, s)
			}
			m[k] = strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
			continue
		}
		if list, ok := sub.([]any); ok && fd.IsList() {
			for i, item := range list {
				if err := normalize(item, fd.Message(), fmt.Sprintf("%s[%d]", p, i)); err != nil {
					return err
				}
			}
			continue
		}
		if err := normalize(sub, fd.Message(), p); err != nil {
			return err
		}
	}
	return nil
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func applyDefaults(bc *Bootstrap) {
	if bc.Server == nil {
		bc.Server = &Server{}
	}
	if bc.Server.Http == nil {
		bc.Server.Http = &Server_HTTP{}
	}
	if bc.Server.Http.Addr == "" {
		bc.Server.Http.Addr = "127.0.0.1:8000"
	}
	if bc.Server.Http.Timeout == nil {
		bc.Server.Http.Timeout = durationpb.New(10 * time.Second)
	}
	if bc.Server.Grpc == nil {
		bc.Server.Grpc = &Server_GRPC{}
	}
	if bc.Server.Grpc.Addr == "" {
		bc.Server.Grpc.Addr = "127.0.0.1:9000"
	}
	if bc.Server.Grpc.Timeout == nil {
		bc.Server.Grpc.Timeout = durationpb.New(10 * time.Second)
	}
	if bc.Data == nil {
		bc.Data = &Data{}
	}
	if bc.Data.Database == nil {
		bc.Data.Database = &Data_Database{}
	}
	if bc.Data.Database.Driver == "" {
		bc.Data.Database.Driver = "sqlite"
	}
	if bc.Data.DataDir == "" {
		bc.Data.DataDir = "data"
	}
	if bc.Auth == nil {
		bc.Auth = &Auth{}
	}
	if bc.Auth.AccessTokenTtl == nil {
		bc.Auth.AccessTokenTtl = durationpb.New(15 * time.Minute)
	}
	if bc.Auth.RefreshTokenTtl == nil {
		bc.Auth.RefreshTokenTtl = durationpb.New(30 * 24 * time.Hour)
	}
	for _, a := range bc.Apps {
		if a.Timeout == nil {
			a.Timeout = durationpb.New(3 * time.Second)
		}
	}
	if bc.Sandbox == nil {
		bc.Sandbox = &Sandbox{}
	}
	if bc.Sandbox.Addr == "" {
		bc.Sandbox.Addr = "127.0.0.1:8001"
	}
	if bc.Sandbox.CodeTtl == nil {
		bc.Sandbox.CodeTtl = durationpb.New(5 * time.Minute)
	}
	if bc.Accounts == nil {
		bc.Accounts = &Accounts{}
	}
	if bc.Accounts.UnionMerge == "" {
		bc.Accounts.UnionMerge = "auto"
	}
	if bc.Log == nil {
		bc.Log = &Log{}
	}
	if bc.Log.Level == "" {
		bc.Log.Level = "info"
	}
	applyLimitDefaults(bc)
}

// Validate checks what the server cannot start without.
func Validate(bc *Bootstrap) error {
	switch bc.Data.Database.Driver {
	case "sqlite":
	case "mysql":
		if bc.Data.Database.Source == "" {
			return fmt.Errorf("config data.database.source: a MySQL DSN is required with driver mysql (user:pass@tcp(host:3306)/mpauth)")
		}
	default:
		return fmt.Errorf("config data.database.driver: %q is not supported: use sqlite or mysql", bc.Data.Database.Driver)
	}
	a := bc.Auth
	if a.Issuer == "" {
		return fmt.Errorf("config auth.issuer: required (the `iss` of every access token, e.g. https://auth.example.com)")
	}
	if a.Audience == "" {
		return fmt.Errorf("config auth.audience: required (the `aud` backends check, e.g. my-backend)")
	}
	if a.AccessTokenTtl.AsDuration() < time.Minute || a.AccessTokenTtl.AsDuration() > 24*time.Hour {
		return fmt.Errorf("config auth.access_token_ttl: must be between 1m and 24h")
	}
	if a.RefreshTokenTtl.AsDuration() < a.AccessTokenTtl.AsDuration() {
		return fmt.Errorf("config auth.refresh_token_ttl: must not be shorter than access_token_ttl")
	}
	if len(a.Keys) == 0 && !a.DevGenerateKey {
		return fmt.Errorf("config auth.keys: at least one signing key is required (generate one with `mpauth keygen`)")
	}
	for i, k := range a.Keys {
		if k.Kid == "" {
			return fmt.Errorf("config auth.keys[%d].kid: required", i)
		}
		if (k.PrivateKey == "") == (k.PrivateKeyFile == "") {
			return fmt.Errorf("config auth.keys[%d]: set exactly one of private_key and private_key_file", i)
		}
	}
	if len(bc.Apps) == 0 {
		return fmt.Errorf("config apps: configure at least one mini-program")
	}
	for i, app := range bc.Apps {
		switch {
		case app.Platform == "":
			return fmt.Errorf("config apps[%d].platform: required", i)
		case app.AppId == "":
			return fmt.Errorf("config apps[%d].app_id: required", i)
		case app.Secret != "" && app.SecretFile != "":
			return fmt.Errorf("config apps[%d]: set only one of secret and secret_file", i)
		case app.Timeout.AsDuration() <= 0 || app.Timeout.AsDuration() > time.Minute:
			return fmt.Errorf("config apps[%d].timeout: must be between 1ms and 1m", i)
		}
	}
	if err := validateSecrets(bc.GetSecrets()); err != nil {
		return err
	}
	if m := bc.Accounts.UnionMerge; m != "auto" && m != "conflict" {
		return fmt.Errorf("config accounts.union_merge: %q is not auto or conflict", m)
	}
	ids := map[string]bool{}
	for i, k := range bc.ApiKeys {
		n := 0
		for _, v := range []string{k.Key, k.KeyFile, k.KeySha256} {
			if v != "" {
				n++
			}
		}
		switch {
		case k.Id == "":
			return fmt.Errorf("config api_keys[%d].id: required (it names the key in the audit log)", i)
		case ids[k.Id]:
			return fmt.Errorf("config api_keys[%d].id: %q is used twice", i, k.Id)
		case n != 1:
			return fmt.Errorf("config api_keys[%d]: set exactly one of key, key_file and key_sha256", i)
		case k.Key != "" && len(k.Key) < 32:
			return fmt.Errorf("config api_keys[%d].key: must be at least 32 characters (e.g. openssl rand -hex 32)", i)
		case len(k.Scopes) == 0:
			return fmt.Errorf("config api_keys[%d].scopes: name admin and/or backend", i)
		}
		for _, s := range k.Scopes {
			if s != "admin" && s != "backend" {
				return fmt.Errorf("config api_keys[%d].scopes: %q is not admin or backend", i, s)
			}
		}
		ids[k.Id] = true
	}
	if err := validateLimits(bc.GetLimits(), bc.GetRedis()); err != nil {
		return err
	}
	if err := ValidateObservability(bc.GetObservability()); err != nil {
		return err
	}
	switch bc.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config log.level: %q is not one of debug, info, warn, error", bc.Log.Level)
	}
	return nil
}

// ValidateObservability checks the observability config, naming the field
// at fault.
func ValidateObservability(c *Observability) error {
	switch c.GetLogFormat() {
	case "", "json", "text":
	default:
		return fmt.Errorf("config observability.log_format: %q is not a log format (use json or text)", c.GetLogFormat())
	}
	if r := c.GetTraceSampleRatio(); r < 0 || r > 1 {
		return fmt.Errorf("config observability.trace_sample_ratio: %v is not between 0 and 1", r)
	}
	if ep := c.GetOtlpEndpoint(); ep != "" {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("config observability.otlp_endpoint: not an http(s) URL such as http://otel-collector:4318")
		}
	}
	return nil
}

// validateSecrets checks the keys that encrypt secrets at rest.
func validateSecrets(s *Secrets) error {
	if len(s.GetKeys()) == 0 {
		if !s.GetDevGenerateKey() {
			return fmt.Errorf("config secrets.keys: at least one encryption key is required (32 random bytes, base64: openssl rand -base64 32)")
		}
		return nil
	}
	ids := map[string]bool{}
	for i, k := range s.GetKeys() {
		switch {
		case k.GetId() == "":
			return fmt.Errorf("config secrets.keys[%d].id: required (it is stored with every value the key encrypts)", i)
		case secretbox.CheckKeyID(k.GetId()) != nil:
			return fmt.Errorf("config secrets.keys[%d].id: %v", i, secretbox.CheckKeyID(k.GetId()))
		case ids[k.GetId()]:
			return fmt.Errorf("config secrets.keys[%d].id: %q is used twice", i, k.GetId())
		case (k.GetKey() == "") == (k.GetKeyFile() == ""):
			return fmt.Errorf("config secrets.keys[%d]: set exactly one of key and key_file", i)
		}
		if k.GetKey() != "" {
			if _, err := secretbox.ParseKey(k.GetKey()); err != nil {
				return fmt.Errorf("config secrets.keys[%d].key: %v", i, err)
			}
		}
		ids[k.GetId()] = true
	}
	switch {
	case s.GetActiveKeyId() == "" && len(s.GetKeys()) > 1:
		return fmt.Errorf("config secrets.active_key_id: required with more than one key (the key new values are encrypted with)")
	case s.GetActiveKeyId() != "" && !ids[s.GetActiveKeyId()]:
		return fmt.Errorf("config secrets.active_key_id: %q is not among secrets.keys", s.GetActiveKeyId())
	}
	return nil
}
