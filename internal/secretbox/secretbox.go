// Package secretbox encrypts secrets stored in the database (session_keys,
// platform access tokens) with AES-256-GCM.
//
// A sealed value names the key that sealed it:
//
//	v1.<kid>.<base64url(nonce || ciphertext || tag)>
//
// so keys rotate: add a new key, make it active, and values sealed under the
// old key stay readable for as long as the old key is listed. Every value is
// bound to where it is stored (the associated data the caller passes, e.g.
// the column and the row's natural key), so a sealed value copied into
// another row or column does not open.
//
// A stored value without the "v1." prefix is legacy plaintext, written
// before encryption at rest existed: Open returns it unchanged so existing
// databases keep working; the next write seals it.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// KeySize is the size of a key: AES-256.
const KeySize = 32

// prefix starts every sealed value (the format version).
const prefix = "v1."

// kidPattern is what a key id may look like: it is stored in every sealed
// value, between dots.
var kidPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// ErrUnknownKey means the value was sealed under a key that is not
// configured (any more).
var ErrUnknownKey = errors.New("secretbox: sealed under a key that is not configured")

// ErrOpen means the value is malformed, was tampered with, or is opened with
// other associated data than it was sealed with.
var ErrOpen = errors.New("secretbox: the value does not open (tampered, moved to another row, or malformed)")

// Key is one encryption key.
type Key struct {
	// ID names the key in every value it seals: 1-32 of [A-Za-z0-9_-].
	ID string
	// Secret is the 32-byte AES-256 key.
	Secret []byte
}

// String prints only the key id, never the key.
func (k Key) String() string { return fmt.Sprintf("secretbox.Key{ID: %q}", k.ID) }

// GoString prints only the key id, never the key.
func (k Key) GoString() string { return k.String() }

// Box seals and opens values with its keys. It is safe for concurrent use.
type Box struct {
	active string
	aeads  map[string]cipher.AEAD
}

// New returns a Box sealing with the key activeID (or the only key, when
// activeID is empty) and opening with any of keys.
func New(activeID string, keys ...Key) (*Box, error) {
	if len(keys) == 0 {
		return nil, errors.New("secretbox: no keys")
	}
	b := &Box{active: activeID, aeads: make(map[string]cipher.AEAD, len(keys))}
	for i, k := range keys {
		if err := CheckKeyID(k.ID); err != nil {
			return nil, fmt.Errorf("secretbox: keys[%d]: %w", i, err)
		}
		if _, dup := b.aeads[k.ID]; dup {
			return nil, fmt.Errorf("secretbox: keys[%d]: id %q is used twice", i, k.ID)
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("secretbox: key %q: %d bytes, want %d", k.ID, len(k.Secret), KeySize)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("secretbox: key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secretbox: key %q: %w", k.ID, err)
		}
		b.aeads[k.ID] = aead
	}
	if b.active == "" {
		if len(keys) > 1 {
			return nil, errors.New("secretbox: name the active key when there is more than one")
		}
		b.active = keys[0].ID
	}
	if _, ok := b.aeads[b.active]; !ok {
		return nil, fmt.Errorf("secretbox: the active key %q is not among the keys", b.active)
	}
	return b, nil
}

// ActiveKeyID is the id of the key new values are sealed with.
func (b *Box) ActiveKeyID() string { return b.active }

