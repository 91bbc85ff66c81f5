package wechat

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mpauth/mpauth/internal/provider"
)

// The official test vector (platforms.md §1.6, from WeChat's aes-sample).
const (
	vectorAppID      = "wx4f4bc4dec97d474b"
	vectorSessionKey = "tiihtNczf5v6AKRyjwEUhQ=="
	vectorIV         = "r7BXXKkLb8qrSNn05n0qiA=="
	vectorData       = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew=="
	vectorPlaintext  = `{"openId":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0","unionId":"ocMvos6NjeKLIBqg5Mr9QjxrP1FA","watermark":{"timestamp":1477314187,"appid":"wx4f4bc4dec97d474b"}}`
	vectorAvatar     = "http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0"
	// otherKey is a well-formed session key (platforms.md's rawData
	// example) that sealed neither the vector nor testKey's data.
	otherKey = "HyVFkGl5F5OQWJZZaNzBBg=="
)

// seal encrypts plaintext as WeChat does (AES-128-CBC) with the base64 key
// and a random IV. pad is appended as the padding; nil means correct PKCS#7
// (other values build broken data).
func seal(t testing.TB, key string, plaintext, pad []byte) (data, iv string) {
	t.Helper()
	k, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		t.Fatal(err)
	}
	if pad == nil {
		n := aes.BlockSize - len(plaintext)%aes.BlockSize
		pad = bytes.Repeat([]byte{byte(n)}, n)
	}
	buf := append(append([]byte{}, plaintext...), pad...)
	if len(buf)%aes.BlockSize != 0 {
		t.Fatalf("bad test padding: %d bytes", len(buf))
	}
	ivb := make([]byte, aes.BlockSize)
	rand.Read(ivb)
	block, err := aes.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	cipher.NewCBCEncrypter(block, ivb).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), base64.StdEncoding.EncodeToString(ivb)
}

// jsonOf returns a JSON object of exactly n >= 8 bytes.
func jsonOf(n int) []byte {
	return []byte(`{"a":"` + strings.Repeat("x", n-8) + `"}`)
}

func decrypter(t *testing.T, appID string) provider.UserDataDecrypter {
	t.Helper()
	p, err := New(provider.App{Platform: provider.WeChat, AppID: appID, Secret: testSecret}, provider.Env{})
	if err != nil {
		t.Fatal(err)
	}
	d, ok := p.(provider.UserDataDecrypter)
	if !ok {
		t.Fatal("the WeChat provider does not implement provider.UserDataDecrypter")
	}
	return d
}

func TestDecryptOfficialVector(t *testing.T) {
	plain, err := Decrypt(vectorSessionKey, vectorData, vectorIV)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if string(plain) != vectorPlaintext {
		t.Errorf("plaintext =\n%s\nwant\n%s", plain, vectorPlaintext)
	}
}

