package baidu

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/mpauth/mpauth/internal/provider"
)

// TestDecodeOddShapes covers what the HTTP tests express less easily: the
// odd shapes of the numeric fields.
func TestDecodeOddShapes(t *testing.T) {
	ok := `"openid":"` + testOpenID + `"`
	tests := []struct {
		name     string
		body     string
		wantKind error // nil: success
		wantCode string
	}{
		{"errno null is success", `{"errno":null,` + ok + `}`, nil, ""},
		{"errno empty string is success", `{"errno":"",` + ok + `}`, nil, ""},
		{"error_code 0 is success", `{"error_code":0,` + ok + `}`, nil, ""},
		{"error null is success", `{"error":null,` + ok + `}`, nil, ""},
		{"leading whitespace is fine", " \n\t{" + ok + "}\n", nil, ""},
		{"errno written as a float", `{"errno":10010500.0}`, provider.ErrUnavailable, "10010500"},
		{"errno in exponent form", `{"errno":1.00105e7}`, provider.ErrUnavailable, "10010500"},
		{"errno string with spaces", `{"errno":" 10010100 ","error_description":"Key: 'Code2SessionKeyParam.Code'"}`, provider.ErrCodeInvalid, "10010100"},
		{"errno non-numeric is unavailable", `{"errno":"abc"}`, provider.ErrUnavailable, "abc"},
		{"errno boolean is unavailable", `{"errno":true}`, provider.ErrUnavailable, "true"},
		{"errno fractional is unavailable", `{"errno":1.5}`, provider.ErrUnavailable, "1.5"},
		{"errno object is unavailable", `{"errno":{}}`, provider.ErrUnavailable, "{}"},
		{"long non-numeric errno is truncated", `{"errno":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}`, provider.ErrUnavailable, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa..."},
		{"error alone is a failure", `{"error":"invalid_grant",` + ok + `}`, provider.ErrCodeInvalid, "invalid_grant"},
		{"JSON string is unavailable", `"openid"`, provider.ErrUnavailable, ""},
		{"JSON number is unavailable", `0`, provider.ErrUnavailable, ""},
		{"empty openid is unavailable", `{"openid":""}`, provider.ErrUnavailable, ""},
		{"oversized openid is unavailable", `{"openid":"` + longID + `"}`, provider.ErrUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := DecodeSession(200, []byte(tt.body))
			if tt.wantKind == nil {
				if err != nil {
					t.Fatalf("DecodeSession: %v", err)
				}
				if s.OpenID != testOpenID {
					t.Errorf("OpenID = %q", s.OpenID)
				}
				return
			}
			checkError(t, err, tt.wantKind, tt.wantCode)
		})
	}
}

var longID = strings.Repeat("a", maxID+1)

