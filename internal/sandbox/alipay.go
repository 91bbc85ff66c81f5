package sandbox

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mpauth/mpauth/internal/provider"
)

// The Alipay fake: the OpenAPI v1 gateway, POST /gateway.do with method
// alipay.system.oauth.token, answered as openapi.alipay.com does
// (platforms.md §2): requests must carry a valid RSA2 signature by the app's
// private key, every answer is signed with the sandbox's "Alipay" key, codes
// are strings and errors come with HTTP 200.
//
// The sandbox checks a request's signature with the public half of the
// app's configured private_key (standing in for the app public key uploaded
// to Alipay's console). Configure apps' platform_public_key with
// AlipaySandboxPublicKeyPEM so their providers accept the answers.

// AlipaySandboxPublicKeyPEM is the public key of the sandbox's fake Alipay:
// put it in the platform_public_key of apps whose endpoint is the sandbox.
const AlipaySandboxPublicKeyPEM = `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxWFA9rurS0VC1CcSKbu3
5qMW8n+z9OKj856NZFBQcxO2xuPVRCtH/rOHjCh+zV3p/OoHGxF3iWH7e6hNPQpF
slHrlnZXul/0OOTG8H6UkJU3U9wuUIqnVQ1HH1GpQS6Fr8QgjFmcvWqy8YFFgQnI
GMs7qACjjx6ZHwXtjIiT3EbSihOHp+ZI8q800lZuYZHwVAwG611yJDjQ643UavME
8Ym/QtrHL5cmHNiwsf9ZGCUNrSfrn58f5+XiPL3X7V+RC4phdjjzyNOcPxfqK3qq
qCVymaFXrKrWQyfRqI+14+y9+i8n6MPB3E1YDJNO4WBGzehKUrfF+BfadgiQSdVA
NwIDAQAB
-----END PUBLIC KEY-----
`

// AlipayPublicKeyPEM returns AlipaySandboxPublicKeyPEM.
func AlipayPublicKeyPEM() string { return AlipaySandboxPublicKeyPEM }

