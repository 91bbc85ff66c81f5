package biz

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
)

// API key scopes.
const (
	ScopeAdmin   = "admin"
	ScopeBackend = "backend"
)

// APIKey is one configured key, known by its SHA-256 only.
type APIKey struct {
	ID     string
	SHA256 [32]byte
	Scopes []string
}

// NewAPIKey describes a key given in clear or as hex SHA-256.
func NewAPIKey(id, key, keySHA256Hex string, scopes []string) (APIKey, error) {
	k := APIKey{ID: id, Scopes: scopes}
	if key != "" {
		k.SHA256 = sha256.Sum256([]byte(key))
		return k, nil
	}
	b, err := hex.DecodeString(keySHA256Hex)
	if err != nil || len(b) != 32 {
		return APIKey{}, fmt.Errorf("api key %q: key_sha256 must be 64 hex characters", id)
	}
	copy(k.SHA256[:], b)
	return k, nil
}

// APIKeys authenticates backends and operators.
type APIKeys struct {
	byHash map[[32]byte]*Caller
}

// NewAPIKeys indexes the configured keys.
func NewAPIKeys(keys []APIKey) *APIKeys {
	a := &APIKeys{byHash: make(map[[32]byte]*Caller, len(keys))}
	for _, k := range keys {
		a.byHash[k.SHA256] = &Caller{KeyID: k.ID, Scopes: k.Scopes}
	}
	return a
}

// Authenticate returns the caller of key if it has scope. Keys are looked up
// by their hash, so no comparison leaks a key's prefix through timing.
func (a *APIKeys) Authenticate(key, scope string) (*Caller, error) {
	c, ok := a.byHash[sha256.Sum256([]byte(key))]
	switch {
	case !ok || key == "":
		return nil, ErrUnauthenticatedKey
	case !slices.Contains(c.Scopes, scope):
		return nil, errPermissionDenied(scope)
	}
	return c, nil
}
