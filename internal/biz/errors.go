package biz

import (
	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
)

// API errors the use cases return. Messages tell the caller what to do and
// never carry a secret.
var (
	ErrUnauthenticated     = v1.ErrorUnauthenticated("the access token is missing, invalid, expired or its session was revoked: refresh or log in again")
	ErrRefreshTokenInvalid = v1.ErrorRefreshTokenInvalid("the refresh token is unknown, expired, already used or its session was revoked: log in again")
	ErrStorageUnavailable  = v1.ErrorStorageUnavailable("the database is unavailable: retry later")
	ErrInternal            = v1.ErrorInternal("internal error: retry later; the operator can find details in the server log")
	ErrUnauthenticatedKey  = v1.ErrorUnauthenticated("this API needs an API key: send Authorization: Bearer <api key>")
)

func errPermissionDenied(scope string) error {
	return v1.ErrorPermissionDenied("this API key lacks the %q scope this API needs", scope)
}
