package wechat

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/mpauth/mpauth/internal/provider"
)

// maxEncryptedData bounds the base64 encryptedData we decrypt; real phone
// and profile data are well under 1 KiB.
const maxEncryptedData = 64 << 10

// Decrypt opens WeChat's encrypted user data (platforms.md §1.6):
// AES-128-CBC with PKCS#7 padding, key = base64(session_key), IV =
// base64(iv). It returns the plaintext, a JSON object, or a *provider.Error:
//
//   - ErrDecrypt: data that can never be decrypted — a session key or IV
//     that is not 24 base64 characters of 16 bytes (the official demo's
//     IllegalAesKey / IllegalIv), encryptedData that is not base64, empty,
//     oversized or not a whole number of AES blocks;
//   - ErrSessionKeyStale: well-formed data whose padding or plaintext is
//     wrong, i.e. it was sealed with another session key (WeChat rotated
//     it: log in again and retry); also an empty sessionKey (none stored).
//
// Bad padding and a non-JSON plaintext are deliberately the same error with
// the same text, and the padding is checked in constant time: telling them
// apart would be a padding oracle that lets a client forge data under the
// session key (CBC has no integrity).
//
// A space in encryptedData or iv is read as '+': a client that sends them
// form-encoded without escaping turns every '+' into a space.
func Decrypt(sessionKey, encryptedData, iv string) ([]byte, error) {
	if sessionKey == "" {
		return nil, &provider.Error{Kind: provider.ErrSessionKeyStale, Platform: platform, Message: "no session key stored: log in again"}
	}
	key, ok := provider.DecodeBase64Key(sessionKey, 16)
	if !ok {
		return nil, decryptError("session key is not 24 base64 characters of a 16-byte key")
	}
	ivb, ok := provider.DecodeBase64Key(strings.ReplaceAll(iv, " ", "+"), 16)
	if !ok {
		return nil, decryptError("iv is not 24 base64 characters of 16 bytes")
	}
	if encryptedData == "" || len(encryptedData) > maxEncryptedData {
		return nil, decryptError("encryptedData empty or oversized")
	}
	ct, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(encryptedData, " ", "+"))
	if err != nil {
		return nil, decryptError("encryptedData is not base64")
	}
	plain, err := provider.OpenAESCBC(key, ivb, ct)
	if errors.Is(err, provider.ErrCiphertextSize) {
		return nil, decryptError("encryptedData is not a whole number of AES blocks")
	}
	// Key and IV are 16 bytes, so any other error is bad padding: the same
	// answer as a plaintext that is not a JSON object (see above).
	if err != nil || !provider.IsJSONObject(plain) {
		return nil, &provider.Error{Kind: provider.ErrSessionKeyStale, Platform: platform, Message: "data does not decrypt with the stored session key: log in again"}
	}
	return plain, nil
}

func decryptError(msg string) error {
	return &provider.Error{Kind: provider.ErrDecrypt, Platform: platform, Message: msg}
}

// profileDoc is the decrypted profile (legacy getUserInfo / getUserProfile).
// Other fields (openId, gender, city, unionId...) are ignored: the login is
// what identifies the user.
type profileDoc struct {
	NickName  string     `json:"nickName"`
	AvatarURL string     `json:"avatarUrl"`
	Watermark *watermark `json:"watermark"`
}

// decodePhoneData reads a decrypted phone document for appID.
func decodePhoneData(plain []byte, appID string) (*provider.Phone, error) {
	var d phoneDoc
	if err := json.Unmarshal(plain, &d); err != nil {
		return nil, decryptError("not a phone number document")
	}
	if err := checkWatermark(d.Watermark, appID); err != nil {
		return nil, err
	}
	return d.phone(provider.ErrDecrypt)
}

// decodeProfileData reads a decrypted profile document for appID.
func decodeProfileData(plain []byte, appID string) (*provider.Profile, error) {
	var d profileDoc
	if err := json.Unmarshal(plain, &d); err != nil {
		return nil, decryptError("not a profile document")
	}
	if err := checkWatermark(d.Watermark, appID); err != nil {
		return nil, err
	}
	return &provider.Profile{Nickname: d.NickName, AvatarURL: d.AvatarURL}, nil
}

// DecryptPhone opens the legacy getPhoneNumber encryptedData/iv with the
// user's session key (see Decrypt) and checks the watermark.
func (w *wechat) DecryptPhone(sessionKey string, d provider.EncryptedData) (*provider.Phone, error) {
	plain, err := Decrypt(sessionKey, d.Data, d.IV)
	if err != nil {
		return nil, err
	}
	return decodePhoneData(plain, w.app.AppID)
}

// DecryptProfile opens getUserInfo / getUserProfile encryptedData/iv with
// the user's session key (see Decrypt) and checks the watermark.
func (w *wechat) DecryptProfile(sessionKey string, d provider.EncryptedData) (*provider.Profile, error) {
	plain, err := Decrypt(sessionKey, d.Data, d.IV)
	if err != nil {
		return nil, err
	}
	return decodeProfileData(plain, w.app.AppID)
}