// KeyIDs lists the ids of the keys values open with, sorted.
func (b *Box) KeyIDs() []string {
	ids := make([]string, 0, len(b.aeads))
	for id := range b.aeads {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// String describes the box without its keys.
func (b *Box) String() string {
	return fmt.Sprintf("secretbox.Box{Active: %q, Keys: %q}", b.active, b.KeyIDs())
}

// GoString describes the box without its keys.
func (b *Box) GoString() string { return b.String() }

// Seal encrypts plaintext under the active key, bound to aad: the same aad
// parts, in the same order, are needed to open it. Callers pass where the
// value is stored, e.g. ("identity.session_key", platform, appID, openID).
// An empty plaintext (no secret) seals to "".
func (b *Box) Seal(plaintext string, aad ...string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	aead := b.aeads[b.active]
	buf := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("secretbox: nonce: %w", err)
	}
	out := aead.Seal(buf, buf[:aead.NonceSize()], []byte(plaintext), associated(b.active, aad))
	return prefix + b.active + "." + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a value Seal returned, with the same aad. It returns "" for
// "", and a value that is not sealed (IsSealed is false: legacy plaintext)
// unchanged. A value sealed under an unknown key fails with ErrUnknownKey;
// a malformed or tampered value, or other aad, fails with ErrOpen. Errors
// never contain the value.
func (b *Box) Open(stored string, aad ...string) (string, error) {
	if !IsSealed(stored) {
		return stored, nil
	}
	kid, body, ok := strings.Cut(stored[len(prefix):], ".")
	if !ok {
		return "", ErrOpen
	}
	aead, ok := b.aeads[kid]
	if !ok {
		if CheckKeyID(kid) != nil {
			return "", ErrOpen
		}
		return "", fmt.Errorf("%w (key id %q)", ErrUnknownKey, kid)
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(raw) < aead.NonceSize()+aead.Overhead() {
		return "", ErrOpen
	}
	nonce, ct := raw[:aead.NonceSize()], raw[aead.NonceSize():]
	pt, err := aead.Open(nil, nonce, ct, associated(kid, aad))
	if err != nil {
		return "", ErrOpen
	}
	return string(pt), nil
}

// IsSealed reports whether a stored value is sealed (as opposed to legacy
// plaintext or empty).
func IsSealed(stored string) bool { return strings.HasPrefix(stored, prefix) }

// KeyIDOf returns the id of the key a sealed value names, or "" when the
// value is not sealed.
func KeyIDOf(stored string) string {
	if !IsSealed(stored) {
		return ""
	}
	kid, _, _ := strings.Cut(stored[len(prefix):], ".")
	return kid
}

// SealedLen is the length of the sealed form of a plaintext of n bytes
// under a key id of kidLen characters (for sizing columns).
func SealedLen(n, kidLen int) int {
	if n == 0 {
		return 0
	}
	return len(prefix) + kidLen + 1 + base64.RawURLEncoding.EncodedLen(12+n+16)
}

// associated is the GCM associated data: the format, the key id and the
// caller's parts, each length-prefixed so no two part lists encode alike.
func associated(kid string, parts []string) []byte {
	n := len("mpauth/secretbox/v1") + 4 + len(kid)
	for _, p := range parts {
		n += 4 + len(p)
	}
	out := make([]byte, 0, n)
	out = append(out, "mpauth/secretbox/v1"...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(kid)))
	out = append(out, kid...)
	for _, p := range parts {
		out = binary.BigEndian.AppendUint32(out, uint32(len(p)))
		out = append(out, p...)
	}
	return out
}

// CheckKeyID reports whether id can name a key.
func CheckKeyID(id string) error {
	if !kidPattern.MatchString(id) {
		return fmt.Errorf("key id %q: use 1-32 letters, digits, _ or -", id)
	}
	return nil
}

// ParseKey decodes a base64 (standard or URL alphabet, padded or not) key of
// exactly 32 bytes, e.g. the output of `openssl rand -base64 32`. Errors
// never quote the input.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("the key decodes to %d bytes, want %d (openssl rand -base64 32)", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("the key is not base64 (openssl rand -base64 32)")
}

// GenerateKey returns a new random key with the given id.
func GenerateKey(id string) (Key, error) {
	secret := make([]byte, KeySize)
	if _, err := rand.Read(secret); err != nil {
		return Key{}, fmt.Errorf("secretbox: generate key: %w", err)
	}
	return Key{ID: id, Secret: secret}, nil
}

// devKeyMu serialises LoadOrCreateDevKey within one process.
var devKeyMu sync.Mutex

// LoadOrCreateDevKey is for DEVELOPMENT ONLY: production keys come from the
// configuration (secrets.keys).
//
// If path exists, the base64 key in it is used. Otherwise a new key is
// generated and written there with mode 0600 (parent directories 0700),
// through a temporary file hard-linked into place so concurrent callers,
// even in other processes, all end up with the same key. The key id is
// "dev-" and a digest of the key, so it is stable across restarts and
// differs from any configured key.
func LoadOrCreateDevKey(path string) (Key, error) {
	devKeyMu.Lock()
	defer devKeyMu.Unlock()

	if k, err := readDevKey(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Key{}, fmt.Errorf("secretbox: create dev key directory: %w", err)
	}
	k, err := GenerateKey("")
	if err != nil {
		return Key{}, err
	}
	tmp, err := os.CreateTemp(dir, ".dev-secrets-key-*.tmp") // mode 0600
	if err != nil {
		return Key{}, fmt.Errorf("secretbox: write dev key: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	_, werr := tmp.WriteString(base64.StdEncoding.EncodeToString(k.Secret) + "\n")
	if werr == nil {
		werr = tmp.Chmod(0o600)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return Key{}, fmt.Errorf("secretbox: write dev key: %w", werr)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readDevKey(path) // another process won the race: use its key
		}
		return Key{}, fmt.Errorf("secretbox: write dev key: %w", err)
	}
	k.ID = devKeyID(k.Secret)
	return k, nil
}

func readDevKey(path string) (Key, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Key{}, err
		}
		return Key{}, fmt.Errorf("secretbox: read dev key: %w", err)
	}
	secret, err := ParseKey(string(raw))
	if err != nil {
		return Key{}, fmt.Errorf("secretbox: dev key %s: %w", path, err)
	}
	return Key{ID: devKeyID(secret), Secret: secret}, nil
}

func devKeyID(secret []byte) string {
	sum := sha256.Sum256(append([]byte("mpauth/secretbox/dev-key-id\x00"), secret...))
	return "dev-" + hex.EncodeToString(sum[:6])
}
