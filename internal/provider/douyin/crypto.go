package douyin

import (
	"bytes"
	"crypto/aes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/mpauth/mpauth/internal/provider"
)

// maxEncryptedData bounds the ciphertext we decrypt (base64 text length).
// Real phone and profile documents are a few hundred bytes.
const maxEncryptedData = 64 << 10

// Decrypt opens encrypted user data the way Douyin seals it (platforms.md
// §3.5, the same scheme as WeChat): AES-128-CBC with PKCS#7 padding, key =
// base64(session_key) (16 bytes), IV = base64(iv) (16 bytes). It returns the
// plaintext, which must be a JSON object.
//
//   - no session key (a guest login has none): ErrSessionKeyStale, since a
//     login with a tt.login code gets one;
//   - a session key, IV or ciphertext that is not base64 or has the wrong
//     length: ErrDecrypt (it can never be decrypted);
//   - well-formed input whose padding or JSON is broken: ErrSessionKeyStale
//     (the data was sealed with another session key: the user logged in
//     again since, or the data was tampered with).
//
// Error texts never include the key, the IV or the data.
func Decrypt(sessionKey, data, iv string) ([]byte, error) {
	if sessionKey == "" {
		return nil, &provider.Error{Kind: provider.ErrSessionKeyStale, Platform: platform, Message: "no session key for this login (guest or none returned): log in with a tt.login code"}
	}
	key, ok := decodeBase64(sessionKey)
	if !ok || len(key) != aes.BlockSize {
		return nil, decryptErr("session key is not 16 bytes of base64")
	}
	ivb, ok := decodeBase64(iv)
	if !ok || len(ivb) != aes.BlockSize {
		return nil, decryptErr("iv is not 16 bytes of base64")
	}
	if len(data) > maxEncryptedData {
		return nil, decryptErr("encrypted data too large")
	}
	ct, ok := decodeBase64(data)
	if !ok {
		return nil, decryptErr("encrypted data is not base64 of whole AES blocks")
	}
	plain, err := provider.OpenAESCBC(key, ivb, ct)
	switch {
	case errors.Is(err, provider.ErrPadding):
		return nil, staleErr("bad padding")
	case err != nil: // key and IV are 16 bytes: the ciphertext's size
		return nil, decryptErr("encrypted data is not base64 of whole AES blocks")
	case !provider.IsJSONObject(plain):
		return nil, staleErr("plaintext is not a JSON object")
	}
	return plain, nil
}

func decryptErr(msg string) error {
	return &provider.Error{Kind: provider.ErrDecrypt, Platform: platform, Message: msg}
}

func staleErr(what string) error {
	return &provider.Error{Kind: provider.ErrSessionKeyStale, Platform: platform, Message: what + ": the data was sealed with another session key; log in again"}
}

// decodeBase64 reads standard base64, padded or not. A space is read as
// "+": encryptedData put in a URL query unescaped arrives that way, and a
// space is never valid base64 otherwise.
func decodeBase64(s string) ([]byte, bool) {
	if s == "" {
		return nil, false
	}
	s = strings.ReplaceAll(s, " ", "+")
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, true
	}
	b, err := base64.RawStdEncoding.DecodeString(s)
	return b, err == nil
}

// DecryptPhone decrypts a phone document (tt.getPhoneNumber's
// encryptedData/iv) with the user's session key and checks its watermark.
func (d *douyin) DecryptPhone(sessionKey string, ed provider.EncryptedData) (*provider.Phone, error) {
	plain, err := Decrypt(sessionKey, ed.Data, ed.IV)
	if err != nil {
		return nil, err
	}
	return DecodePhone(d.app.AppID, plain)
}

// DecryptProfile decrypts a profile document (tt.getUserInfo's
// encryptedData/iv) with the user's session key and checks its watermark.
func (d *douyin) DecryptProfile(sessionKey string, ed provider.EncryptedData) (*provider.Profile, error) {
	plain, err := Decrypt(sessionKey, ed.Data, ed.IV)
	if err != nil {
		return nil, err
	}
	return DecodeProfile(d.app.AppID, plain)
}

