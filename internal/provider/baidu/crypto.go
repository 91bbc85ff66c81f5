package baidu

import (
	"bytes"
	"crypto/aes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strings"

	"github.com/mpauth/mpauth/internal/provider"
)

// Baidu's user-data layout (platforms.md §5.5), after AES-192-CBC decryption
// and unpadding:
//
//	[0:16]        random filler
//	[16:20]       content length n, big-endian uint32
//	[20:20+n]     content: the user JSON
//	[20+n:]       the app's AppKey: the watermark
//
// The padding is PKCS#7-like but to a 32-byte block (pad bytes 1..32), so the
// standard 16-byte unpadding fails on real data.
const (
	sessionKeyLen = 24 // AES-192
	fillerLen     = 16
	headerLen     = fillerLen + 4
	maxPad        = 32
	// maxEncrypted bounds the ciphertext we decrypt; real data is < 1 KiB.
	maxEncrypted = 64 << 10
)

// Decrypt opens Baidu encrypted user data (swan.getUserInfo, the
// getPhoneNumber button) with the user's session_key and returns the user
// JSON, after checking that the trailing AppKey is appKey. Errors are
// *provider.Error of kind:
//
//   - ErrDecrypt: a session_key, iv or data that is not base64 of the right
//     size; such input can never decrypt.
//   - ErrSessionKeyStale: well-formed input that does not decrypt to Baidu's
//     layout, i.e. it was sealed with another session key (the user logged
//     in again); also an empty session_key (none stored: log in again).
//   - ErrWatermark: it decrypted, but for another app.
func Decrypt(sessionKey, appKey string, d provider.EncryptedData) ([]byte, error) {
	if sessionKey == "" {
		return nil, decryptErr(provider.ErrSessionKeyStale, "no session_key stored for the user: log in again")
	}
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil || len(key) != sessionKeyLen {
		return nil, decryptErr(provider.ErrDecrypt, "session_key is not base64 of a 24-byte key")
	}
	iv, err := base64.StdEncoding.DecodeString(d.IV)
	if err != nil || len(iv) != aes.BlockSize {
		return nil, decryptErr(provider.ErrDecrypt, "iv is not base64 of 16 bytes")
	}
	if len(d.Data) > base64.StdEncoding.EncodedLen(maxEncrypted) {
		return nil, decryptErr(provider.ErrDecrypt, "encrypted data too large")
	}
	data, err := base64.StdEncoding.DecodeString(d.Data)
	if err != nil || len(data) == 0 || len(data)%aes.BlockSize != 0 {
		return nil, decryptErr(provider.ErrDecrypt, "encrypted data is not base64 of whole AES blocks")
	}
	plain, err := provider.DecryptAESCBC(key, iv, data)
	if err != nil {
		return nil, decryptErr(provider.ErrDecrypt, "bad session_key")
	}

	// Unpad as Baidu's own samples do: the last byte, 1..32, counts the pad
	// bytes (their values are not checked there either; the layout checks
	// below catch a wrong key).
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > maxPad || pad > len(plain) {
		return nil, stale()
	}
	plain = plain[:len(plain)-pad]
	if len(plain) < headerLen {
		return nil, stale()
	}
	n := binary.BigEndian.Uint32(plain[fillerLen:headerLen])
	if uint64(n) > uint64(len(plain)-headerLen) {
		return nil, stale()
	}
	content := plain[headerLen : headerLen+int(n)]
	trailer := plain[headerLen+int(n):]
	// Garbage from a wrong key is never a JSON object; an object with a
	// foreign AppKey is genuine data of another app.
	isObject := len(content) > 0 && content[0] == '{' && json.Valid(content)
	if !isObject {
		return nil, stale()
	}
	if string(trailer) != appKey {
		return nil, decryptErr(provider.ErrWatermark, "the data carries another app's AppKey")
	}
	return content, nil
}

