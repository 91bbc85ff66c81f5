package main

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/secretbox"
)

// sqliteOf opens the SQLite database of an instance's config directly, as an
// operator (or an attacker with the file) would.
func sqliteOf(t *testing.T, bc *conf.Bootstrap) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+bc.Data.Database.Source+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// storedSecret is one secret column of one row, as stored.
type storedSecret struct {
	what   string
	aad    []string
	stored string
}

// storedSecrets reads every non-empty session_key and platform token.
func storedSecrets(t *testing.T, db *sql.DB) []storedSecret {
	t.Helper()
	var out []storedSecret
	rows, err := db.Query("SELECT platform, app_id, openid, session_key FROM identities WHERE session_key <> ''")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p, a, o, s string
		if err := rows.Scan(&p, &a, &o, &s); err != nil {
			t.Fatal(err)
		}
		out = append(out, storedSecret{"session_key of " + p + "/" + a, []string{"identity.session_key", p, a, o}, s})
	}
	rows.Close()
	rows, err = db.Query("SELECT platform, app_id, token FROM platform_tokens WHERE token <> ''")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p, a, s string
		if err := rows.Scan(&p, &a, &s); err != nil {
			t.Fatal(err)
		}
		out = append(out, storedSecret{"platform token of " + p + "/" + a, []string{"platform_token.token", p, a}, s})
	}
	rows.Close()
	return out
}

// databaseBytes is everything SQLite wrote for the database (file, WAL).
func databaseBytes(t *testing.T, bc *conf.Bootstrap) []byte {
	t.Helper()
	var all []byte
	for _, suffix := range []string{"", "-wal", "-journal"} {
		b, err := os.ReadFile(bc.Data.Database.Source + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// TestLoginsLeaveNoSecretInClearInTheDatabase logs users in on every
// platform with a session_key and fetches a platform access token, then
// reads the database file: every session_key and token is sealed under the
// configured key, and no plaintext of them is anywhere in the file — while
// the server still uses them (phone data decrypts with the session_key).
func TestLoginsLeaveNoSecretInClearInTheDatabase(t *testing.T) {
	bc := testConfig(t, "sqlite")
	in := start(t, bc)
	logins := []struct{ platform, app, user string }{
		{"wechat", appA, "sara"},
		{"douyin", appDouyin, "sara-dy"},
		{"kuaishou", appKuaishou, "sara-ks"},
		{"baidu", appBaidu, "sara-bd"},
	}
	var access string
	for _, l := range logins {
		tok := in.loginOn(t, l.platform, l.app, l.user)
		if l.platform == "wechat" {
			access = tok["access_token"].(string)
		}
	}
	// A phone code needs the app's platform access token: it gets stored.
	code := in.sandboxPost(t, "/sandbox/wechat/phone-codes", map[string]any{"app_id": appA, "user": "sara", "phone": "13900139000"})["code"]
	if status, _, got := in.call(t, "POST", "/v1/me/phone", access, map[string]any{"code": code}); status != 200 {
		t.Fatalf("phone by code: %d %v", status, got)
	}
	// The server opens what it sealed: data encrypted with sara's session_key decrypts.
	sealed := in.sandboxPost(t, "/sandbox/user-data", map[string]any{"platform": "wechat", "app_id": appA, "user": "sara", "kind": "phone", "phone": "13800138000", "country_code": "86"})
	if status, _, got := in.call(t, "POST", "/v1/me/phone", access, map[string]any{"encrypted_data": sealed["encrypted_data"], "iv": sealed["iv"]}); status != 200 {
		t.Fatalf("phone by encrypted data: %d %v", status, got)
	}

	devKey, err := secretbox.LoadOrCreateDevKey(filepath.Join(bc.Data.DataDir, "dev-secrets-key"))
	if err != nil {
		t.Fatal(err)
	}
	box, err := secretbox.New("", devKey)
	if err != nil {
		t.Fatal(err)
	}
	secrets := storedSecrets(t, sqliteOf(t, bc))
	var keys, tokens int
	for _, s := range secrets {
		if s.aad[0] == "identity.session_key" {
			keys++
		} else {
			tokens++
		}
		if !secretbox.IsSealed(s.stored) || secretbox.KeyIDOf(s.stored) != devKey.ID {
			t.Errorf("%s is not sealed under the configured key: %q", s.what, s.stored)
			continue
		}
		plain, err := box.Open(s.stored, s.aad...)
		if err != nil || plain == "" {
			t.Errorf("%s does not open: %v", s.what, err)
			continue
		}
		file := databaseBytes(t, bc)
		for _, form := range []string{plain, base64.StdEncoding.EncodeToString([]byte(plain))} {
			if bytes.Contains(file, []byte(form)) {
				t.Errorf("the database file holds the %s in clear", s.what)
			}
		}
	}
	if keys != len(logins) || tokens == 0 {
		t.Fatalf("found %d session keys and %d platform tokens, want %d and at least wechat's", keys, tokens, len(logins))
	}
}

// TestSecretsKeyRotationAcrossInstances: an instance rolled out with a new
// active key (old key still listed, the new one from a key file) reads what
// the old instance sealed, and seals new logins with the new key.
func TestSecretsKeyRotationAcrossInstances(t *testing.T) {
	k1, err := secretbox.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := secretbox.GenerateKey("k2")
	if err != nil {
		t.Fatal(err)
	}
	k2File := filepath.Join(t.TempDir(), "k2")
	if err := os.WriteFile(k2File, []byte(base64.StdEncoding.EncodeToString(k2.Secret)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := testConfig(t, "sqlite")
	base.Secrets = &conf.Secrets{Keys: []*conf.Secrets_Key{{Id: "k1", Key: base64.StdEncoding.EncodeToString(k1.Secret)}}}
	old := start(t, base)
	access := old.login(t, appA, "rita")["access_token"].(string)
	db := sqliteOf(t, base)
	var stored string
	if err := db.QueryRow("SELECT session_key FROM identities WHERE app_id = ?", appA).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if secretbox.KeyIDOf(stored) != "k1" {
		t.Fatalf("session_key stored as %q, want sealed under k1", stored)
	}

	rotated := proto.Clone(base).(*conf.Bootstrap)
	rotated.Secrets = &conf.Secrets{ActiveKeyId: "k2", Keys: []*conf.Secrets_Key{
		{Id: "k1", Key: base64.StdEncoding.EncodeToString(k1.Secret)},
		{Id: "k2", KeyFile: k2File},
	}}
	if err := conf.Validate(rotated); err != nil {
		t.Fatal(err)
	}
	next := start(t, rotated)
	// The new instance decrypts rita's data with the session_key the old one sealed under k1.
	sealed := old.sandboxPost(t, "/sandbox/user-data", map[string]any{"platform": "wechat", "app_id": appA, "user": "rita", "kind": "phone", "phone": "13800138002", "country_code": "86"})
	if status, _, got := next.call(t, "POST", "/v1/me/phone", access, map[string]any{"encrypted_data": sealed["encrypted_data"], "iv": sealed["iv"]}); status != 200 {
		t.Fatalf("a k1 session_key on the rotated instance: %d %v", status, got)
	}
	next.login(t, appB, "rita")
	if err := db.QueryRow("SELECT session_key FROM identities WHERE app_id = ?", appB).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if secretbox.KeyIDOf(stored) != "k2" {
		t.Fatalf("a login on the rotated instance stored %q, want sealed under k2", stored)
	}
}
