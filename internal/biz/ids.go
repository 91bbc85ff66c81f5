package biz

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
)

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// randomID returns prefix + 128 random bits in lower-case base32 (26 chars):
// unguessable and not sequential.
func randomID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return prefix + lowerBase32.EncodeToString(b[:])
}

// NewUserID returns a fresh unified user id.
func NewUserID() string { return randomID("u_") }

// NewSessionID returns a fresh session id (the tokens' `sid`).
func NewSessionID() string { return randomID("s_") }

// NewRefreshToken returns an opaque refresh token of 256 random bits.
func NewRefreshToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "rt_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashRefreshToken is how refresh tokens are stored: the token has 256 bits
// of entropy, so an unsalted SHA-256 is enough to make a database leak
// useless.
func HashRefreshToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