// AlipayDemoAppPrivateKeyPEM is a private key for demo Alipay apps (PKCS#8,
// RSA 2048). SANDBOX ONLY: it is public, generated for this repository and
// never registered with Alipay. Never use it for a real app.
const AlipayDemoAppPrivateKeyPEM = `-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDIWxUHhFIqH9iX
bdxAqUwYBXFA2GlDHLg+qZhm/KSKb039w55ToEC91trEXI/5UmH91aasEAVtKztG
hjMukDTLre37v290v7iby+Fx2Wc4Br22v99/0f9wCAl9tueY9UUMc6Uawh0dLhSn
r7zo5Xmxx0k/XjRYPT1nBE7WORRXPgmC+poIvgcQjAlakdsf1AjnzMfPj2TjhV92
IyO4X3JbofRdZP6jl8mP6Wkdf3aMYLUnv/2ll34ZUQvKd/0Wtx1Vd03TD6qM5juF
cnp4YFDPkYrDPWwQcl2vKycj9aUIIkIb/I8OaBU+4ljAqM6acRORbzq+68cBXlBU
17y/anvFAgMBAAECggEASU49/v6Ue3Ikcp9RD12CCGXxXorv1IzNAqxVpRS59Sat
T/RDWRCQr4TNjTvat5vDW7bQoTLJcXx4VyDh2B8OGhm8sbgExSAioOozRc8H+5FH
13YThbZlce2W32bNDQNsbJZhac1tDpCeIQ5lHYdcg8XJEITcvQ5HCYqjd7DxtstH
fnZA6Y34QKBydwcE2gugtCFuoRHKijtsYlY3oMmCXOU1a32oAwmuqjjV1vdZ1CdB
sUPpaGdjDZ4SDc0jOjUj8/qwgZFg53iDCuQUFhV8WJTaN3xcLfXsO0+FHtKbhRH0
h+y7+PANWdg5EQmxS8RiCd1NSIka1EOR5eE50Q9mrwKBgQDveWNIVmKXalV1ShoC
ji2k6PAeJ91axAGNXipgm3Te86EuQZCgaxuPzh7GM1jGN7g1sr1qV2pBjWT6B1W7
8DON0qDLLQZHE9y7wCdbsvBDxF/ZKiLESTB83aQ0YHbxWAUXVQ/FKXCBsazD2sCL
OR4D5Gd6xHqLR5sc9wGVNyI4xwKBgQDWLp5zwuKe4UAoyNSwEWbm2JS1HbClJwPv
KCqe2z7PRjTnDE+TulPXMe9GzAKVfvY7sICTDnPVYy+H2Rp7XT88gIqARpTr/yh8
mdLpUwUPUofTjjgI2/Z5quXZnLSsA+KfdtWZ2XqtanZ06iX333ptM88H5oQuAhF/
lwyUaoqTEwKBgEbjYAhhyf2YdIOr09c9zzUp3yqOEnBz5SG75j+CxS3aYLQYpH9Y
NWh0U5fIS1ch113N81QvXDzbZjC9Sxu/FwO8feym/1y6/HR3hS8X4ReuYdEfL/t6
zuenlJwMkikPLTKi83AhvDQoLEQt1SFhXwk364nj74KbR8djNwy8rVyxAoGBAJ41
jYIBIRkvVg9KWiE8mYBH14D5z3QPH87XIrR5SyocuBM7esSqzCeXkSIArJ/1SrnI
pRD7igDD5WY5rmAV/xIX+TbL7FFvB18S2ULUulYZJo/U6/tPT/+Lh4F5SdQOgqY8
R4f/p6jVjW7LTwSMJYjozjMNyfGaQYa38ujm0jnVAoGBAMzV7MjohUbCY56lPtqd
7W2d4QOGJ11WeOUUJBZDnHUYY2hakh2fuD2JpnlxDcIreSXigzTOeEJuvljDzU7T
nIst5VW+3CViCT8urhfcXjRiFhZT4XspGC4IiIlgQ5ZWmEt4Qp0wOEj0sxObbO/V
yFi/1pG4nCTzmz0S1ByRMHll
-----END PRIVATE KEY-----
`

// AlipayDemoAESKey is an AES-128 content encryption key (aes_key) for demo
// Alipay apps. SANDBOX ONLY, public.
const AlipayDemoAESKey = "DWWdRHsCcZRZM74lN4m1DQ=="

