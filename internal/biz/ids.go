package biz

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"time"
)

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// sortableBase32 is RFC 4648's base32hex in lower case: its alphabet is in
// ASCII order, so encoded bytes sort as the bytes do.
var sortableBase32 = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// randomID returns prefix + 128 random bits in lower-case base32 (26 chars):
// unguessable and not sequential.
func randomID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return prefix + lowerBase32.EncodeToString(b[:])
}

// timeOrderedID returns prefix + 26 characters encoding at's Unix
// milliseconds (48 bits) then 80 random bits, as UUIDv7 lays them out: ids
// sort by creation time and cannot be guessed. The tables keyed by them
// (users, sessions) then grow at one end of their primary key: random keys
// sent every insert to a random page, which a database of a million users
// no longer keeps in memory (issue #6's growth benchmark: new logins at 1M
// identities 0.85 of their rate at 10k with random user ids, 0.96 ordered).
func timeOrderedID(prefix string, at time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(at.UnixMilli())<<16) // the top 48 bits: b[:6]
	_, _ = rand.Read(b[6:])
	return prefix + sortableBase32.EncodeToString(b[:])
}

// NewUserID returns a fresh unified user id. It tells its creation time to
// the millisecond to whoever sees it.
func NewUserID() string { return timeOrderedID("u_", time.Now()) }

// NewSessionID returns a fresh session id (the tokens' `sid`).
func NewSessionID() string { return timeOrderedID("s_", time.Now()) }

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
