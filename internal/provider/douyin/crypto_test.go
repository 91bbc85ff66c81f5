package douyin

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/mpauth/mpauth/internal/provider"
)

// The official WeChat vector of platforms.md §1.6. Douyin uses the same
// scheme (§3.5) and publishes no vector of its own.
const (
	vecAppID     = "wx4f4bc4dec97d474b"
	vecKey       = "tiihtNczf5v6AKRyjwEUhQ=="
	vecIV        = "r7BXXKkLb8qrSNn05n0qiA=="
	vecData      = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew=="
	vecPlaintext = `{"openId":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0","unionId":"ocMvos6NjeKLIBqg5Mr9QjxrP1FA","watermark":{"timestamp":1477314187,"appid":"wx4f4bc4dec97d474b"}}`
	vecAvatar    = "http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0"
)

// seal encrypts plain the way Douyin does (an independent implementation
// of the scheme, for documents the official vector does not cover).
func seal(t testing.TB, key string, plain []byte) provider.EncryptedData {
	t.Helper()
	k, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	n := aes.BlockSize - len(plain)%aes.BlockSize
	padded := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(n)}, n)...)
	iv := make([]byte, aes.BlockSize)
	rand.Read(iv)
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, padded)
	return provider.EncryptedData{Data: base64.StdEncoding.EncodeToString(ct), IV: base64.StdEncoding.EncodeToString(iv)}
}

func vecProvider(t testing.TB, appID string) *douyin {
	t.Helper()
	p, err := New(provider.App{Platform: provider.Douyin, AppID: appID, Secret: testSecret}, provider.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*douyin)
}

func TestDecryptOfficialVector(t *testing.T) {
	plain, err := Decrypt(vecKey, vecData, vecIV)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if string(plain) != vecPlaintext {
		t.Errorf("plaintext =\n%s\nwant\n%s", plain, vecPlaintext)
	}
	prof, err := vecProvider(t, vecAppID).DecryptProfile(vecKey, provider.EncryptedData{Data: vecData, IV: vecIV})
	if err != nil {
		t.Fatalf("DecryptProfile: %v", err)
	}
	if want := (provider.Profile{Nickname: "Band", AvatarURL: vecAvatar}); *prof != want {
		t.Errorf("profile = %+v, want %+v", *prof, want)
	}
}

func TestDecryptPhone(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want provider.Phone
	}{
		{"country code as a string",
			`{"phoneNumber":"13580006666","purePhoneNumber":"13580006666","countryCode":"86","watermark":{"appid":"` + testAppID + `","timestamp":1700000000}}`,
			provider.Phone{Number: "13580006666", PureNumber: "13580006666", CountryCode: "86"}},
		{"country code as a number",
			`{"phoneNumber":"+1 2025550123","purePhoneNumber":"2025550123","countryCode":1,"watermark":{"appid":"` + testAppID + `","timestamp":1700000000}}`,
			provider.Phone{Number: "+1 2025550123", PureNumber: "2025550123", CountryCode: "1"}},
		{"no watermark is accepted",
			`{"phoneNumber":"13580006666","purePhoneNumber":"13580006666","countryCode":"86"}`,
			provider.Phone{Number: "13580006666", PureNumber: "13580006666", CountryCode: "86"}},
		{"null watermark is accepted",
			`{"phoneNumber":"13580006666","countryCode":null,"watermark":null}`,
			provider.Phone{Number: "13580006666"}},
		{"only the pure number",
			`{"purePhoneNumber":"13580006666","countryCode":"86","watermark":{"appid":"` + testAppID + `"}}`,
			provider.Phone{Number: "13580006666", PureNumber: "13580006666", CountryCode: "86"}},
	}
	p := vecProvider(t, testAppID)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.DecryptPhone(testKey, seal(t, testKey, []byte(tt.doc)))
			if err != nil {
				t.Fatalf("DecryptPhone: %v", err)
			}
			if *got != tt.want {
				t.Errorf("phone = %+v, want %+v", *got, tt.want)
			}
		})
	}
}

// flip returns the base64 of b64's bytes with byte i XORed with x.
func flip(b64 string, i int, x byte) string {
	b, _ := base64.StdEncoding.DecodeString(b64)
	if i < 0 {
		i += len(b)
	}
	b[i] ^= x
	return base64.StdEncoding.EncodeToString(b)
}