// alipaySandboxPrivateKeyPEM signs every answer of the fake gateway. It is
// fixed (not generated at start) so that configs can embed its public key,
// AlipaySandboxPublicKeyPEM. SANDBOX ONLY: public, never an Alipay key.
const alipaySandboxPrivateKeyPEM = `-----BEGIN RSA PRIVATE KEY-----
MIIEoQIBAAKCAQEAxWFA9rurS0VC1CcSKbu35qMW8n+z9OKj856NZFBQcxO2xuPV
RCtH/rOHjCh+zV3p/OoHGxF3iWH7e6hNPQpFslHrlnZXul/0OOTG8H6UkJU3U9wu
UIqnVQ1HH1GpQS6Fr8QgjFmcvWqy8YFFgQnIGMs7qACjjx6ZHwXtjIiT3EbSihOH
p+ZI8q800lZuYZHwVAwG611yJDjQ643UavME8Ym/QtrHL5cmHNiwsf9ZGCUNrSfr
n58f5+XiPL3X7V+RC4phdjjzyNOcPxfqK3qqqCVymaFXrKrWQyfRqI+14+y9+i8n
6MPB3E1YDJNO4WBGzehKUrfF+BfadgiQSdVANwIDAQABAoH/Jcd3p8JEByQ6pmDU
GSjVClAtFD1dNIIs33R5m7nDrEMZuPfi2ilunlG+oBUgMC7Jmp8wvP2a47Ddcc3E
+un8bSVA8ou0PvgexsUDTwTrasEk1ehO9RuU67Ke6l+3BcLh08K2eCau2ZKSracQ
pqI4qoY75Ow6Yip5JHb+AOgjZQXSjLQ6fvRUFuIG7BgpmA15gx2w+Y6eFoDfFw+I
sWRYmNQqwEDH5Ug0lA2oKMgLzwd153zmOkoIMUd7Uwew3vEky4duOqQR3eQNHe1i
Bl/SSgEanupxoV/6eM/pHCeuKEOk93Smd7PKAuneWZBqphhLywzaXUlqNqKs3o7K
xLoRAoGBAP7B6BiLdYwWVnJVoVyhrgHnUSPCqQBdL2aIE4ayvWMMH8TNWdGs1r8h
MusOS+8h47MFMUKTFefYzjk+D7vL2h0A/4PtHehySJNEGr37Nl7VvHBpzLlYnf5D
EEnUkihl6A87YJMCuNsYfqUf/Gw/Eom8jGUuANZ5u0osWzCIDAS5AoGBAMZXtG4R
CSpYoUtXgGG+xDnXW8iP5Zg0Hoaihrd/IIfU07OC+5F3+VgJ+CKRvMok4egQuP4g
cvbZOLWD19OBeu2UFr9z1ZCFxO7RTic2wnyZ2eTMdj1vHo+oXqzObFzXH9dVy1vU
hvK1r/qw3AYXy2oPjMOhX0WyV+uw8w+vZtRvAoGARlLqqdPdd/U2mcsvhu2OpjHf
gRqcImCW1BveIAG5K91N67qv/6RRh2M3thE1PubA/0sApRsLIfwEOWL7XuDP7c+3
uQg8iEz74cMcCrOM97LSmMlr3QIsYuLKXUcTrZkr7QB8ETjgJILneteQi6UBjgoB
S3DehFYIMFp8NbJodukCgYEAjakmnVZdjXkv+nfMogN2czl1vJHKEiNnihGa1oRd
36YKbjQnKYbe+Bpmt4oPpPEiyHTpK9hRRC1xa3N3OwFHo1gZxzQcXNSuC0RC5Y8e
6Y+ZKOk/qjErSr+enx3wF38upsYIMNZibAeIYSzgeRmVl3LzvuYK/eSbFyOS9qj4
cNECgYAckP1G+V65yQgvxwfmmwm8Euq+HOCOFA8SvMIzgInFusY32B7kDgvk2cWj
/hVyTqzmRL64GADRlMk7EDRAnPxWCex+CUNolq/jeU6RcZVSwzuJLuJJ0jYBZyG9
RpyPcx1dmg2hEqpm2cXcbvDboMz50Q9aqrQGBrtemgOwzZBp9g==
-----END RSA PRIVATE KEY-----
`

var (
	alipayKeyOnce sync.Once
	alipayKey     *rsa.PrivateKey
)

// alipaySigningKey parses the sandbox Alipay key once per process.
func alipaySigningKey() *rsa.PrivateKey {
	alipayKeyOnce.Do(func() {
		k, err := alipayParsePrivateKey(alipaySandboxPrivateKeyPEM)
		if err != nil {
			panic("sandbox: the built-in Alipay key does not parse: " + err.Error())
		}
		alipayKey = k
	})
	return alipayKey
}

const (
	alipayMethod       = "alipay.system.oauth.token"
	alipayResponseNode = "alipay_system_oauth_token_response"
	alipayErrorNode    = "error_response"
	// alipayTokenTTL is what the gateway answered for auth_base tokens in a
	// real exchange (31536000 s, platforms.md §2.4).
	alipayTokenTTL = 31536000
	// maxAlipayForm caps a gateway request body.
	maxAlipayForm = 64 << 10
)

var alipayBeijing = time.FixedZone("CST", 8*3600)

