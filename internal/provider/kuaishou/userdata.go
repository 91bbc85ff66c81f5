package kuaishou

import (
	"bytes"
	"crypto/aes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/mpauth/mpauth/internal/provider"
)

// maxEncryptedData bounds the base64 encryptedData we decrypt; a phone
// number or profile is a few hundred bytes.
const maxEncryptedData = 64 << 10

// DecryptPhone implements provider.UserDataDecrypter for the app.
func (k *kuaishou) DecryptPhone(sessionKey string, d provider.EncryptedData) (*provider.Phone, error) {
	return DecryptPhone(k.app.AppID, sessionKey, d)
}

// DecryptProfile implements provider.UserDataDecrypter for the app.
func (k *kuaishou) DecryptProfile(sessionKey string, d provider.EncryptedData) (*provider.Profile, error) {
	return DecryptProfile(k.app.AppID, sessionKey, d)
}

// phoneDoc is the decrypted phone number (platforms.md §4.5):
//
//	{"countryCode":"86","phoneNumber":"19814733741"}
//
// countryCode is a string; a number is tolerated. purePhoneNumber is the
// WeChat field, taken if Kuaishou ever sends it (UNCONFIRMED).
type phoneDoc struct {
	PhoneNumber     text       `json:"phoneNumber"`
	PurePhoneNumber text       `json:"purePhoneNumber"`
	CountryCode     text       `json:"countryCode"`
	Watermark       *watermark `json:"watermark"`
}

// profileDoc is the decrypted user profile. Kuaishou documents no encrypted
// profile (§4 only has the phone); the WeChat getUserInfo names are
// accepted, and the plain lower-case ones (UNCONFIRMED).
type profileDoc struct {
	NickName  text       `json:"nickName"`
	Nickname  text       `json:"nickname"`
	AvatarURL text       `json:"avatarUrl"`
	Avatar    text       `json:"avatar"`
	Watermark *watermark `json:"watermark"`
}

// watermark is WeChat's {"appid","timestamp"}. Kuaishou's phone data has
// none (§4.5); when a document carries one anyway its app id is checked
// (app_id and appId spellings accepted, UNCONFIRMED).
type watermark struct {
	AppID    text `json:"appid"`
	AppIDAlt text `json:"app_id"`
	AppIDCC  text `json:"appId"`
}

func (w *watermark) appID() string {
	switch {
	case w == nil:
		return ""
	case w.AppID != "":
		return string(w.AppID)
	case w.AppIDAlt != "":
		return string(w.AppIDAlt)
	default:
		return string(w.AppIDCC)
	}
}

// DecryptPhone decrypts the phone number of the mini-program's encrypted
// data with the user's session_key. Errors are *provider.Error of kind:
//
//   - ErrDecrypt: data, iv or key are not base64 of the right sizes, or the
//     data decrypts to a JSON object that is not a phone document.
//   - ErrSessionKeyStale: no session key, or well-formed data that does
//     not decrypt with it (bad padding, not a JSON object): Kuaishou
//     rotated the key (ks.login refreshes it); log in again and retry.
//   - ErrWatermark: the document has a watermark of another app.
func DecryptPhone(appID, sessionKey string, d provider.EncryptedData) (*provider.Phone, error) {
	plain, err := decrypt(sessionKey, d)
	if err != nil {
		return nil, err
	}
	var doc phoneDoc
	if err := json.Unmarshal(plain, &doc); err != nil {
		return nil, decryptError("decrypted data is not a phone document")
	}
	if err := checkWatermark(appID, doc.Watermark); err != nil {
		return nil, err
	}
	number := strings.TrimSpace(string(doc.PhoneNumber))
	if number == "" {
		number = strings.TrimSpace(string(doc.PurePhoneNumber))
	}
	if number == "" {
		return nil, decryptError("decrypted data has no phoneNumber")
	}
	cc := strings.TrimPrefix(strings.TrimSpace(string(doc.CountryCode)), "+")
	pure := strings.TrimSpace(string(doc.PurePhoneNumber))
	if pure == "" {
		pure = number
		if cc != "" && strings.HasPrefix(pure, "+"+cc) {
			pure = strings.TrimLeft(strings.TrimPrefix(pure, "+"+cc), " -")
		}
	}
	// Phone.Number carries the country code for non-mainland numbers. The
	// only documented sample is a mainland one without it; whether Kuaishou
	// prefixes foreign numbers is UNCONFIRMED, so add it when it is absent.
	if cc != "" && cc != "86" && !strings.HasPrefix(number, "+") {
		number = "+" + cc + " " + number
	}
	return &provider.Phone{Number: number, PureNumber: pure, CountryCode: cc}, nil
}

