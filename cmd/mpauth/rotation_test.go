package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/mpauth/mpauth/internal/conf"
)

func newKeyPEM(t *testing.T) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// TestSigningKeyRotationKeepsTokensInFlight: rolling out a new active key
// (old key still listed) keeps old tokens valid until they expire; removing
// the old key ends them.
func TestSigningKeyRotationKeepsTokensInFlight(t *testing.T) {
	old, fresh := newKeyPEM(t), newKeyPEM(t)
	base := testConfig(t, "sqlite")
	base.Auth.DevGenerateKey = false

	v1cfg := proto.Clone(base).(*conf.Bootstrap)
	v1cfg.Auth.Keys = []*conf.Auth_Key{{Kid: "k-old", PrivateKey: old}}
	before := start(t, v1cfg)
	tok := before.login(t, appA, "leo")

	v2cfg := proto.Clone(base).(*conf.Bootstrap)
	v2cfg.Auth.Keys = []*conf.Auth_Key{{Kid: "k-old", PrivateKey: old}, {Kid: "k-new", PrivateKey: fresh}}
	v2cfg.Auth.ActiveKid = "k-new"
	during := start(t, v2cfg)
	if st, _, me := during.call(t, "GET", "/v1/me", tok["access_token"].(string), nil); st != 200 || me["user_id"] != tok["user_id"] {
		t.Fatalf("a token of the old key after rotation: %d %v", st, me)
	}
	newTok := during.login(t, appA, "leo")
	if !strings.Contains(headerOf(t, newTok["access_token"].(string)), `"kid":"k-new"`) {
		t.Fatalf("new tokens are not signed with the active key: %s", headerOf(t, newTok["access_token"].(string)))
	}
	// An old instance still verifies the new key's tokens only once it
	// lists the key: roll the key set out before switching active_kid.
	if st, _, _ := before.call(t, "GET", "/v1/me", newTok["access_token"].(string), nil); st != 401 {
		t.Fatalf("an instance without k-new accepted its token: %d", st)
	}

	v3cfg := proto.Clone(base).(*conf.Bootstrap)
	v3cfg.Auth.Keys = []*conf.Auth_Key{{Kid: "k-new", PrivateKey: fresh}}
	after := start(t, v3cfg)
	if st, _, _ := after.call(t, "GET", "/v1/me", tok["access_token"].(string), nil); st != 401 {
		t.Fatalf("a token of a removed key still works: %d", st)
	}
	if st, _, _ := after.call(t, "GET", "/v1/me", newTok["access_token"].(string), nil); st != 200 {
		t.Fatalf("a token of the kept key stopped working: %d", st)
	}
}

func headerOf(t *testing.T, tok string) string {
	t.Helper()
	raw, err := b64url(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