var alipay = &platform{
	name: provider.Alipay,
	// Auth codes are 32 lowercase hex characters, like
	// 4b203fe6c11548bcabd8da5bb087a83b (platforms.md §2.3).
	newCode: func() string { return randomString(32, "0123456789abcdef") },
	// open_id is per (user, app) (§2.6). Its format is not documented:
	// real ones look like 0 + 46 alphanumerics (UNCONFIRMED).
	openID: func(appID, user string) string {
		return "0" + alipayAlnum(digest("alipay open_id", appID, user), 46)
	},
	// union_id is per (user, app group); the format is not documented
	// either (UNCONFIRMED), the same shape as open_id.
	unionID: func(scope, user string) string {
		return "0" + alipayAlnum(digest("alipay union_id", scope, user), 46)
	},
	// Alipay has no session key.
	newSessionKey: func() string { return "" },
	routes: func(s *Sandbox, p *platform, mux *http.ServeMux) {
		// Any method: the gateway reads the parameters from the query
		// string as well as from a form body.
		mux.HandleFunc("/gateway.do", func(w http.ResponseWriter, r *http.Request) {
			s.alipayGateway(w, r, p)
		})
	},
	sealUserData: alipaySeal,
}

// alipayUserID is the user's 2088 + 12 digits uid. Like the real one it is
// the same on every app (§2.6).
func alipayUserID(user string) string {
	n := binary.BigEndian.Uint64(digest("alipay user_id", user)) % 1_000_000_000_000
	return fmt.Sprintf("2088%012d", n)
}

// alipayLegacyUserID is the deprecated 32-digit alipay_user_id legacy
// answers still carry (§2.4).
func alipayLegacyUserID(user string) string {
	d := digest("alipay alipay_user_id", user)
	return fmt.Sprintf("2088%014d%014d", binary.BigEndian.Uint64(d)%1e14, binary.BigEndian.Uint64(d[8:])%1e14)
}

// alipayAlnum renders a digest as n alphanumerics.
func alipayAlnum(seed []byte, n int) string {
	out := make([]byte, 0, n)
	for i := 0; len(out) < n; i++ {
		for _, b := range digest(string(seed), fmt.Sprint(i)) {
			if len(out) == n {
				break
			}
			out = append(out, alnum[int(b)%len(alnum)])
		}
	}
	return string(out)
}

// alipayErr is a gateway error (§2.5): code and msg, sub_code and sub_msg.
type alipayErr struct {
	Code    string `json:"code"`
	Msg     string `json:"msg"`
	SubCode string `json:"sub_code"`
	SubMsg  string `json:"sub_msg"`
}

// The gateway errors the fake answers (msg texts from §2.5; sub_msg texts
// as the gateway words them).
var (
	alipayMissingMethod  = alipayErr{"40001", "Missing Required Arguments", "isv.missing-method", "缺少方法名参数"}
	alipayMissingAppID   = alipayErr{"40001", "Missing Required Arguments", "isv.missing-app-id", "缺少AppID参数"}
	alipayMissingSign    = alipayErr{"40001", "Missing Required Arguments", "isv.missing-signature", "缺少签名参数"}
	alipayMissingSignTyp = alipayErr{"40001", "Missing Required Arguments", "isv.missing-signature-type", "缺少签名类型参数"}
	alipayMissingTime    = alipayErr{"40001", "Missing Required Arguments", "isv.missing-timestamp", "缺少时间戳参数"}
	alipayMissingVersion = alipayErr{"40001", "Missing Required Arguments", "isv.missing-version", "缺少版本参数"}
	alipayInvalidMethod  = alipayErr{"40002", "Invalid Arguments", "isv.invalid-method", "不存在的方法名"}
	alipayInvalidAppID   = alipayErr{"40002", "Invalid Arguments", "isv.invalid-app-id", "无效的AppID参数"}
	alipayInvalidSignTyp = alipayErr{"40002", "Invalid Arguments", "isv.invalid-signature-type", "无效的签名类型"}
	alipayInvalidTime    = alipayErr{"40002", "Invalid Arguments", "isv.invalid-timestamp", "非法的时间戳参数"}
	alipayInvalidCharset = alipayErr{"40002", "Invalid Arguments", "isv.invalid-charset", "字符集错误"}
	alipayInvalidFormat  = alipayErr{"40002", "Invalid Arguments", "isv.invalid-format", "无效的数据格式"}
	alipayInvalidParam   = alipayErr{"40002", "Invalid Arguments", "isv.invalid-parameter", "参数无效"}
	alipayNoSignConfig   = alipayErr{"40002", "Invalid Arguments", "isv.missing-signature-config", "验签出错, 未配置对应签名算法的公钥或者证书"}
	alipayInvalidGrant   = alipayErr{"40002", "Invalid Arguments", "isv.grant-type-invalid", "不支持的grantType"}
	alipayCodeInvalid    = alipayErr{"40002", "Invalid Arguments", "isv.code-invalid", "授权码code无效"}
	alipayBusy           = alipayErr{"20000", "Service Currently Unavailable", "isp.unknow-error", "系统繁忙"}
	// Call limits: code 40005 and the sub_code of Alipay's common error
	// list (not in platforms.md; UNCONFIRMED for this API).
	alipayCallLimited = alipayErr{"40005", "Call Limited", "isv.app-call-limited", "应用调用次数超限，包含调用频率超限"}
	// UNCONFIRMED: no documented error refuses one user; this business
	// failure stands for Alipay's risk control.
	alipayUserRisk = alipayErr{"40004", "Business Failed", "isv.user-risk-forbidden", "用户存在风险，禁止授权"}
)