func TestDecryptFailures(t *testing.T) {
	phoneDoc := []byte(`{"phoneNumber":"13580006666","purePhoneNumber":"13580006666","countryCode":"86","watermark":{"appid":"` + testAppID + `","timestamp":1700000000}}`)
	sealed := seal(t, testKey, phoneDoc)
	otherKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 16))
	notJSON := seal(t, testKey, []byte("not json at all, but padded well"))
	tests := []struct {
		name      string
		appID     string
		key       string
		d         provider.EncryptedData
		phone     bool // DecryptPhone, else DecryptProfile
		wantKind  error
		wantInMsg string
	}{
		// Well-formed input that does not open: the session key rotated.
		{"another session key is stale", testAppID, otherKey, sealed, true, provider.ErrSessionKeyStale, "log in again"},
		{"official vector with another key is stale", vecAppID, otherKey, provider.EncryptedData{Data: vecData, IV: vecIV}, false, provider.ErrSessionKeyStale, ""},
		// Flipping the low bit of the second-to-last block's last byte
		// flips it in the last plaintext byte: the padding length n becomes
		// n^1, which never matches the bytes before it.
		{"tampered padding is stale", vecAppID, vecKey, provider.EncryptedData{Data: flip(vecData, -17, 0x01), IV: vecIV}, false, provider.ErrSessionKeyStale, "bad padding"},
		{"tampered first block is stale (not JSON)", vecAppID, vecKey, provider.EncryptedData{Data: vecData, IV: flip(vecIV, 0, '{'^'x')}, false, provider.ErrSessionKeyStale, "not a JSON object"},
		{"padded plaintext that is not JSON is stale", testAppID, testKey, notJSON, true, provider.ErrSessionKeyStale, "not a JSON object"},
		{"no session key is stale", testAppID, "", sealed, true, provider.ErrSessionKeyStale, "tt.login"},
		// Malformed input: never decryptable.
		{"session key not base64", testAppID, "!!!!!!!!!!!!!!!!!!!!!!!!", sealed, true, provider.ErrDecrypt, "session key"},
		{"session key of 10 bytes", testAppID, base64.StdEncoding.EncodeToString(make([]byte, 10)), sealed, true, provider.ErrDecrypt, "session key"},
		{"session key of 24 bytes (AES-192)", testAppID, base64.StdEncoding.EncodeToString(make([]byte, 24)), sealed, true, provider.ErrDecrypt, "session key"},
		{"iv of 12 bytes", testAppID, testKey, provider.EncryptedData{Data: sealed.Data, IV: base64.StdEncoding.EncodeToString(make([]byte, 12))}, true, provider.ErrDecrypt, "iv"},
		{"iv missing", testAppID, testKey, provider.EncryptedData{Data: sealed.Data}, true, provider.ErrDecrypt, "iv"},
		{"data not base64", testAppID, testKey, provider.EncryptedData{Data: "%%%%", IV: sealed.IV}, true, provider.ErrDecrypt, "encrypted data"},
		{"data missing", testAppID, testKey, provider.EncryptedData{IV: sealed.IV}, true, provider.ErrDecrypt, "encrypted data"},
		{"data not whole blocks", testAppID, testKey, provider.EncryptedData{Data: base64.StdEncoding.EncodeToString(make([]byte, 20)), IV: sealed.IV}, true, provider.ErrDecrypt, "encrypted data"},
		{"data too large", testAppID, testKey, provider.EncryptedData{Data: strings.Repeat("A", maxEncryptedData+4), IV: sealed.IV}, true, provider.ErrDecrypt, "too large"},
		// Decrypted, but not what was asked or not for us.
		{"profile document has no phone", vecAppID, vecKey, provider.EncryptedData{Data: vecData, IV: vecIV}, true, provider.ErrDecrypt, "no phone number"},
		{"watermark of another app", "tt_another_app_0000", vecKey, provider.EncryptedData{Data: vecData, IV: vecIV}, false, provider.ErrWatermark, vecAppID},
		{"phone watermark of another app", "tt_another_app_0000", testKey, sealed, true, provider.ErrWatermark, testAppID},
		{"watermark without appid", testAppID, testKey, seal(t, testKey, []byte(`{"phoneNumber":"1","watermark":{"timestamp":1}}`)), true, provider.ErrWatermark, ""},
		{"watermark not an object", testAppID, testKey, seal(t, testKey, []byte(`{"phoneNumber":"1","watermark":"`+testAppID+`"}`)), true, provider.ErrWatermark, ""},
		{"phone of the wrong type", testAppID, testKey, seal(t, testKey, []byte(`{"phoneNumber":{"n":1}}`)), true, provider.ErrDecrypt, "wrong type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := vecProvider(t, tt.appID)
			var err error
			if tt.phone {
				var ph *provider.Phone
				ph, err = p.DecryptPhone(tt.key, tt.d)
				if ph != nil {
					t.Errorf("phone = %+v, want nil", ph)
				}
			} else {
				var pr *provider.Profile
				pr, err = p.DecryptProfile(tt.key, tt.d)
				if pr != nil {
					t.Errorf("profile = %+v, want nil", pr)
				}
			}
			pe := checkError(t, err, tt.wantKind, "")
			if !strings.Contains(pe.Message, tt.wantInMsg) {
				t.Errorf("Message = %q, want it to contain %q", pe.Message, tt.wantInMsg)
			}
			for _, s := range []string{tt.key, tt.d.IV} {
				if len(s) >= 8 && strings.Contains(err.Error(), s) {
					t.Errorf("error %q quotes a key or IV", err)
				}
			}
		})
	}
}

