package v1

import "fmt"

// Redact methods keep kratos's logging middleware from logging secrets: it
// logs a request through Redact() when the message has one.

// Redact hides the login code.
func (x *LoginRequest) Redact() string {
	return fmt.Sprintf("platform:%q app_id:%q code:<redacted>", x.GetPlatform(), x.GetAppId())
}

// Redact hides the refresh token.
func (x *RefreshRequest) Redact() string { return "refresh_token:<redacted>" }