// alipayToken is a successful alipay.system.oauth.token node. Like the real
// gateway it sends the expiries as numbers and open_id or user_id according
// to the app's mode (§2.6): apps on openid (the default) get no user_id,
// legacy apps (identity_field user_id) no open_id.
type alipayToken struct {
	AccessToken  string `json:"access_token"`
	AlipayUserID string `json:"alipay_user_id,omitempty"`
	AuthStart    string `json:"auth_start"`
	ExpiresIn    int64  `json:"expires_in"`
	ReExpiresIn  int64  `json:"re_expires_in"`
	RefreshToken string `json:"refresh_token"`
	UserID       string `json:"user_id,omitempty"`
	OpenID       string `json:"open_id,omitempty"`
	UnionID      string `json:"union_id,omitempty"`
}

// alipayAppKeys caches the public key of each app's private_key.
type alipayAppKeys map[string]*rsa.PublicKey

func (s *Sandbox) alipayAppKey(app provider.App) *rsa.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := s.platformState(provider.Alipay, func() any { return alipayAppKeys{} }).(alipayAppKeys)
	if k, ok := keys[app.AppID]; ok {
		return k
	}
	var pub *rsa.PublicKey
	if k, err := alipayParsePrivateKey(app.PrivateKeyPEM); err == nil {
		pub = &k.PublicKey
	}
	keys[app.AppID] = pub // nil: the app has no usable key
	return pub
}

