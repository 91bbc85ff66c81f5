package secretbox_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mpauth/mpauth/internal/secretbox"
)

func newKey(t *testing.T, id string) secretbox.Key {
	t.Helper()
	k, err := secretbox.GenerateKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newBox(t *testing.T, active string, keys ...secretbox.Key) *secretbox.Box {
	t.Helper()
	b, err := secretbox.New(active, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var aad = []string{"identity.session_key", "wechat", "wx1", "openid-1"}

func TestSealOpenRoundTrips(t *testing.T) {
	b := newBox(t, "", newKey(t, "k1"))
	for _, pt := range []string{"x", "tiDjVyqQvrNvIlwCMzQfvA==", strings.Repeat("token.", 400), "日本語 ünïcödé"} {
		sealed, err := b.Seal(pt, aad...)
		if err != nil {
			t.Fatal(err)
		}
		// (A 1-character plaintext may well occur in random base64.)
		if !strings.HasPrefix(sealed, "v1.k1.") || (len(pt) > 4 && strings.Contains(sealed, pt)) {
			t.Fatalf("sealed form %q: want v1.k1.… without the plaintext", sealed)
		}
		if n := secretbox.SealedLen(len(pt), len("k1")); n != len(sealed) {
			t.Errorf("SealedLen = %d, sealed is %d long", n, len(sealed))
		}
		got, err := b.Open(sealed, aad...)
		if err != nil || got != pt {
			t.Fatalf("Open = %q, %v; want %q", got, err, pt)
		}
	}
}

func TestSealUsesAFreshNonceEachTime(t *testing.T) {
	b := newBox(t, "", newKey(t, "k1"))
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		s, err := b.Seal("same secret", aad...)
		if err != nil {
			t.Fatal(err)
		}
		if seen[s] {
			t.Fatalf("the same plaintext sealed twice to %q", s)
		}
		seen[s] = true
	}
}

func TestEmptyPlaintextSealsToEmpty(t *testing.T) {
	b := newBox(t, "", newKey(t, "k1"))
	s, err := b.Seal("", aad...)
	if err != nil || s != "" {
		t.Fatalf("Seal(\"\") = %q, %v; want \"\"", s, err)
	}
	p, err := b.Open("", aad...)
	if err != nil || p != "" {
		t.Fatalf("Open(\"\") = %q, %v; want \"\"", p, err)
	}
}

func TestLegacyPlaintextOpensAsIs(t *testing.T) {
	b := newBox(t, "", newKey(t, "k1"))
	for _, legacy := range []string{"tiDjVyqQvrNvIlwCMzQfvA==", "24.6c5e1ff107f0e8bcef8c46d3424a0e78.2592000.1485516651.282335-8574074", "ACCESS_TOKEN"} {
		if secretbox.IsSealed(legacy) {
			t.Fatalf("IsSealed(%q) = true", legacy)
		}
		got, err := b.Open(legacy, aad...)
		if err != nil || got != legacy {
			t.Fatalf("Open(legacy %q) = %q, %v", legacy, got, err)
		}
	}
}

func TestOpenRefusesAnotherPlace(t *testing.T) {
	b := newBox(t, "", newKey(t, "k1"))
	sealed, err := b.Seal("secret", aad...)
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range [][]string{
		nil,
		{"identity.session_key", "wechat", "wx1", "openid-2"},     // another row
		{"platform_token.token", "wechat", "wx1", "openid-1"},     // another column
		{"identity.session_key", "wechat", "wx1openid-1", ""},     // parts shifted
		{"identity.session_key", "wechat", "wx1", "openid-1", ""}, // one part more
		{"identity.session_key|wechat|wx1|openid-1"},              // joined
	} {
		got, err := b.Open(sealed, other...)
		if !errors.Is(err, secretbox.ErrOpen) || got != "" {
			t.Errorf("Open with aad %q = %q, %v; want ErrOpen", other, got, err)
		}
	}
}

func TestOpenRefusesTamperedValues(t *testing.T) {
	b := newBox(t, "", newKey(t, "k1"))
	sealed, err := b.Seal("secret-session-key", aad...)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.TrimPrefix(sealed, "v1.k1.")
	raw, _ := base64.RawURLEncoding.DecodeString(body)
	flip := func(i int) string {
		c := append([]byte(nil), raw...)
		c[i] ^= 1
		return "v1.k1." + base64.RawURLEncoding.EncodeToString(c)
	}
	tests := map[string]string{
		"nonce bit flipped":      flip(0),
		"ciphertext bit flipped": flip(14),
		"tag bit flipped":        flip(len(raw) - 1),
		"truncated":              sealed[:len(sealed)-4],
		"too short":              "v1.k1." + base64.RawURLEncoding.EncodeToString(raw[:20]),
		"not base64":             "v1.k1.!!!!" + body,
		"no key id separator":    "v1.k1" + body,
		"bad key id":             "v1.k 1." + body,
		"appended data":          sealed + "AAAA",
	}
	for name, v := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := b.Open(v, aad...)
			if err == nil || got != "" {
				t.Fatalf("Open = %q, %v; want an error", got, err)
			}
			if strings.Contains(err.Error(), body) {
				t.Fatalf("the error quotes the value: %v", err)
			}
		})
	}
}

