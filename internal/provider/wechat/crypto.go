package wechat

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
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
	key, ok := decode16(sessionKey)
	if !ok {
		return nil, decryptError("session key is not 24 base64 characters of a 16-byte key")
	}
	ivb, ok := decode16(strings.ReplaceAll(iv, " ", "+"))
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
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, decryptError("encryptedData is not a whole number of AES blocks")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, decryptError("bad key")
	}
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, ivb).CryptBlocks(plain, ct)
	n, ok := unpad(plain)
	if ok {
		plain = plain[:n]
		t := bytes.TrimSpace(plain)
		ok = len(t) > 0 && t[0] == '{' && json.Valid(t)
	}
	if !ok {
		return nil, &provider.Error{Kind: provider.ErrSessionKeyStale, Platform: platform, Message: "data does not decrypt with the stored session key: log in again"}
	}
	return plain, nil
}

func decryptError(msg string) error {
	return &provider.Error{Kind: provider.ErrDecrypt, Platform: platform, Message: msg}
}

// decode16 decodes s, which must be 24 base64 characters of 16 bytes.
func decode16(s string) ([]byte, bool) {
	if len(s) != 24 {
		return nil, false
	}
	b := make([]byte, 18)
	n, err := base64.StdEncoding.Decode(b, []byte(s))
	if err != nil || n != 16 {
		return nil, false
	}
	return b[:16], true
}

// unpad checks strict PKCS#7 padding of b (a non-empty whole number of
// blocks) in time independent of the padding's value, and returns the
// length without it.
func unpad(b []byte) (int, bool) {
	last := b[len(b)-1]
	p := int(last)
	// good is 1 while the padding is valid.
	good := subtle.ConstantTimeLessOrEq(1, p) & subtle.ConstantTimeLessOrEq(p, aes.BlockSize)
	// Out of range, check one byte instead (the answer is "bad" anyway) so
	// the comparisons below stay within their non-negative domain.
	p = subtle.ConstantTimeSelect(good, p, 1)
	tail := b[len(b)-aes.BlockSize:]
	for i := range aes.BlockSize {
		// Byte i of the last block is padding when i >= 16-p.
		inPad := subtle.ConstantTimeLessOrEq(aes.BlockSize-p, i)
		same := subtle.ConstantTimeByteEq(tail[i], last)
		// inPad implies same.
		good &= subtle.ConstantTimeSelect(inPad, same, 1)
	}
	if good != 1 {
		return 0, false
	}
	return len(b) - p, true
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