func (s *Sandbox) alipayGateway(w http.ResponseWriter, r *http.Request, p *platform) {
	r.Body = http.MaxBytesReader(w, r.Body, maxAlipayForm)
	if err := r.ParseForm(); err != nil {
		writeAlipayError(w, alipayInvalidParam, true)
		return
	}
	// Body values first, then the query string (r.Form holds both).
	get := r.Form.Get
	appID, method := get("app_id"), get("method")
	switch {
	case method == "":
		writeAlipayError(w, alipayMissingMethod, true)
		return
	case appID == "":
		writeAlipayError(w, alipayMissingAppID, true)
		return
	case method != alipayMethod:
		writeAlipayError(w, alipayInvalidMethod, true)
		return
	}
	app, ok := s.app(p.name, appID)
	if !ok {
		// The real gateway has no key to sign with for an app it does not
		// know, and answers this one unsigned.
		s.logAlipay(appID, "", alipayInvalidAppID.SubCode)
		writeAlipayError(w, alipayInvalidAppID, false)
		return
	}
	fail := func(e alipayErr) {
		s.logAlipay(appID, "", e.SubCode)
		writeAlipayError(w, e, true)
	}
	switch ts := get("timestamp"); {
	case get("sign") == "":
		fail(alipayMissingSign)
		return
	case get("sign_type") == "":
		fail(alipayMissingSignTyp)
		return
	case get("sign_type") != "RSA2":
		fail(alipayInvalidSignTyp)
		return
	case ts == "":
		fail(alipayMissingTime)
		return
	case !alipayValidTimestamp(ts):
		// Only the format is checked: the sandbox's clock may be a test's.
		fail(alipayInvalidTime)
		return
	case get("version") == "":
		fail(alipayMissingVersion)
		return
	case get("version") != "1.0":
		fail(alipayInvalidParam)
		return
	case get("charset") != "" && !strings.EqualFold(get("charset"), "utf-8"):
		fail(alipayInvalidCharset)
		return
	case get("format") != "" && !strings.EqualFold(get("format"), "JSON"):
		fail(alipayInvalidFormat)
		return
	}
	pub := s.alipayAppKey(app)
	if pub == nil {
		fail(alipayNoSignConfig)
		return
	}
	content := alipaySignContent(r.Form)
	if !alipayVerify(pub, []byte(content), get("sign")) {
		// The real gateway echoes the string it verified (§2.3).
		e := alipayErr{"40002", "Invalid Arguments", "isv.invalid-signature",
			"验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：" + content}
		fail(e)
		return
	}
	if get("grant_type") != "authorization_code" {
		// The sandbox issues no refresh tokens to redeem.
		fail(alipayInvalidGrant)
		return
	}
	code := get("code")
	if code == "" {
		// UNCONFIRMED: what the gateway says about a missing code.
		fail(alipayCodeInvalid)
		return
	}

	l, err := s.redeem(p, app, code)
	var fe *faultError
	switch {
	case errors.As(err, &fe):
		s.log.Infow("msg", "alipay oauth.token: injected fault", "app_id", appID, "user", fe.user, "fault", fe.kind)
		if s.writeTransportFault(w, r, fe.kind) {
			return
		}
		switch fe.kind {
		case FaultRateLimited:
			writeAlipayError(w, alipayCallLimited, true)
		case FaultBlocked:
			writeAlipayError(w, alipayUserRisk, true)
		default: // FaultBusy
			writeAlipayError(w, alipayBusy, true)
		}
		return
	case err != nil:
		// Alipay does not tell a used code from an expired or foreign
		// one: all are isv.code-invalid (§2.5).
		s.logAlipay(appID, l.user, alipayCodeInvalid.SubCode)
		writeAlipayError(w, alipayCodeInvalid, true)
		return
	}
	t := alipayToken{
		AccessToken:  "authbseB" + randomString(32, "0123456789abcdef"),
		AuthStart:    s.now().In(alipayBeijing).Format("2006-01-02 15:04:05"),
		ExpiresIn:    alipayTokenTTL,
		ReExpiresIn:  alipayTokenTTL,
		RefreshToken: "authbseB" + randomString(32, "0123456789abcdef"),
		UnionID:      l.unionID,
	}
	if app.IdentityField == "user_id" {
		t.UserID = alipayUserID(l.user)
		t.AlipayUserID = alipayLegacyUserID(l.user)
	} else {
		t.OpenID = l.openID
	}
	s.logAlipay(appID, l.user, "")
	writeAlipay(w, alipayResponseNode, t, true)
}

func (s *Sandbox) logAlipay(appID, user, subCode string) {
	s.log.Infow("msg", "alipay oauth.token", "app_id", appID, "user", user, "sub_code", subCode)
}

func writeAlipayError(w http.ResponseWriter, e alipayErr, signed bool) {
	writeAlipay(w, alipayErrorNode, e, signed)
}