// DecryptProfile decrypts the user's profile (nickname and avatar) with the
// session_key; errors as DecryptPhone.
func DecryptProfile(appID, sessionKey string, d provider.EncryptedData) (*provider.Profile, error) {
	plain, err := decrypt(sessionKey, d)
	if err != nil {
		return nil, err
	}
	var doc profileDoc
	if err := json.Unmarshal(plain, &doc); err != nil {
		return nil, decryptError("decrypted data is not a profile document")
	}
	if err := checkWatermark(appID, doc.Watermark); err != nil {
		return nil, err
	}
	p := &provider.Profile{Nickname: string(doc.NickName), AvatarURL: string(doc.AvatarURL)}
	if p.Nickname == "" {
		p.Nickname = string(doc.Nickname)
	}
	if p.AvatarURL == "" {
		p.AvatarURL = string(doc.Avatar)
	}
	if p.Nickname == "" && p.AvatarURL == "" {
		return nil, decryptError("decrypted data has neither nickName nor avatarUrl")
	}
	return p, nil
}

func checkWatermark(appID string, w *watermark) error {
	if got := w.appID(); got != "" && got != appID {
		return &provider.Error{Kind: provider.ErrWatermark, Platform: platform, Message: "watermark app id does not match"}
	}
	return nil
}

// decrypt opens AES-128-CBC data with the base64 session key and iv, strips
// PKCS#7 padding and checks the plaintext is a JSON object.
func decrypt(sessionKey string, d provider.EncryptedData) ([]byte, error) {
	if sessionKey == "" {
		// Decode drops unusable keys: the fix is a new login.
		return nil, &provider.Error{Kind: provider.ErrSessionKeyStale, Platform: platform, Message: "no session key; log in again"}
	}
	key, ok := decodeB64(sessionKey, 16)
	if !ok || len(key) != 16 {
		return nil, decryptError("session key is not base64 of 16 bytes")
	}
	iv, ok := decodeB64(d.IV, 16)
	if !ok || len(iv) != aes.BlockSize {
		return nil, decryptError("iv is not base64 of 16 bytes")
	}
	if len(d.Data) > maxEncryptedData {
		return nil, decryptError("encrypted data too large")
	}
	data, ok := decodeB64(d.Data, maxEncryptedData)
	if !ok {
		return nil, decryptError("encrypted data is not base64 of whole AES blocks")
	}
	plain, err := provider.OpenAESCBC(key, iv, data)
	switch {
	case errors.Is(err, provider.ErrPadding):
		return nil, stale("bad padding")
	case err != nil: // key and IV are 16 bytes: the ciphertext's size
		return nil, decryptError("encrypted data is not base64 of whole AES blocks")
	case !provider.IsJSONObject(plain):
		return nil, stale("plaintext is not a JSON object")
	}
	return bytes.TrimSpace(plain), nil
}

// decodeB64 decodes standard base64, with or without padding. Spaces are
// read as "+": a client that put the value in a URL-encoded form without
// escaping it turns every "+" into a space. URL-safe base64 is accepted
// too. max bounds the decoded size.
func decodeB64(s string, max int) ([]byte, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > max*2+8 {
		return nil, false
	}
	s = strings.ReplaceAll(s, " ", "+")
	if strings.ContainsAny(s, "-_") {
		s = strings.NewReplacer("-", "+", "_", "/").Replace(s)
	}
	s = strings.TrimRight(s, "=")
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return nil, false
	}
	return b, true
}

func decryptError(msg string) error {
	return &provider.Error{Kind: provider.ErrDecrypt, Platform: platform, Message: msg}
}

func stale(msg string) error {
	return &provider.Error{Kind: provider.ErrSessionKeyStale, Platform: platform, Message: "data does not decrypt with the session key (" + msg + ")"}
}

var errNotText = errors.New("object or array where a text was expected")

// text is a JSON string, or a number or boolean taken as its JSON text
// (countryCode 86 instead of "86"). null is "".
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	*t = ""
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = text(s)
		return nil
	case len(b) > 0 && (b[0] == '{' || b[0] == '['):
		return errNotText
	default:
		*t = text(b)
		return nil
	}
}