func TestDecryptProfileOfficialVector(t *testing.T) {
	d := provider.EncryptedData{Data: vectorData, IV: vectorIV}
	tests := []struct {
		name       string
		appID      string
		sessionKey string
		want       *provider.Profile
		wantKind   error
	}{
		{"the vector's app gets Band", vectorAppID, vectorSessionKey, &provider.Profile{Nickname: "Band", AvatarURL: vectorAvatar}, nil},
		{"another app gets a watermark error", "wx0000000000000000", vectorSessionKey, nil, provider.ErrWatermark},
		{"another well-formed session key is stale", vectorAppID, otherKey, nil, provider.ErrSessionKeyStale},
		{"no stored session key is stale", vectorAppID, "", nil, provider.ErrSessionKeyStale},
		{"a malformed session key cannot decrypt", vectorAppID, "tiihtNczf5v6AKRyjwEUhQ", nil, provider.ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decrypter(t, tt.appID).DecryptProfile(tt.sessionKey, d)
			if tt.wantKind != nil {
				checkError(t, err, tt.wantKind, "")
				noLeak(t, err, tt.sessionKey, "Band", vectorIV)
				if got != nil {
					t.Errorf("profile = %+v, want nil", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecryptProfile: %v", err)
			}
			if *got != *tt.want {
				t.Errorf("profile = %+v, want %+v", *got, *tt.want)
			}
		})
	}
}

func TestDecryptRejectsMalformedInput(t *testing.T) {
	fifteen := base64.StdEncoding.EncodeToString(make([]byte, 15))
	tests := []struct {
		name          string
		key, data, iv string
		wantKind      error
	}{
		{"key too short", "tiihtNczf5v6AKRyjwEU", vectorData, vectorIV, provider.ErrDecrypt},
		{"key 24 chars but not base64", "tiihtNczf5v6AKRyjwEU!!==", vectorData, vectorIV, provider.ErrDecrypt},
		{"key of 18 bytes", base64.StdEncoding.EncodeToString(make([]byte, 18)), vectorData, vectorIV, provider.ErrDecrypt},
		{"iv too short", vectorSessionKey, vectorData, "r7BXXKkLb8qrSNn05n0q", provider.ErrDecrypt},
		{"iv empty", vectorSessionKey, vectorData, "", provider.ErrDecrypt},
		{"iv not base64", vectorSessionKey, vectorData, "r7BXXKkLb8qrSNn05n0q*A==", provider.ErrDecrypt},
		{"data empty", vectorSessionKey, "", vectorIV, provider.ErrDecrypt},
		{"data not base64", vectorSessionKey, "%%%%" + vectorData, vectorIV, provider.ErrDecrypt},
		{"data not a multiple of 16 bytes", vectorSessionKey, fifteen, vectorIV, provider.ErrDecrypt},
		{"data truncated by one block is still well-formed but stale", vectorSessionKey, base64.StdEncoding.EncodeToString(mustB64(vectorData)[:384]), vectorIV, provider.ErrSessionKeyStale},
		{"data oversized", vectorSessionKey, strings.Repeat("A", maxEncryptedData+4), vectorIV, provider.ErrDecrypt},
		{"another well-formed key", otherKey, vectorData, vectorIV, provider.ErrSessionKeyStale},
		// The IV changes only the first block: '{' turns into something
		// else, so the plaintext is not JSON.
		{"another well-formed iv", vectorSessionKey, vectorData, base64.StdEncoding.EncodeToString(append([]byte{0x01}, mustB64(vectorIV)[1:]...)), provider.ErrSessionKeyStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plain, err := Decrypt(tt.key, tt.data, tt.iv)
			checkError(t, err, tt.wantKind, "")
			noLeak(t, err, vectorSessionKey, otherKey, "Band")
			if plain != nil {
				t.Errorf("plaintext %q, want none", plain)
			}
		})
	}
}

func mustB64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestDecryptReadsSpacesAsPlus(t *testing.T) {
	if !strings.Contains(vectorData, "+") {
		t.Fatal("the vector has no '+' to mangle")
	}
	plain, err := Decrypt(vectorSessionKey, strings.ReplaceAll(vectorData, "+", " "), vectorIV)
	if err != nil || string(plain) != vectorPlaintext {
		t.Fatalf("Decrypt of form-mangled data = %q, %v; want the vector", plain, err)
	}
}

