package alipay

import (
	"bytes"
	"crypto/cipher"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mpauth/mpauth/internal/provider"
)

// This file decrypts my.getPhoneNumber data (platforms.md §2.9).

// maxEncrypted bounds the encrypted data we look at; real phone responses
// are about 100 bytes.
const maxEncrypted = 16 << 10

// DecryptPhone checks and decrypts the phone number from my.getPhoneNumber.
// d.Data is the "response" string (base64 ciphertext) and d.Sign its "sign";
// the whole res.response JSON text ({"response":"...","sign":"...",...}) is
// accepted in d.Data as well. sessionKey is ignored: Alipay encrypts with
// the app's AES key (aes_key).
//
// The signature is required and checked first, RSA2 with the Alipay public
// key over the ciphertext wrapped in double quotes (exactly what Alipay
// signs). Without it the ciphertext (AES-CBC, fixed zero IV, no MAC) could
// be tampered with. Then AES-CBC with aes_key, a zero IV and PKCS#7 padding,
// and the plaintext {"code":"10000","msg":"Success","mobile":"..."}.
//
// Errors: no aes_key configured: ErrMisconfigured. Malformed data, a bad or
// missing signature, data that does not decrypt, a code other than 10000
// (with Alipay's sub_msg) or no mobile: ErrDecrypt.
func (a *alipayProvider) DecryptPhone(_ string, d provider.EncryptedData) (*provider.Phone, error) {
	if a.aes == nil {
		return nil, &provider.Error{Kind: provider.ErrMisconfigured, Platform: platform, Message: "aes_key not configured: set the app's content encryption key (接口内容加密方式, AES) to decrypt phone numbers"}
	}
	mobile, err := openPhone(a.aes, a.pub, d.Data, d.Sign)
	if err != nil {
		return nil, err
	}
	return &provider.Phone{Number: mobile, PureNumber: mobile}, nil
}

// DecryptProfile is not supported: Alipay has no encrypted profile data. The
// nickname and avatar come from my.getOpenUserInfo (in clear, unverifiable)
// or from alipay.user.info.share with an auth_user access token.
func (a *alipayProvider) DecryptProfile(string, provider.EncryptedData) (*provider.Profile, error) {
	return nil, &provider.Error{Kind: provider.ErrNotSupported, Platform: platform, Message: "Alipay has no encrypted profile data; the profile comes from alipay.user.info.share (auth_user scope)"}
}

func decryptErr(format string, args ...any) *provider.Error {
	return &provider.Error{Kind: provider.ErrDecrypt, Platform: platform, Message: fmt.Sprintf(format, args...)}
}

// envelope is my.getPhoneNumber's res.response (§2.9).
type envelope struct {
	Response    json.RawMessage `json:"response"`
	Sign        string          `json:"sign"`
	SignType    string          `json:"sign_type"`
	EncryptType string          `json:"encrypt_type"`
	Charset     string          `json:"charset"`
}

// payload is the decrypted (or, when the app has no AES key at Alipay, the
// clear) response. The doc sample spells subCode/subMsg in camelCase; the
// gateway's snake_case is accepted too.
type payload struct {
	Code       flexString `json:"code"`
	Msg        flexString `json:"msg"`
	SubCode    flexString `json:"subCode"`
	SubMsg     flexString `json:"subMsg"`
	SubCodeAlt flexString `json:"sub_code"`
	SubMsgAlt  flexString `json:"sub_msg"`
	Mobile     flexString `json:"mobile"`
}

