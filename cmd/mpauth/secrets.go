package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/go-kratos/kratos/v2/log"

	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/secretbox"
)

// newSecretBox loads the keys that encrypt session_keys and platform tokens
// at rest (secrets.keys); with none configured and secrets.dev_generate_key
// set, it generates one under data_dir once and reuses it.
func newSecretBox(bc *conf.Bootstrap, logger log.Logger) (*secretbox.Box, error) {
	s := bc.GetSecrets()
	var keys []secretbox.Key
	for i, k := range s.GetKeys() {
		encoded := k.GetKey()
		if k.GetKeyFile() != "" {
			b, err := os.ReadFile(k.GetKeyFile())
			if err != nil {
				return nil, fmt.Errorf("config secrets.keys[%d].key_file: %w", i, err)
			}
			encoded = string(b)
		}
		secret, err := secretbox.ParseKey(encoded)
		if err != nil {
			return nil, fmt.Errorf("config secrets.keys[%d]: %w", i, err)
		}
		keys = append(keys, secretbox.Key{ID: k.GetId(), Secret: secret})
	}
	if len(keys) == 0 && s.GetDevGenerateKey() {
		path := filepath.Join(bc.GetData().GetDataDir(), "dev-secrets-key")
		k, err := secretbox.LoadOrCreateDevKey(path)
		if err != nil {
			return nil, fmt.Errorf("config secrets.dev_generate_key: %w", err)
		}
		log.NewHelper(logger).Warnf("encrypting secrets at rest with the development key %s: configure secrets.keys in production", path)
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("config secrets.keys: at least one encryption key is required (openssl rand -base64 32)")
	}
	box, err := secretbox.New(s.GetActiveKeyId(), keys...)
	if err != nil {
		return nil, fmt.Errorf("config secrets: %w", err)
	}
	return box, nil
}