func TestOpenRefusesAnUnknownKey(t *testing.T) {
	k1, k2 := newKey(t, "k1"), newKey(t, "k2")
	sealed, err := newBox(t, "", k1).Seal("secret", aad...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := newBox(t, "", k2).Open(sealed, aad...)
	if !errors.Is(err, secretbox.ErrUnknownKey) || got != "" {
		t.Fatalf("Open under another key = %q, %v; want ErrUnknownKey", got, err)
	}
	// The same id with other key material is a tampered value, not garbage.
	other := newKey(t, "k1")
	got, err = newBox(t, "", other).Open(sealed, aad...)
	if !errors.Is(err, secretbox.ErrOpen) || got != "" {
		t.Fatalf("Open with another k1 = %q, %v; want ErrOpen", got, err)
	}
}

func TestRotationKeepsOldValuesReadable(t *testing.T) {
	k1, k2 := newKey(t, "k1"), newKey(t, "k2")
	before := newBox(t, "k1", k1)
	old, err := before.Seal("old secret", aad...)
	if err != nil {
		t.Fatal(err)
	}
	after := newBox(t, "k2", k1, k2)
	if got, err := after.Open(old, aad...); err != nil || got != "old secret" {
		t.Fatalf("old value after rotation: %q, %v", got, err)
	}
	fresh, err := after.Seal("new secret", aad...)
	if err != nil {
		t.Fatal(err)
	}
	if kid := secretbox.KeyIDOf(fresh); kid != "k2" {
		t.Fatalf("new values sealed with %q, want the active k2", kid)
	}
	if got, err := after.Open(fresh, aad...); err != nil || got != "new secret" {
		t.Fatalf("new value: %q, %v", got, err)
	}
	// An instance not yet rolled out to k2 cannot read it, and says why.
	if _, err := before.Open(fresh, aad...); !errors.Is(err, secretbox.ErrUnknownKey) {
		t.Fatalf("old instance on a k2 value: %v, want ErrUnknownKey", err)
	}
	// Once k1 is dropped, its values no longer open.
	if _, err := newBox(t, "", k2).Open(old, aad...); !errors.Is(err, secretbox.ErrUnknownKey) {
		t.Fatalf("a k1 value without k1: %v, want ErrUnknownKey", err)
	}
}

func TestNewRejectsBadKeySets(t *testing.T) {
	k1, k2 := newKey(t, "k1"), newKey(t, "k2")
	tests := []struct {
		name   string
		active string
		keys   []secretbox.Key
		want   string
	}{
		{"no keys", "", nil, "no keys"},
		{"short key", "", []secretbox.Key{{ID: "k", Secret: make([]byte, 16)}}, "16 bytes"},
		{"bad id", "", []secretbox.Key{{ID: "a.b", Secret: k1.Secret}}, "key id"},
		{"duplicate id", "k1", []secretbox.Key{k1, {ID: "k1", Secret: k2.Secret}}, "twice"},
		{"active not listed", "k3", []secretbox.Key{k1, k2}, "k3"},
		{"two keys, no active", "", []secretbox.Key{k1, k2}, "active"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := secretbox.New(tt.active, tt.keys...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

func TestBoxAndKeyPrintNoKeyMaterial(t *testing.T) {
	k := newKey(t, "k1")
	b := newBox(t, "", k)
	enc := base64.StdEncoding.EncodeToString(k.Secret)
	for _, s := range []string{fmt.Sprintf("%v %+v %#v %s", b, b, b, b), fmt.Sprintf("%v %+v %#v %s", k, k, k, k)} {
		if !strings.Contains(s, "k1") || strings.Contains(s, enc) || strings.Contains(s, fmt.Sprint(k.Secret)) {
			t.Fatalf("printed %q", s)
		}
	}
}

func TestParseKey(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(250 + i) // both base64 alphabets differ on these
	}
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(raw), base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw) + "\n",
	} {
		got, err := secretbox.ParseKey(s)
		if err != nil || string(got) != string(raw) {
			t.Fatalf("ParseKey(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(raw[:16]), base64.StdEncoding.EncodeToString(append(raw, 0))} {
		if _, err := secretbox.ParseKey(s); err == nil {
			t.Fatalf("ParseKey(%q) accepted", s)
		} else if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("the error quotes the key: %v", err)
		}
	}
}

func TestDevKeyIsCreatedOnceAndReused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dev-secrets-key")
	var (
		wg   sync.WaitGroup
		keys [8]secretbox.Key
		errs [8]error
	)
	for i := range keys {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			keys[i], errs[i] = secretbox.LoadOrCreateDevKey(path)
		}(i)
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if keys[i].ID != keys[0].ID || string(keys[i].Secret) != string(keys[0].Secret) {
			t.Fatalf("concurrent callers got different keys")
		}
	}
	if !strings.HasPrefix(keys[0].ID, "dev-") || len(keys[0].Secret) != 32 {
		t.Fatalf("dev key %v: want id dev-… and 32 bytes", keys[0])
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("dev key file mode %v, want 0600", fi.Mode().Perm())
	}
	sealed, err := newBox(t, "", keys[0]).Seal("s", aad...)
	if err != nil {
		t.Fatal(err)
	}
	again, err := secretbox.LoadOrCreateDevKey(path) // a restart
	if err != nil {
		t.Fatal(err)
	}
	if got, err := newBox(t, "", again).Open(sealed, aad...); err != nil || got != "s" {
		t.Fatalf("after a restart: %q, %v", got, err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := secretbox.LoadOrCreateDevKey(path); err == nil {
		t.Fatal("a corrupt dev key file was accepted (or silently replaced)")
	}
}