func TestDecodeUnionID(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		want     string
		wantKind error
		wantCode string
	}{
		{"documented success", 200, `{"data":{"unionid":"St6PVMkgMDeh92Uq2EWfx6H"},"errmsg":"succ","errno":0,"request_id":"2321772211","timestamp":1563886782}`, "St6PVMkgMDeh92Uq2EWfx6H", nil, ""},
		{"success without errno", 200, `{"data":{"unionid":"St6PVMkgMDeh92Uq2EWfx6H"}}`, "St6PVMkgMDeh92Uq2EWfx6H", nil, ""},
		{"success with errno as a string", 200, `{"errno":"0","data":{"unionid":"u1"}}`, "u1", nil, ""},
		{"invalid token", 200, `{"error_code":110,"error_msg":"Access token invalid or no longer valid"}`, "", provider.ErrAccessTokenInvalid, "110"},
		{"expired token", 200, `{"error_code":111,"error_msg":"Access token expired"}`, "", provider.ErrAccessTokenInvalid, "111"},
		{"expired token with HTTP 401", 401, `{"error_code":111,"error_msg":"Access token expired"}`, "", provider.ErrAccessTokenInvalid, "111"},
		{"expired token with HTTP 500 is unavailable", 500, `{"error_code":111,"error_msg":"Access token expired"}`, "", provider.ErrUnavailable, "111"},
		{"errno 111", 200, `{"errno":111,"errmsg":"access token expired"}`, "", provider.ErrAccessTokenInvalid, "111"},
		{"OAuth expired_token", 401, `{"error":"expired_token"}`, "", provider.ErrAccessTokenInvalid, "expired_token"},
		{"server internal error", 200, `{"errno":10010500,"errmsg":"server internal error"}`, "", provider.ErrUnavailable, "10010500"},
		{"parameter error", 200, `{"errno":400,"errmsg":"param error","data":""}`, "", provider.ErrUnavailable, "400"},
		{"documented parameter errno", 200, `{"errno":10010100,"errmsg":"parameter is invalid"}`, "", provider.ErrUnavailable, "10010100"},
		{"access denied is misconfigured", 200, `{"error":"access_denied"}`, "", provider.ErrMisconfigured, "access_denied"},
		{"invalid_client is misconfigured", 400, `{"error":"invalid_client"}`, "", provider.ErrMisconfigured, "invalid_client"},
		{"unknown errno", 200, `{"errno":123,"errmsg":"?"}`, "", provider.ErrUnavailable, "123"},
		{"data array", 200, `{"errno":0,"data":[]}`, "", provider.ErrUnavailable, ""},
		{"data missing", 200, `{"errno":0,"errmsg":"succ"}`, "", provider.ErrUnavailable, ""},
		{"unionid of the wrong type", 200, `{"errno":0,"data":{"unionid":5}}`, "", provider.ErrUnavailable, ""},
		{"empty unionid", 200, `{"errno":0,"data":{"unionid":""}}`, "", provider.ErrUnavailable, ""},
		{"success with HTTP 202", 202, `{"errno":0,"data":{"unionid":"u1"}}`, "", provider.ErrUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeUnionID(tt.status, []byte(tt.body))
			if tt.wantKind != nil {
				checkError(t, err, tt.wantKind, tt.wantCode)
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("DecodeUnionID = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// seeds are the documented answers of platforms.md §5 and §6, and broken ones.
var seeds = []string{
	`{"openid":"l214zFqNrEuIEnp6m7Y01sw8yj","session_key":"981ce8b151c0599acf7ad1a673c6ff5e"}`,
	`{"errno":10010100,"error":"parameter is invalid","error_description":"Key: 'Code2SessionKeyParam.ClientID' Error:Field validation for 'ClientID' failed on the 'required' tag"}`,
	`{"errno":10010500,"error":"server internal error"}`,
	`{"error":"invalid_grant","error_description":"Invalid authorization code: ANXxSNjwQDugOnqeikRMu2bKaXCdlLxn"}`,
	`{"error":"invalid_client","error_description":"unknown client id"}`,
	`{"error_code":18,"error_msg":"Open api qps request limit reached"}`,
	`{"error_code":110,"error_msg":"Access token invalid or no longer valid"}`,
	`{"error_code":111,"error_msg":"Access token expired"}`,
	`{"data":{"unionid":"St6PVMkgMDeh92Uq2EWfx6H"},"errmsg":"succ","errno":0,"request_id":"2321772211","timestamp":1563886782}`,
	`{"errno":400,"errmsg":"param error"}`,
	`{"access_token":"1.a6b7dbd428f731035f771b8d15063f61.86400.1292922000-2346678-124328","expires_in":2592000,"refresh_token":"2.385d","scope":"s","session_key":"","session_secret":""}`,
	`{"access_token":"x","expires_in":"86400"}`,
	`{"errno":"10010500"}`,
	`{"errno":1.5,"error":{"a":1}}`,
	`<html><body>502 Bad Gateway</body></html>`,
	``,
	`{"session_key":"981ce8b151c0599acf7ad1a673c6ff5e","openid":"l2`,
	`[{"openid":"x"}]`,
	`null`,
}

var allKinds = []error{
	provider.ErrCodeInvalid, provider.ErrCodeUsed, provider.ErrRateLimited,
	provider.ErrUserBlocked, provider.ErrUnavailable, provider.ErrMisconfigured,
	provider.ErrAccessTokenInvalid,
}

// checkFuzzError is the property every decoder's failure must have.
func checkFuzzError(t *testing.T, err error, allowed ...error) {
	t.Helper()
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err is %T, want *provider.Error", err)
	}
	if pe.Platform != provider.Baidu {
		t.Fatalf("Platform = %q", pe.Platform)
	}
	known := false
	for _, k := range allowed {
		known = known || pe.Kind == k
	}
	if !known {
		t.Fatalf("unexpected kind %v", pe.Kind)
	}
	if n := utf8.RuneCountInString(pe.Message); n > maxMessage+3 {
		t.Fatalf("Message has %d runes", n)
	}
	if n := utf8.RuneCountInString(pe.Code); n > maxCodeField+3 {
		t.Fatalf("Code has %d runes", n)
	}
	for _, r := range pe.Code + pe.Message {
		if unicode.IsControl(r) {
			t.Fatalf("control character in %q / %q", pe.Code, pe.Message)
		}
	}
}

func addSeeds(f *testing.F) {
	for _, s := range seeds {
		f.Add(200, []byte(s))
	}
	f.Add(400, []byte(`{"error":"invalid_client"}`))
	f.Add(401, []byte(`{"error_code":111}`))
	f.Add(500, []byte(`{"errno":10010500}`))
	f.Add(502, []byte(`<html>bad gateway</html>`))
}

func FuzzDecodeSession(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		s, err := DecodeSession(status, body)
		s2, err2 := DecodeSession(status, body)
		if (s == nil) == (err == nil) {
			t.Fatalf("DecodeSession = (%v, %v): want exactly one of them", s, err)
		}
		if (err == nil) != (err2 == nil) || (s != nil && *s != *s2) {
			t.Fatal("DecodeSession is not deterministic")
		}
		if err == nil {
			if status != 200 || !validID(s.OpenID) {
				t.Fatalf("success with HTTP %d, openid %q", status, s.OpenID)
			}
			if s.SessionKey != "" && !validSessionKey(s.SessionKey) {
				t.Fatalf("kept an unusable session_key %q", s.SessionKey)
			}
			return
		}
		// An access-token error makes no sense for a call without a token.
		checkFuzzError(t, err, allKinds[:6]...)
	})
}

func FuzzDecodeToken(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		tok, err := DecodeToken(status, body)
		if err == nil {
			if status != 200 || !validToken(tok.Token) || tok.ExpiresIn <= 0 || tok.ExpiresIn > maxTokenLifetime {
				t.Fatalf("success with HTTP %d, token %+v", status, tok)
			}
			return
		}
		if tok != (provider.AccessToken{}) {
			t.Fatalf("token %+v with error %v", tok, err)
		}
		checkFuzzError(t, err, provider.ErrRateLimited, provider.ErrUnavailable, provider.ErrMisconfigured)
	})
}

func FuzzDecodeUnionID(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		u, err := DecodeUnionID(status, body)
		if err == nil {
			if status != 200 || !validID(u) {
				t.Fatalf("success with HTTP %d, unionid %q", status, u)
			}
			return
		}
		if u != "" {
			t.Fatalf("unionid %q with error %v", u, err)
		}
		checkFuzzError(t, err, provider.ErrRateLimited, provider.ErrUnavailable, provider.ErrMisconfigured, provider.ErrAccessTokenInvalid)
	})
}

func BenchmarkDecode(b *testing.B) {
	bodies := []struct {
		name   string
		decode func([]byte) error
		body   string
	}{
		{"session", func(b []byte) error { _, err := DecodeSession(200, b); return err }, seeds[0]},
		{"session error", func(b []byte) error { _, err := DecodeSession(200, b); return err }, seeds[1]},
		{"unionid", func(b []byte) error { _, err := DecodeUnionID(200, b); return err }, seeds[8]},
		{"token", func(b []byte) error { _, err := DecodeToken(200, b); return err }, seeds[10]},
	}
	for _, bb := range bodies {
		body := []byte(bb.body)
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				_ = bb.decode(body)
			}
		})
	}
}