// phoneDoc is the decrypted phone document:
//
//	{"phoneNumber":"13580006666","purePhoneNumber":"13580006666","countryCode":"86","watermark":{"appid":"tt...","timestamp":1700000000}}
//
// countryCode is a string in the legacy WeChat doc and a number in newer
// examples; both are accepted (UNCONFIRMED for Douyin, whose doc shows no
// example), and so are numbers for the phone fields.
type phoneDoc struct {
	PhoneNumber     flexString      `json:"phoneNumber"`
	PurePhoneNumber flexString      `json:"purePhoneNumber"`
	CountryCode     flexString      `json:"countryCode"`
	Watermark       json.RawMessage `json:"watermark"`
}

// profileDoc is the decrypted profile document (tt.getUserInfo: nickName,
// avatarUrl, gender, city... and watermark).
type profileDoc struct {
	NickName  flexString      `json:"nickName"`
	AvatarURL flexString      `json:"avatarUrl"`
	Watermark json.RawMessage `json:"watermark"`
}

// DecodePhone reads a decrypted phone document for appID. A document that
// is not JSON is ErrSessionKeyStale (see Decrypt); one with fields of the
// wrong type or no number is ErrDecrypt; one whose watermark names another
// app is ErrWatermark. A document without a watermark is accepted.
func DecodePhone(appID string, plain []byte) (*provider.Phone, error) {
	var doc phoneDoc
	if err := unmarshalDoc(plain, &doc); err != nil {
		return nil, err
	}
	if err := checkWatermark(appID, doc.Watermark); err != nil {
		return nil, err
	}
	p := &provider.Phone{Number: string(doc.PhoneNumber), PureNumber: string(doc.PurePhoneNumber), CountryCode: string(doc.CountryCode)}
	if p.Number == "" {
		p.Number = p.PureNumber
	}
	if p.Number == "" {
		return nil, decryptErr("decrypted data holds no phone number")
	}
	return p, nil
}

// DecodeProfile reads a decrypted profile document for appID, with the same
// rules as DecodePhone (a profile may have empty fields).
func DecodeProfile(appID string, plain []byte) (*provider.Profile, error) {
	var doc profileDoc
	if err := unmarshalDoc(plain, &doc); err != nil {
		return nil, err
	}
	if err := checkWatermark(appID, doc.Watermark); err != nil {
		return nil, err
	}
	return &provider.Profile{Nickname: string(doc.NickName), AvatarURL: string(doc.AvatarURL)}, nil
}

func unmarshalDoc(plain []byte, v any) error {
	if !provider.IsJSONObject(plain) {
		return staleErr("plaintext is not a JSON object")
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return decryptErr("decrypted document has fields of the wrong type")
	}
	return nil
}

// checkWatermark accepts an absent or null watermark and one whose appid is
// appID; anything else is data issued for another app.
func checkWatermark(appID string, raw json.RawMessage) error {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || string(t) == "null" {
		return nil
	}
	var wm struct {
		AppID string `json:"appid"`
	}
	if t[0] != '{' || json.Unmarshal(t, &wm) != nil || wm.AppID != appID {
		// The watermark's appid is not secret, but keep the log line short
		// and clean.
		got := provider.Clean(wm.AppID, 64)
		return &provider.Error{Kind: provider.ErrWatermark, Platform: platform, Message: "watermark appid " + strconv.Quote(got) + " is not this app's"}
	}
	return nil
}

// flexString is a JSON string, or a number kept as its text; null is "".
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	t := bytes.TrimSpace(b)
	switch {
	case string(t) == "null":
		*f = ""
		return nil
	case len(t) > 0 && t[0] == '"':
		var s string
		if err := json.Unmarshal(t, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(t, &n); err != nil {
		return err
	}
	*f = flexString(n.String())
	return nil
}
