package v1

import (
	"fmt"
	"strconv"
	"strings"
)

// Redact methods keep kratos's logging middleware from logging secrets: it
// logs a request through Redact() when the message has one.

// Redact hides the login codes. Every login is logged, so it appends to one
// buffer instead of formatting with fmt (one allocation, not three).
func (x *LoginRequest) Redact() string {
	b := make([]byte, 0, 128)
	b = append(b, "platform:"...)
	b = strconv.AppendQuote(b, x.GetPlatform())
	b = append(b, " app_id:"...)
	b = strconv.AppendQuote(b, x.GetAppId())
	b = append(b, " code:<redacted> anonymous_code:<redacted>"...)
	return string(b)
}

// Redact hides the phone code and the encrypted data.
func (x *SetPhoneRequest) Redact() string { return "code:<redacted> encrypted_data:<redacted>" }

// Redact hides the encrypted data; the profile itself is not secret.
func (x *SetProfileRequest) Redact() string {
	return fmt.Sprintf("encrypted_data:<redacted> nickname:%q", x.GetNickname())
}

// Redact hides the refresh token.
func (x *RefreshRequest) Redact() string { return "refresh_token:<redacted>" }

// Redact hides the token a backend asks about.
func (x *IntrospectTokenRequest) Redact() string { return "token:<redacted>" }

// Redact hides the login code of the account being bound.
func (x *BindIdentityRequest) Redact() string {
	return fmt.Sprintf("platform:%q app_id:%q code:<redacted>", x.GetPlatform(), x.GetAppId())
}

// Redact masks the phone number an operator searches by.
func (x *ListUsersRequest) Redact() string {
	return fmt.Sprintf("platform:%q app_id:%q openid:%q union_scope:%q unionid:%q phone:%q page_size:%d",
		x.GetPlatform(), x.GetAppId(), x.GetOpenid(), x.GetUnionScope(), x.GetUnionid(), maskPhone(x.GetPhone()), x.GetPageSize())
}

// maskPhone keeps a phone number's first three and last two digits.
func maskPhone(p string) string {
	if len(p) <= 5 {
		return strings.Repeat("*", len(p))
	}
	return p[:3] + strings.Repeat("*", len(p)-5) + p[len(p)-2:]
}