// openPhone checks the signature of response and decrypts it with block.
func openPhone(block cipher.Block, pub *rsa.PublicKey, response, sign string) (string, error) {
	response = strings.TrimSpace(response)
	if response == "" || len(response) > maxEncrypted {
		return "", decryptErr("empty or oversized data")
	}
	if response[0] == '{' {
		// The whole res.response text, or a clear (unencrypted) answer.
		var env envelope
		if err := json.Unmarshal([]byte(response), &env); err != nil {
			return "", decryptErr("data is neither base64 nor JSON")
		}
		switch {
		case len(env.Response) == 0:
			return "", clearPayload([]byte(response))
		case env.Response[0] == '{':
			return "", clearPayload(env.Response)
		}
		if err := json.Unmarshal(env.Response, &response); err != nil {
			return "", decryptErr("response is not a string")
		}
		if st := strings.ToUpper(env.SignType); st != "" && st != "RSA2" {
			return "", decryptErr("unsupported sign_type (only RSA2)")
		}
		if et := strings.ToUpper(env.EncryptType); et != "" && et != "AES" {
			return "", decryptErr("unsupported encrypt_type (only AES)")
		}
		if sign == "" {
			sign = env.Sign
		}
		if response == "" || len(response) > maxEncrypted {
			return "", decryptErr("empty or oversized data")
		}
	}
	if sign == "" {
		return "", decryptErr("no signature: the sign of my.getPhoneNumber's response is required")
	}
	// The signed content is the JSON string value as it appears in the
	// answer: the base64 text with its double quotes.
	if !verify(pub, []byte(`"`+response+`"`), strings.TrimSpace(sign)) {
		return "", decryptErr("signature does not verify with the Alipay public key")
	}
	plain, err := aesOpen(block, response)
	if err != nil {
		return "", err
	}
	return phoneOf(plain)
}

// aesOpen decrypts base64 AES-CBC with a zero IV and PKCS#7 padding.
func aesOpen(block cipher.Block, b64 string) ([]byte, error) {
	ct, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		if ct, err = base64.RawStdEncoding.DecodeString(b64); err != nil {
			return nil, decryptErr("data is not base64")
		}
	}
	plain, err := provider.OpenCBC(block, make([]byte, block.BlockSize()), ct)
	switch {
	case errors.Is(err, provider.ErrPadding):
		return nil, decryptErr("data does not decrypt with aes_key")
	case err != nil: // the IV is one block: the ciphertext's size
		return nil, decryptErr("data is not a whole number of AES blocks")
	}
	return plain, nil
}

// phoneOf reads the decrypted payload.
func phoneOf(plain []byte) (string, error) {
	var p payload
	if err := json.Unmarshal(plain, &p); err != nil || bytes.TrimSpace(plain)[0] != '{' {
		return "", decryptErr("data does not decrypt with aes_key")
	}
	if p.Code.s != "10000" {
		return "", payloadError(p)
	}
	m := strings.TrimSpace(p.Mobile.s)
	if m == "" {
		return "", &provider.Error{Kind: provider.ErrDecrypt, Platform: platform, Code: "10000", Message: "the user has no phone number bound to the Alipay account"}
	}
	if len(m) > 32 || strings.IndexFunc(m, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '+' || r == '-' || r == ' ') }) >= 0 {
		return "", decryptErr("mobile is not a phone number")
	}
	return m, nil
}

// clearPayload handles an unencrypted response: Alipay sends errors such as
// 40001 isv.missing-encrypt-key in clear. A clear success is refused: it
// carries nothing that proves it came from Alipay.
func clearPayload(raw []byte) error {
	var p payload
	if err := json.Unmarshal(raw, &p); err != nil {
		return decryptErr("data is neither base64 nor an Alipay response")
	}
	if p.Code.s == "10000" || p.Code.s == "" {
		return decryptErr("data is not encrypted: enable content encryption (AES) for the app in the Alipay console")
	}
	return payloadError(p)
}

func payloadError(p payload) *provider.Error {
	sub, msg := p.SubCode.s, p.SubMsg.s
	if sub == "" {
		sub = p.SubCodeAlt.s
	}
	if msg == "" {
		msg = p.SubMsgAlt.s
	}
	if msg == "" {
		msg = p.Msg.s
	}
	code := provider.Clean(p.Code.s, maxCodeField)
	if sub != "" {
		code += "/" + provider.Clean(sub, maxCodeField)
	}
	return &provider.Error{Kind: provider.ErrDecrypt, Platform: platform, Code: code, Message: provider.Clean(msg, maxMessage)}
}