func TestDecryptToleratesUnpaddedAndSpacedBase64(t *testing.T) {
	p := vecProvider(t, vecAppID)
	d := provider.EncryptedData{
		Data: strings.ReplaceAll(strings.TrimRight(vecData, "="), "+", " "),
		IV:   strings.TrimRight(vecIV, "="),
	}
	prof, err := p.DecryptProfile(strings.TrimRight(vecKey, "="), d)
	if err != nil {
		t.Fatalf("DecryptProfile: %v", err)
	}
	if prof.Nickname != "Band" {
		t.Errorf("Nickname = %q, want Band", prof.Nickname)
	}
}

func TestUnpad(t *testing.T) {
	block := func(tail ...byte) []byte {
		return append(bytes.Repeat([]byte{'a'}, 16-len(tail)), tail...)
	}
	tests := []struct {
		name string
		in   []byte
		n    int // bytes kept; -1: invalid
	}{
		{"one byte of padding", block(1), 15},
		{"a whole block of padding", append(block(), bytes.Repeat([]byte{16}, 16)...), 16},
		{"zero padding byte", block(0), -1},
		{"padding byte above 16", block(17), -1},
		{"inconsistent padding", block(1, 3, 3), -1},
		{"empty", nil, -1},
		{"not whole blocks", []byte{1}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, ok := provider.UnpadPKCS7(tt.in, 16)
			if (tt.n >= 0) != ok || (ok && n != tt.n) {
				t.Errorf("unpad = %d bytes, %v; want %d", n, ok, tt.n)
			}
		})
	}
}

func FuzzDecrypt(f *testing.F) {
	f.Add(vecKey, vecData, vecIV)
	f.Add(vecKey, flip(vecData, -17, 1), vecIV)
	f.Add("", vecData, vecIV)
	f.Add(vecKey, "", "")
	f.Add("AAAA", "AAAA", "AAAA")
	f.Add(testKey, seal(f, testKey, []byte(`{"phoneNumber":"1"}`)).Data, vecIV)
	f.Fuzz(func(t *testing.T, key, data, iv string) {
		plain, err := Decrypt(key, data, iv)
		plain2, err2 := Decrypt(key, data, iv)
		if !bytes.Equal(plain, plain2) || (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatal("Decrypt is not deterministic")
		}
		if err != nil {
			if plain != nil {
				t.Fatal("plaintext with an error")
			}
			checkFuzzError(t, err, provider.ErrDecrypt, provider.ErrSessionKeyStale)
			return
		}
		if tr := bytes.TrimSpace(plain); len(tr) == 0 || tr[0] != '{' {
			t.Fatal("plaintext is not a JSON object")
		}
	})
}

func FuzzDecodeUserData(f *testing.F) {
	f.Add(vecAppID, []byte(vecPlaintext))
	f.Add(testAppID, []byte(`{"phoneNumber":"13580006666","purePhoneNumber":"13580006666","countryCode":86,"watermark":{"appid":"`+testAppID+`","timestamp":1}}`))
	f.Add(testAppID, []byte(`{"phoneNumber":null,"watermark":[]}`))
	f.Add(testAppID, []byte(`{"nickName":1e999}`))
	f.Add(testAppID, []byte(`not json`))
	f.Fuzz(func(t *testing.T, appID string, plain []byte) {
		ph, err := DecodePhone(appID, plain)
		ph2, err2 := DecodePhone(appID, plain)
		if (ph == nil) == (err == nil) || (err == nil) != (err2 == nil) || (ph != nil && *ph != *ph2) {
			t.Fatalf("DecodePhone = (%v, %v) then (%v, %v)", ph, err, ph2, err2)
		}
		if err != nil {
			checkFuzzError(t, err, provider.ErrDecrypt, provider.ErrSessionKeyStale, provider.ErrWatermark)
		} else if ph.Number == "" {
			t.Fatal("phone without a number")
		}
		pr, err := DecodeProfile(appID, plain)
		if (pr == nil) == (err == nil) {
			t.Fatalf("DecodeProfile = (%v, %v)", pr, err)
		}
		if err != nil {
			checkFuzzError(t, err, provider.ErrDecrypt, provider.ErrSessionKeyStale, provider.ErrWatermark)
		}
	})
}

func BenchmarkDecrypt(b *testing.B) {
	p := vecProvider(b, vecAppID)
	d := provider.EncryptedData{Data: vecData, IV: vecIV}
	b.ReportAllocs()
	b.SetBytes(int64(len(vecData)))
	for b.Loop() {
		if _, err := p.DecryptProfile(vecKey, d); err != nil {
			b.Fatal(err)
		}
	}
}
