package baidu

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/mpauth/mpauth/internal/provider"
)

// The official vector of platforms.md §5.5 (Baidu docs' PHP/Python samples).
const (
	vecAppKey     = "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7"
	vecSessionKey = "1df09d0a1677dd72b8325aec59576e0c"
	vecIV         = "1df09d0a1677dd72b8325Q=="
	vecData       = "OpCoJgs7RrVgaMNDixIvaCIyV2SFDBNLivgkVqtzq2GC10egsn+PKmQ/+5q+chT8xzldLUog2haTItyIkKyvzvmXonBQLIMeq54axAu9c3KG8IhpFD6+ymHocmx07ZKi7eED3t0KyIxJgRNSDkFk5RV1ZP2mSWa7ZgCXXcAbP0RsiUcvhcJfrSwlpsm0E1YJzKpYy429xrEEGvK+gfL+Cw=="
	vecContent    = `{"openid":"open_id","nickname":"baidu_user","headimgurl":"url of image","sex":1}`
)

var vector = provider.EncryptedData{Data: vecData, IV: vecIV}

// seal encrypts content the way Baidu does, independently of Decrypt: a
// random filler, the length, the content, the app key, then padding to 32
// bytes, AES-192-CBC.
func seal(t testing.TB, sessionKey, appKey, content string) provider.EncryptedData {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil {
		t.Fatal(err)
	}
	plain := make([]byte, 16, 64+len(content))
	rand.Read(plain)
	plain = binary.BigEndian.AppendUint32(plain, uint32(len(content)))
	plain = append(plain, content...)
	plain = append(plain, appKey...)
	pad := 32 - len(plain)%32
	for range pad {
		plain = append(plain, byte(pad))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	iv := make([]byte, 16)
	rand.Read(iv)
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, plain)
	return provider.EncryptedData{Data: base64.StdEncoding.EncodeToString(out), IV: base64.StdEncoding.EncodeToString(iv)}
}

// newKey returns a random session key shaped like Baidu's: 32 hex
// characters, which are base64 of 24 bytes.
func newKey() string {
	const hex = "0123456789abcdef"
	b := make([]byte, 32)
	rand.Read(b)
	for i := range b {
		b[i] = hex[b[i]%16]
	}
	return string(b)
}

func TestDecryptOfficialVector(t *testing.T) {
	got, err := Decrypt(vecSessionKey, vecAppKey, vector)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if string(got) != vecContent {
		t.Errorf("content = %s, want %s", got, vecContent)
	}

	profile, err := DecryptProfile(vecSessionKey, vecAppKey, vector)
	if err != nil {
		t.Fatalf("DecryptProfile: %v", err)
	}
	if want := (provider.Profile{Nickname: "baidu_user", AvatarURL: "url of image"}); *profile != want {
		t.Errorf("profile = %+v, want %+v", *profile, want)
	}
}

func TestDecryptOfficialVectorThroughTheProvider(t *testing.T) {
	p, err := New(provider.App{Platform: provider.Baidu, AppID: vecAppKey, Secret: "s"}, provider.Env{})
	if err != nil {
		t.Fatal(err)
	}
	d, ok := p.(provider.UserDataDecrypter)
	if !ok {
		t.Fatal("the provider is not a UserDataDecrypter")
	}
	profile, err := d.DecryptProfile(vecSessionKey, vector)
	if err != nil || profile.Nickname != "baidu_user" {
		t.Fatalf("DecryptProfile = %+v, %v", profile, err)
	}
	// The vector is a profile: as a phone it decrypts but has no mobile.
	_, err = d.DecryptPhone(vecSessionKey, vector)
	checkKind(t, err, provider.ErrDecrypt)
}

func TestDecryptRejectsTheVectorForAnotherApp(t *testing.T) {
	_, err := Decrypt(vecSessionKey, "another-app-key-000000000000000", vector)
	checkKind(t, err, provider.ErrWatermark)
}

