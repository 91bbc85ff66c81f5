package data

import (
	"errors"

	"github.com/mpauth/mpauth/internal/secretbox"
)

// Secrets at rest: session_keys and platform access tokens are sealed with
// the Data's secretbox, bound to their column and the row's natural key, so
// a sealed value copied into another row or column does not open. Values
// written before encryption existed (plaintext) still read; the next write
// seals them.

var errNoSecretBox = errors.New("data: no secretbox configured for secrets at rest")

// SessionKeyAAD binds an identity's session_key to its row. Exported for
// what writes identities as mpauth does from outside (the benchmark's seeded
// users and its minimal login).
func SessionKeyAAD(platform, appID, openID string) []string {
	return []string{"identity.session_key", platform, appID, openID}
}

// platformTokenAAD binds an app's platform token to its row.
func platformTokenAAD(platform, appID string) []string {
	return []string{"platform_token.token", platform, appID}
}

func (d *Data) seal(plaintext string, aad []string) (string, error) {
	if d.box == nil {
		return "", errNoSecretBox
	}
	return d.box.Seal(plaintext, aad...)
}

// open returns the plaintext of a stored secret. A value that does not open
// (its key is no longer configured, or it was tampered with) reads as no
// secret, logged without the value: the caller then gets a fresh one (the
// user logs in again, the platform token is fetched again) instead of every
// request failing.
func (d *Data) open(stored string, aad []string, what string, row any) string {
	if stored == "" {
		return ""
	}
	if d.box == nil {
		d.log.Errorw("msg", "a stored secret cannot be read: no secretbox configured", "secret", what, "row", row)
		return ""
	}
	plain, err := d.box.Open(stored, aad...)
	if err != nil {
		d.log.Errorw("msg", "a stored secret does not decrypt: treated as absent (is its key still in secrets.keys?)",
			"secret", what, "row", row, "key_id", secretbox.KeyIDOf(stored), "err", err)
		return ""
	}
	return plain
}