func TestDecryptPaddingAndPlaintextFailuresAreStale(t *testing.T) {
	tests := []struct {
		name      string
		plaintext []byte
		pad       []byte // nil: correct PKCS#7
		wantKind  error  // nil: decrypts
	}{
		{"correct padding", jsonOf(29), nil, nil},
		{"a whole block of padding", jsonOf(32), bytes.Repeat([]byte{16}, 16), nil},
		{"pad byte 0", jsonOf(32), bytes.Repeat([]byte{0}, 16), provider.ErrSessionKeyStale},
		{"pad byte 17", jsonOf(32), bytes.Repeat([]byte{17}, 16), provider.ErrSessionKeyStale},
		// A lax unpad that reads only the last byte would strip three
		// bytes and find valid JSON: strict PKCS#7 must refuse.
		{"inconsistent padding bytes", jsonOf(29), []byte{9, 3, 3}, provider.ErrSessionKeyStale},
		{"pad byte claiming more than the padding", jsonOf(29), []byte{3, 3, 4}, provider.ErrSessionKeyStale},
		{"valid padding, text that is not JSON", []byte("hello, world"), nil, provider.ErrSessionKeyStale},
		{"valid padding, a JSON array", []byte(`[1,2,3]`), nil, provider.ErrSessionKeyStale},
		{"valid padding, truncated JSON", jsonOf(29)[:20], nil, provider.ErrSessionKeyStale},
		{"valid padding, empty plaintext", []byte{}, nil, provider.ErrSessionKeyStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, iv := seal(t, testKey, tt.plaintext, tt.pad)
			plain, err := Decrypt(testKey, data, iv)
			if tt.wantKind == nil {
				if err != nil || !bytes.Equal(plain, tt.plaintext) {
					t.Fatalf("Decrypt = %q, %v; want %q", plain, err, tt.plaintext)
				}
				return
			}
			pe := checkError(t, err, tt.wantKind, "")
			// Padding and content failures must look the same (no
			// padding oracle).
			if want := "data does not decrypt with the stored session key: log in again"; pe.Message != want {
				t.Errorf("Message = %q, want %q", pe.Message, want)
			}
		})
	}
}

// TestUnpadMatchesNaivePKCS7 compares the constant-time check with the
// obvious one on every last-byte value and tails of varied consistency.
func TestUnpadMatchesNaivePKCS7(t *testing.T) {
	naive := func(b []byte) (int, bool) {
		p := int(b[len(b)-1])
		if p < 1 || p > 16 {
			return 0, false
		}
		for _, c := range b[len(b)-p:] {
			if int(c) != p {
				return 0, false
			}
		}
		return len(b) - p, true
	}
	for last := range 256 {
		for variant := range 20 {
			b := make([]byte, 32)
			rand.Read(b)
			if variant > 0 && last >= 1 && last <= 16 {
				// Fill the claimed padding, then maybe break one byte.
				for i := 32 - last; i < 32; i++ {
					b[i] = byte(last)
				}
				if variant%2 == 0 {
					b[32-1-variant%last] ^= 0x80
				}
			}
			b[31] = byte(last)
			gn, gok := provider.UnpadPKCS7(b, 16)
			wn, wok := naive(b)
			if gn != wn || gok != wok {
				t.Fatalf("unpad(%x) = %d, %v; naive = %d, %v", b, gn, gok, wn, wok)
			}
		}
	}
}