func TestDecryptPhone(t *testing.T) {
	key := newKey()
	tests := []struct {
		name    string
		content string
		want    provider.Phone
		kind    error
	}{
		{"baidu mobile", `{"mobile":"13800138000"}`, provider.Phone{Number: "13800138000", PureNumber: "13800138000"}, nil},
		{"mobile as a number", `{"mobile":13800138000}`, provider.Phone{Number: "13800138000", PureNumber: "13800138000"}, nil},
		{"wechat-style fields", `{"phoneNumber":"+85261234567","purePhoneNumber":"61234567","countryCode":"852"}`, provider.Phone{Number: "+85261234567", PureNumber: "61234567", CountryCode: "852"}, nil},
		{"no number", `{"nickname":"x"}`, provider.Phone{}, provider.ErrDecrypt},
		{"empty mobile", `{"mobile":""}`, provider.Phone{}, provider.ErrDecrypt},
		{"mobile of the wrong type", `{"mobile":true}`, provider.Phone{}, provider.ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecryptPhone(key, vecAppKey, seal(t, key, vecAppKey, tt.content))
			if tt.kind != nil {
				checkKind(t, err, tt.kind)
				return
			}
			if err != nil {
				t.Fatalf("DecryptPhone: %v", err)
			}
			if *got != tt.want {
				t.Errorf("phone = %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestDecryptFailures(t *testing.T) {
	key := newKey()
	other := newKey()
	good := seal(t, key, vecAppKey, `{"mobile":"13800138000"}`)
	raw, _ := base64.StdEncoding.DecodeString(good.Data)
	b64 := base64.StdEncoding.EncodeToString
	tests := []struct {
		name       string
		sessionKey string
		d          provider.EncryptedData
		kind       error
	}{
		{"another session key is stale", other, good, provider.ErrSessionKeyStale},
		{"the vector under another session key is stale", key, vector, provider.ErrSessionKeyStale},
		{"no session key stored is stale", "", good, provider.ErrSessionKeyStale},
		{"another app's data is a watermark error", key, seal(t, key, "wrong-app-key", `{"mobile":"1"}`), provider.ErrWatermark},
		{"empty app key trailer is a watermark error", key, seal(t, key, "", `{"mobile":"1"}`), provider.ErrWatermark},
		{"non-JSON content is stale", key, seal(t, key, vecAppKey, `not json`), provider.ErrSessionKeyStale},
		{"ciphertext missing its first block is stale", key, provider.EncryptedData{Data: b64(raw[16:]), IV: good.IV}, provider.ErrSessionKeyStale},
		{"session key not base64", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", good, provider.ErrDecrypt},
		{"session key of 16 bytes (WeChat-sized)", "M00WVpiHL3Fdo3NOCF0efA==", good, provider.ErrDecrypt},
		{"session key of 32 bytes", b64(make([]byte, 32)), good, provider.ErrDecrypt},
		{"iv not base64", key, provider.EncryptedData{Data: good.Data, IV: "%%%%"}, provider.ErrDecrypt},
		{"iv of 8 bytes", key, provider.EncryptedData{Data: good.Data, IV: b64(make([]byte, 8))}, provider.ErrDecrypt},
		{"empty iv", key, provider.EncryptedData{Data: good.Data}, provider.ErrDecrypt},
		{"data not base64", key, provider.EncryptedData{Data: "not base64!", IV: good.IV}, provider.ErrDecrypt},
		{"empty data", key, provider.EncryptedData{IV: good.IV}, provider.ErrDecrypt},
		{"data not whole blocks", key, provider.EncryptedData{Data: b64(raw[:len(raw)-1]), IV: good.IV}, provider.ErrDecrypt},
		{"oversized data", key, provider.EncryptedData{Data: strings.Repeat("A", base64.StdEncoding.EncodedLen(maxEncrypted)+4), IV: good.IV}, provider.ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecryptPhone(tt.sessionKey, vecAppKey, tt.d)
			pe := checkKind(t, err, tt.kind)
			for _, secret := range []string{key, other, tt.d.Data} {
				if secret != "" && strings.Contains(pe.Error(), secret) {
					t.Errorf("error %q quotes a secret", pe.Error())
				}
			}
		})
	}
}

// A wrong IV garbles only the first block, the random filler, so the data
// still decrypts: the IV is not what authenticates Baidu's data, the layout
// and the AppKey are.
func TestDecryptWithAnotherIVStillDecrypts(t *testing.T) {
	key := newKey()
	good := seal(t, key, vecAppKey, `{"mobile":"13800138000"}`)
	good.IV = base64.StdEncoding.EncodeToString(make([]byte, 16))
	p, err := DecryptPhone(key, vecAppKey, good)
	if err != nil || p.Number != "13800138000" {
		t.Fatalf("DecryptPhone = %+v, %v", p, err)
	}
}

// TestDecryptLayoutBoundaries builds plaintexts by hand to hit every check
// of the layout.
func TestDecryptLayoutBoundaries(t *testing.T) {
	key := newKey()
	k, _ := base64.StdEncoding.DecodeString(key)
	encrypt := func(plain []byte) provider.EncryptedData {
		block, _ := aes.NewCipher(k)
		iv := make([]byte, 16)
		out := make([]byte, len(plain))
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, plain)
		return provider.EncryptedData{Data: base64.StdEncoding.EncodeToString(out), IV: base64.StdEncoding.EncodeToString(iv)}
	}
	layout := func(n uint32, content, trailer string, pad int) []byte {
		p := make([]byte, 16)
		p = binary.BigEndian.AppendUint32(p, n)
		p = append(p, content...)
		p = append(p, trailer...)
		for range pad {
			p = append(p, byte(pad))
		}
		return p
	}
	const doc = `{"mobile":"1"}`
	// 16+4+14+3 = 37 bytes; 27 pad bytes make 64.
	const doc25 = `{"mobile":"123456789012"}` // 16+4+25+3 = 48: a whole pad block
	tests := []struct {
		name  string
		plain []byte
		want  string
		kind  error // nil: success
	}{
		{"exact layout", layout(uint32(len(doc)), doc, "app", 27), doc, nil},
		{"pad of 32 bytes (a whole extra block)", layout(uint32(len(doc25)), doc25, "app", 32), doc25, nil},
		{"pad of 59 bytes is stale", layout(uint32(len(doc)), doc, "app", 27+32), "", provider.ErrSessionKeyStale},
		{"pad byte 0 is stale", append(layout(uint32(len(doc)), doc, "app", 0), make([]byte, 27)...), "", provider.ErrSessionKeyStale},
		{"pad byte 33 is stale", func() []byte {
			p := layout(uint32(len(doc)), doc, "app", 0)
			for len(p)%16 != 15 {
				p = append(p, 33)
			}
			return append(p, 33)
		}(), "", provider.ErrSessionKeyStale},
		{"length beyond the data is stale", layout(1000, doc, "app", 27), "", provider.ErrSessionKeyStale},
		{"length covering the trailer leaves a bad object", layout(uint32(len(doc)+3), doc, "app", 27), "", provider.ErrSessionKeyStale},
		{"length too short cuts the JSON", layout(3, doc, "app", 27), "", provider.ErrSessionKeyStale},
		{"padding eating the header is stale", func() []byte {
			p := make([]byte, 32)
			p[31] = 20 // 12 bytes left: shorter than the header
			return p
		}(), "", provider.ErrSessionKeyStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.plain)%16 != 0 {
				t.Fatalf("test plaintext has %d bytes", len(tt.plain))
			}
			got, err := Decrypt(key, "app", encrypt(tt.plain))
			if tt.kind == nil {
				if err != nil || string(got) != tt.want {
					t.Fatalf("Decrypt = %q, %v; want %s", got, err, tt.want)
				}
				return
			}
			checkKind(t, err, tt.kind)
		})
	}
}

func checkKind(t *testing.T, err, kind error) *provider.Error {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("err = %v, want kind %v", err, kind)
	}
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Platform != provider.Baidu {
		t.Fatalf("err = %#v, want a *provider.Error of %s", err, provider.Baidu)
	}
	return pe
}