func stale() error {
	return decryptErr(provider.ErrSessionKeyStale, "data does not decrypt with the stored session_key: log in again")
}

func decryptErr(kind error, msg string) error {
	return &provider.Error{Kind: kind, Platform: platform, Message: msg}
}

// phoneDoc is the decrypted getPhoneNumber document. Baidu's is
// {"mobile":"13800138000"} (mainland numbers only; no country code).
// UNCONFIRMED fallback: WeChat's field names, should Baidu ever send them.
type phoneDoc struct {
	Mobile          json.RawMessage `json:"mobile"`
	PhoneNumber     string          `json:"phoneNumber"`
	PurePhoneNumber string          `json:"purePhoneNumber"`
	CountryCode     string          `json:"countryCode"`
}

// profileDoc is the decrypted swan.getUserInfo document, e.g. the official
// vector's {"openid":"open_id","nickname":"baidu_user","headimgurl":"url of
// image","sex":1}. avatarUrl is an UNCONFIRMED fallback.
type profileDoc struct {
	Nickname   string `json:"nickname"`
	HeadImgURL string `json:"headimgurl"`
	AvatarURL  string `json:"avatarUrl"`
}

// DecryptPhone decrypts a getPhoneNumber document.
func (b *baidu) DecryptPhone(sessionKey string, d provider.EncryptedData) (*provider.Phone, error) {
	return DecryptPhone(sessionKey, b.app.AppID, d)
}

// DecryptProfile decrypts a swan.getUserInfo document.
func (b *baidu) DecryptProfile(sessionKey string, d provider.EncryptedData) (*provider.Profile, error) {
	return DecryptProfile(sessionKey, b.app.AppID, d)
}

// DecryptPhone decrypts a getPhoneNumber document of the app appKey.
func DecryptPhone(sessionKey, appKey string, d provider.EncryptedData) (*provider.Phone, error) {
	content, err := Decrypt(sessionKey, appKey, d)
	if err != nil {
		return nil, err
	}
	var doc phoneDoc
	if err := json.Unmarshal(content, &doc); err != nil {
		return nil, decryptErr(provider.ErrDecrypt, "the decrypted data is not a phone document")
	}
	mobile := str(doc.Mobile)
	if mobile == "" {
		// A number rather than a string: keep its digits as written.
		if t := bytes.TrimSpace(doc.Mobile); len(t) > 0 && t[0] >= '0' && t[0] <= '9' {
			mobile = string(t)
		}
	}
	p := &provider.Phone{Number: mobile, PureNumber: mobile}
	if mobile == "" {
		p = &provider.Phone{Number: doc.PhoneNumber, PureNumber: doc.PurePhoneNumber, CountryCode: doc.CountryCode}
		if p.PureNumber == "" {
			p.PureNumber = p.Number
		}
		if p.Number == "" {
			p.Number = p.PureNumber
		}
	}
	p.Number, p.PureNumber, p.CountryCode = strings.TrimSpace(p.Number), strings.TrimSpace(p.PureNumber), strings.TrimSpace(p.CountryCode)
	if p.Number == "" {
		return nil, decryptErr(provider.ErrDecrypt, "the decrypted data has no mobile number")
	}
	return p, nil
}

// DecryptProfile decrypts a swan.getUserInfo document of the app appKey.
func DecryptProfile(sessionKey, appKey string, d provider.EncryptedData) (*provider.Profile, error) {
	content, err := Decrypt(sessionKey, appKey, d)
	if err != nil {
		return nil, err
	}
	var doc profileDoc
	if err := json.Unmarshal(content, &doc); err != nil {
		return nil, decryptErr(provider.ErrDecrypt, "the decrypted data is not a profile document")
	}
	avatar := doc.HeadImgURL
	if avatar == "" {
		avatar = doc.AvatarURL
	}
	return &provider.Profile{Nickname: doc.Nickname, AvatarURL: avatar}, nil
}
