package v1

import "fmt"

// Redact methods keep kratos's logging middleware from logging secrets: it
// logs a request through Redact() when the message has one.

// Redact hides the login codes.
func (x *LoginRequest) Redact() string {
	return fmt.Sprintf("platform:%q app_id:%q code:<redacted> anonymous_code:<redacted>", x.GetPlatform(), x.GetAppId())
}

// Redact hides the phone code and the encrypted data.
func (x *SetPhoneRequest) Redact() string { return "code:<redacted> encrypted_data:<redacted>" }

// Redact hides the encrypted data; the profile itself is not secret.
func (x *SetProfileRequest) Redact() string {
	return fmt.Sprintf("encrypted_data:<redacted> nickname:%q", x.GetNickname())
}

// Redact hides the refresh token.
func (x *RefreshRequest) Redact() string { return "refresh_token:<redacted>" }