func FuzzDecrypt(f *testing.F) {
	key := newKey()
	good := seal(f, key, vecAppKey, `{"mobile":"13800138000"}`)
	f.Add(vecSessionKey, vecData, vecIV)
	f.Add(key, good.Data, good.IV)
	f.Add(key, vecData, vecIV)
	f.Add("", "", "")
	f.Add("M00WVpiHL3Fdo3NOCF0efA==", vecData, vecIV)
	f.Add(vecSessionKey, "AAAAAAAAAAAAAAAAAAAAAA==", vecIV)
	kinds := []error{provider.ErrDecrypt, provider.ErrSessionKeyStale, provider.ErrWatermark}
	f.Fuzz(func(t *testing.T, sessionKey, data, iv string) {
		d := provider.EncryptedData{Data: data, IV: iv}
		got, err := Decrypt(sessionKey, vecAppKey, d)
		again, err2 := Decrypt(sessionKey, vecAppKey, d)
		if string(got) != string(again) || (err == nil) != (err2 == nil) {
			t.Fatal("Decrypt is not deterministic")
		}
		if err == nil {
			if len(got) == 0 || got[0] != '{' {
				t.Fatalf("success with content %q", got)
			}
			return
		}
		var pe *provider.Error
		if !errors.As(err, &pe) {
			t.Fatalf("err is %T", err)
		}
		known := false
		for _, k := range kinds {
			known = known || pe.Kind == k
		}
		if !known {
			t.Fatalf("unexpected kind %v", pe.Kind)
		}
		if sessionKey != "" && len(sessionKey) >= 8 && strings.Contains(pe.Error(), sessionKey) {
			t.Fatal("error quotes the session key")
		}
		// Phone and profile decoding must not panic either.
		_, _ = DecryptPhone(sessionKey, vecAppKey, d)
		_, _ = DecryptProfile(sessionKey, vecAppKey, d)
	})
}

func BenchmarkDecrypt(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(vecData)))
	for b.Loop() {
		if _, err := DecryptProfile(vecSessionKey, vecAppKey, vector); err != nil {
			b.Fatal(err)
		}
	}
}