func TestDecryptPhone(t *testing.T) {
	tests := []struct {
		name     string
		doc      string
		want     provider.Phone
		wantKind error
	}{
		{
			name: "legacy document, countryCode as a string",
			doc:  `{"phoneNumber":"13580006666","purePhoneNumber":"13580006666","countryCode":"86","watermark":{"appid":"` + testAppID + `","timestamp":1477314187}}`,
			want: provider.Phone{Number: "13580006666", PureNumber: "13580006666", CountryCode: "86"},
		},
		{
			name: "countryCode as a number",
			doc:  `{"phoneNumber":"+85261234567","purePhoneNumber":"61234567","countryCode":852,"watermark":{"appid":"` + testAppID + `","timestamp":1}}`,
			want: provider.Phone{Number: "+85261234567", PureNumber: "61234567", CountryCode: "852"},
		},
		{name: "watermark of another app", doc: `{"phoneNumber":"13580006666","watermark":{"appid":"wx0000000000000000","timestamp":1}}`, wantKind: provider.ErrWatermark},
		{name: "watermark missing", doc: `{"phoneNumber":"13580006666"}`, wantKind: provider.ErrWatermark},
		{name: "a profile document is not a phone", doc: `{"nickName":"Band","watermark":{"appid":"` + testAppID + `","timestamp":1}}`, wantKind: provider.ErrDecrypt},
		{name: "fields of the wrong type", doc: `{"phoneNumber":["1"],"watermark":{"appid":"` + testAppID + `"}}`, wantKind: provider.ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, iv := seal(t, testKey, []byte(tt.doc), nil)
			got, err := decrypter(t, testAppID).DecryptPhone(testKey, provider.EncryptedData{Data: data, IV: iv})
			if tt.wantKind != nil {
				checkError(t, err, tt.wantKind, "")
				noLeak(t, err, "13580006666")
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
	t.Run("stale session key", func(t *testing.T) {
		data, iv := seal(t, testKey, []byte(tests[0].doc), nil)
		_, err := decrypter(t, testAppID).DecryptPhone(otherKey, provider.EncryptedData{Data: data, IV: iv})
		checkError(t, err, provider.ErrSessionKeyStale, "")
	})
}

func FuzzDecrypt(f *testing.F) {
	f.Add(vectorSessionKey, vectorData, vectorIV)
	f.Add(otherKey, vectorData, vectorIV)
	f.Add(vectorSessionKey, vectorData[:32], vectorIV)
	f.Add(vectorSessionKey, "", "")
	f.Add("", vectorData, vectorIV)
	f.Add(vectorSessionKey, strings.ReplaceAll(vectorData, "+", " "), vectorIV)
	f.Fuzz(func(t *testing.T, key, data, iv string) {
		plain, err := Decrypt(key, data, iv)
		plain2, err2 := Decrypt(key, data, iv)
		if !bytes.Equal(plain, plain2) || (err == nil) != (err2 == nil) {
			t.Fatalf("not deterministic")
		}
		if err != nil {
			if plain != nil {
				t.Fatal("plaintext with an error")
			}
			if !errors.Is(err, provider.ErrDecrypt) && !errors.Is(err, provider.ErrSessionKeyStale) {
				t.Fatalf("unexpected kind: %v", err)
			}
			return
		}
		if trim := bytes.TrimSpace(plain); len(trim) == 0 || trim[0] != '{' || !json.Valid(trim) {
			t.Fatalf("plaintext %q is not a JSON object", plain)
		}
		if len(plain) >= len(data) {
			t.Fatalf("plaintext of %d bytes from %d base64 chars", len(plain), len(data))
		}
	})
}

// FuzzDecryptRoundTrip seals arbitrary JSON objects and checks they come
// back unchanged, and that the user-data decoders never panic on them.
func FuzzDecryptRoundTrip(f *testing.F) {
	f.Add([]byte(vectorPlaintext))
	f.Add([]byte(`{"phoneNumber":"13580006666","purePhoneNumber":"13580006666","countryCode":86,"watermark":{"appid":"` + testAppID + `","timestamp":1}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		if trim := bytes.TrimSpace(doc); len(trim) == 0 || trim[0] != '{' || !json.Valid(trim) || len(doc) > 4096 {
			return
		}
		data, iv := seal(t, testKey, doc, nil)
		plain, err := Decrypt(testKey, data, iv)
		if err != nil || !bytes.Equal(plain, doc) {
			t.Fatalf("round trip = %q, %v; want %q", plain, err, doc)
		}
		if p, err := decodePhoneData(plain, testAppID); (p == nil) == (err == nil) {
			t.Fatalf("decodePhoneData = %v, %v", p, err)
		}
		if p, err := decodeProfileData(plain, testAppID); (p == nil) == (err == nil) {
			t.Fatalf("decodeProfileData = %v, %v", p, err)
		}
	})
}

func BenchmarkDecrypt(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(vectorData)))
	for b.Loop() {
		if _, err := Decrypt(vectorSessionKey, vectorData, vectorIV); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptProfile(b *testing.B) {
	p, _ := New(provider.App{AppID: vectorAppID, Secret: testSecret}, provider.Env{})
	d := p.(provider.UserDataDecrypter)
	ed := provider.EncryptedData{Data: vectorData, IV: vectorIV}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.DecryptProfile(vectorSessionKey, ed); err != nil {
			b.Fatal(err)
		}
	}
}