// writeAlipay sends {"<node>":{...},"sign":"..."} with HTTP 200. The node
// escapes "/" as "\/" like the real gateway (§2.4) and the signature covers
// its bytes exactly as sent, so a provider that re-serialises the JSON
// before verifying fails here as it would against Alipay.
func writeAlipay(w http.ResponseWriter, node string, v any, signed bool) {
	content, _ := json.Marshal(v)
	content = []byte(strings.ReplaceAll(string(content), "/", `\/`))
	var b strings.Builder
	b.WriteString(`{"` + node + `":`)
	b.Write(content)
	if signed {
		sig, err := alipaySign(content)
		if err == nil {
			b.WriteString(`,"sign":"` + sig + `"`)
		}
	}
	b.WriteString("}")
	// UNCONFIRMED: the gateway's Content-Type; providers must not rely on it.
	w.Header().Set("Content-Type", "text/html;charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(b.String()))
}

func alipayValidTimestamp(ts string) bool {
	_, err := time.ParseInLocation("2006-01-02 15:04:05", ts, alipayBeijing)
	return err == nil
}

// alipaySignContent is the gateway's string-to-sign (§2.3): every parameter
// but sign with a non-empty value, sorted, k=v joined with &, raw values.
func alipaySignContent(form map[string][]string) string {
	keys := make([]string, 0, len(form))
	for k, v := range form {
		if k != "sign" && len(v) > 0 && v[0] != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + form[k][0]
	}
	return strings.Join(parts, "&")
}

// alipaySign signs content with the sandbox Alipay key (RSA2, base64).
func alipaySign(content []byte) (string, error) {
	h := sha256.Sum256(content)
	sig, err := rsa.SignPKCS1v15(nil, alipaySigningKey(), crypto.SHA256, h[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

func alipayVerify(pub *rsa.PublicKey, content []byte, sign string) bool {
	sig, err := base64.StdEncoding.DecodeString(sign)
	if err != nil {
		return false
	}
	h := sha256.Sum256(content)
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig) == nil
}

// alipayParsePrivateKey reads a PKCS#1 or PKCS#8 RSA key, PEM or bare
// base64 (how the Alipay key tool hands it out).
func alipayParsePrivateKey(s string) (*rsa.PrivateKey, error) {
	s = strings.TrimSpace(s)
	var der []byte
	if b, _ := pem.Decode([]byte(s)); b != nil {
		der = b.Bytes
	} else {
		var err error
		if der, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), "")); err != nil {
			return nil, errors.New("neither PEM nor base64")
		}
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errors.New("not an RSA private key")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA private key")
	}
	return rk, nil
}

// alipaySeal encrypts a phone number as my.getPhoneNumber hands it to the
// mini-program (§2.9): the JSON {"code":"10000","msg":"Success","mobile":...}
// in AES-CBC with the app's aes_key, a zero IV and PKCS#7 padding, base64;
// the sign is RSA2 by the sandbox Alipay key over that base64 text in
// double quotes. Alipay has no encrypted profile.
func alipaySeal(_ *Sandbox, app provider.App, _ string, doc UserDataDoc) (SealedUserData, error) {
	if doc.Kind != "phone" {
		return SealedUserData{}, errors.New("kind: Alipay only encrypts phone numbers (my.getPhoneNumber); profiles come from my.getOpenUserInfo in clear")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(app.AESKey))
	if app.AESKey == "" || err != nil || (len(key) != 16 && len(key) != 24 && len(key) != 32) {
		return SealedUserData{}, fmt.Errorf("app_id: Alipay app %s has no usable aes_key (base64 of a 16, 24 or 32-byte key) to encrypt with", app.AppID)
	}
	plain, _ := json.Marshal(struct {
		Code   string `json:"code"`
		Msg    string `json:"msg"`
		Mobile string `json:"mobile"`
	}{"10000", "Success", doc.Phone})
	ct, err := alipayAESEncrypt(key, plain)
	if err != nil {
		return SealedUserData{}, err
	}
	response := base64.StdEncoding.EncodeToString(ct)
	sig, err := alipaySign([]byte(`"` + response + `"`))
	if err != nil {
		return SealedUserData{}, err
	}
	return SealedUserData{EncryptedData: response, Sign: sig}, nil
}

func alipayAESEncrypt(key, plain []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	n := aes.BlockSize - len(plain)%aes.BlockSize
	padded := append(append([]byte{}, plain...), bytes.Repeat([]byte{byte(n)}, n)...)
	out := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, make([]byte, aes.BlockSize)).CryptBlocks(out, padded)
	return out, nil
}
