package kuaishou

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/mpauth/mpauth/internal/provider"
)

// The phone test vector of platforms.md §4.5 (NeverRetrun/kuaishou-mini-app
// tests/Encryptor/MobileDecryptTest.php, verified with openssl).
const (
	vectorData = "BhwmnJUlu+xsIiARqsoP35GBL4EBQr8cyEbTDUfcO5cvmCbmezs0XHlfq1bOtxkZqA3/RYQ5nNpS4o1StegPRw=="
	vectorIV   = "0kga3zotUrMkCvociMF7YQ=="
	vectorKey  = testKey // z7CLMhoYKrPoolWP8SoNew==
)

var vector = provider.EncryptedData{Data: vectorData, IV: vectorIV}

// seal encrypts plaintext the way the Kuaishou client does: AES-128-CBC with
// the base64 session key, PKCS#7, a random IV.
func seal(t testing.TB, sessionKey, plaintext string) provider.EncryptedData {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil {
		t.Fatal(err)
	}
	return sealRaw(t, key, []byte(plaintext), true)
}

func sealRaw(t testing.TB, key, plaintext []byte, pad bool) provider.EncryptedData {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	if pad {
		n := aes.BlockSize - len(plaintext)%aes.BlockSize
		plaintext = append(plaintext, bytes.Repeat([]byte{byte(n)}, n)...)
	}
	iv := make([]byte, aes.BlockSize)
	rand.Read(iv)
	out := make([]byte, len(plaintext))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, plaintext)
	return provider.EncryptedData{Data: base64.StdEncoding.EncodeToString(out), IV: base64.StdEncoding.EncodeToString(iv)}
}

func TestDecryptPhoneOfficialVector(t *testing.T) {
	p := newKuaishou(t, "", 0)
	got, err := p.DecryptPhone(vectorKey, vector)
	if err != nil {
		t.Fatalf("DecryptPhone: %v", err)
	}
	want := provider.Phone{Number: "19814733741", PureNumber: "19814733741", CountryCode: "86"}
	if *got != want {
		t.Errorf("phone = %+v, want %+v", *got, want)
	}
}

func TestDecryptPhoneVectorTolerance(t *testing.T) {
	tests := []struct {
		name string
		key  string
		d    provider.EncryptedData
	}{
		{"data with + sent as spaces", vectorKey, provider.EncryptedData{Data: strings.ReplaceAll(vectorData, "+", " "), IV: vectorIV}},
		{"unpadded base64", strings.TrimRight(vectorKey, "="), provider.EncryptedData{Data: strings.TrimRight(vectorData, "="), IV: strings.TrimRight(vectorIV, "=")}},
		{"URL-safe base64", vectorKey, provider.EncryptedData{Data: strings.NewReplacer("+", "-", "/", "_").Replace(vectorData), IV: vectorIV}},
		{"surrounding whitespace", " " + vectorKey + "\n", provider.EncryptedData{Data: vectorData + "\n", IV: " " + vectorIV}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecryptPhone(testAppID, tt.key, tt.d)
			if err != nil {
				t.Fatalf("DecryptPhone: %v", err)
			}
			if got.Number != "19814733741" {
				t.Errorf("Number = %q", got.Number)
			}
		})
	}
}

func TestDecryptPhoneFailures(t *testing.T) {
	wrongKey := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	raw, _ := base64.StdEncoding.DecodeString(vectorData)
	flip := func(b []byte, i int) string {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		return base64.StdEncoding.EncodeToString(c)
	}
	ivRaw, _ := base64.StdEncoding.DecodeString(vectorIV)
	tests := []struct {
		name     string
		key      string
		d        provider.EncryptedData
		wantKind error
	}{
		{"another session key is stale", wrongKey, vector, provider.ErrSessionKeyStale},
		{"no session key is stale", "", vector, provider.ErrSessionKeyStale},
		{"tampered last block is stale", vectorKey, provider.EncryptedData{Data: flip(raw, len(raw)-1), IV: vectorIV}, provider.ErrSessionKeyStale},
		{"tampered IV is stale", vectorKey, provider.EncryptedData{Data: vectorData, IV: base64.StdEncoding.EncodeToString(func() []byte { c := bytes.Clone(ivRaw); c[0] ^= 0x80; return c }())}, provider.ErrSessionKeyStale},
		{"blocks cut off is stale", vectorKey, provider.EncryptedData{Data: base64.StdEncoding.EncodeToString(raw[:32]), IV: vectorIV}, provider.ErrSessionKeyStale},
		{"session key not base64", "!!!!!!!!!!!!!!!!!!!!!!!!", vector, provider.ErrDecrypt},
		{"session key of 24 bytes", base64.StdEncoding.EncodeToString(make([]byte, 24)), vector, provider.ErrDecrypt},
		{"session key of 15 bytes", base64.StdEncoding.EncodeToString(make([]byte, 15)), vector, provider.ErrDecrypt},
		{"iv not base64", vectorKey, provider.EncryptedData{Data: vectorData, IV: "not base64 at all!!"}, provider.ErrDecrypt},
		{"iv of 12 bytes", vectorKey, provider.EncryptedData{Data: vectorData, IV: base64.StdEncoding.EncodeToString(make([]byte, 12))}, provider.ErrDecrypt},
		{"empty iv", vectorKey, provider.EncryptedData{Data: vectorData}, provider.ErrDecrypt},
		{"data not base64", vectorKey, provider.EncryptedData{Data: "%%%%", IV: vectorIV}, provider.ErrDecrypt},
		{"empty data", vectorKey, provider.EncryptedData{IV: vectorIV}, provider.ErrDecrypt},
		{"data not whole blocks", vectorKey, provider.EncryptedData{Data: base64.StdEncoding.EncodeToString(raw[:40]), IV: vectorIV}, provider.ErrDecrypt},
		{"oversized data", vectorKey, provider.EncryptedData{Data: strings.Repeat("A", maxEncryptedData+4), IV: vectorIV}, provider.ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ph, err := DecryptPhone(testAppID, tt.key, tt.d)
			if ph != nil {
				t.Errorf("phone = %+v, want nil", ph)
			}
			checkError(t, err, tt.wantKind, "")
		})
	}
}

func TestDecryptPhoneDocuments(t *testing.T) {
	tests := []struct {
		name      string
		plaintext string
		want      provider.Phone
		wantKind  error
	}{
		{"documented shape", `{"countryCode":"86","phoneNumber":"19814733741"}`, provider.Phone{Number: "19814733741", PureNumber: "19814733741", CountryCode: "86"}, nil},
		{"countryCode as a number", `{"countryCode":86,"phoneNumber":"19814733741"}`, provider.Phone{Number: "19814733741", PureNumber: "19814733741", CountryCode: "86"}, nil},
		{"phoneNumber as a number", `{"countryCode":"86","phoneNumber":19814733741}`, provider.Phone{Number: "19814733741", PureNumber: "19814733741", CountryCode: "86"}, nil},
		{"no countryCode", `{"phoneNumber":"19814733741"}`, provider.Phone{Number: "19814733741", PureNumber: "19814733741"}, nil},
		{"foreign number gets its country code", `{"countryCode":"1","phoneNumber":"2025550123"}`, provider.Phone{Number: "+1 2025550123", PureNumber: "2025550123", CountryCode: "1"}, nil},
		{"foreign number already prefixed", `{"countryCode":"+852","phoneNumber":"+852 61234567"}`, provider.Phone{Number: "+852 61234567", PureNumber: "61234567", CountryCode: "852"}, nil},
		{"WeChat-style purePhoneNumber", `{"countryCode":"1","phoneNumber":"+1 2025550123","purePhoneNumber":"2025550123"}`, provider.Phone{Number: "+1 2025550123", PureNumber: "2025550123", CountryCode: "1"}, nil},
		{"watermark of this app", `{"countryCode":"86","phoneNumber":"13800138000","watermark":{"appid":"` + testAppID + `","timestamp":1700000000}}`, provider.Phone{Number: "13800138000", PureNumber: "13800138000", CountryCode: "86"}, nil},
		{"watermark of another app", `{"countryCode":"86","phoneNumber":"13800138000","watermark":{"appid":"ks000","timestamp":1700000000}}`, provider.Phone{}, provider.ErrWatermark},
		{"watermark app_id of another app", `{"countryCode":"86","phoneNumber":"13800138000","watermark":{"app_id":"ks000"}}`, provider.Phone{}, provider.ErrWatermark},
		{"watermark without app id is ignored", `{"countryCode":"86","phoneNumber":"13800138000","watermark":{"timestamp":1}}`, provider.Phone{Number: "13800138000", PureNumber: "13800138000", CountryCode: "86"}, nil},
		{"no phoneNumber is not a phone document", `{"nickName":"x"}`, provider.Phone{}, provider.ErrDecrypt},
		{"phoneNumber object is not a phone document", `{"phoneNumber":{}}`, provider.Phone{}, provider.ErrDecrypt},
		{"plaintext not JSON is stale", `hello, world`, provider.Phone{}, provider.ErrSessionKeyStale},
		{"plaintext JSON array is stale", `["19814733741"]`, provider.Phone{}, provider.ErrSessionKeyStale},
		{"plaintext truncated JSON is stale", `{"phoneNumber":"198`, provider.Phone{}, provider.ErrSessionKeyStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecryptPhone(testAppID, vectorKey, seal(t, vectorKey, tt.plaintext))
			if tt.wantKind != nil {
				checkError(t, err, tt.wantKind, "")
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

func TestDecryptWithoutValidPaddingIsStale(t *testing.T) {
	key, _ := base64.StdEncoding.DecodeString(vectorKey)
	tests := []struct {
		name  string
		plain []byte
	}{
		{"last byte zero", append([]byte(`{"phoneNumber":"1"}`), make([]byte, 13)...)},
		// 31 bytes of JSON then 17 bytes of 17: "valid" padding were it not
		// longer than a block.
		{"padding longer than a block", append([]byte(`{"phoneNumber":"13800138000"}  `), bytes.Repeat([]byte{17}, 17)...)},
		{"inconsistent padding bytes", append([]byte(`{"phoneNumber":"1"}`), append(bytes.Repeat([]byte{9}, 12), 3)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecryptPhone(testAppID, vectorKey, sealRaw(t, key, tt.plain, false))
			checkError(t, err, provider.ErrSessionKeyStale, "")
		})
	}
}

func TestDecryptProfile(t *testing.T) {
	tests := []struct {
		name      string
		plaintext string
		want      provider.Profile
		wantKind  error
	}{
		{"WeChat-style names", `{"nickName":"小快","avatarUrl":"https://p1.a.yximgs.com/a.jpg","gender":1}`, provider.Profile{Nickname: "小快", AvatarURL: "https://p1.a.yximgs.com/a.jpg"}, nil},
		{"lower-case names", `{"nickname":"kwai","avatar":"https://p1.a.yximgs.com/b.jpg"}`, provider.Profile{Nickname: "kwai", AvatarURL: "https://p1.a.yximgs.com/b.jpg"}, nil},
		{"nickname only", `{"nickName":"kwai"}`, provider.Profile{Nickname: "kwai"}, nil},
		{"watermark of another app", `{"nickName":"kwai","watermark":{"appid":"ks000"}}`, provider.Profile{}, provider.ErrWatermark},
		{"a phone document is not a profile", `{"countryCode":"86","phoneNumber":"19814733741"}`, provider.Profile{}, provider.ErrDecrypt},
		{"nickName of the wrong type", `{"nickName":["x"]}`, provider.Profile{}, provider.ErrDecrypt},
		{"not JSON is stale", `nickName=kwai`, provider.Profile{}, provider.ErrSessionKeyStale},
	}
	p := newKuaishou(t, "", 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.DecryptProfile(vectorKey, seal(t, vectorKey, tt.plaintext))
			if tt.wantKind != nil {
				checkError(t, err, tt.wantKind, "")
				return
			}
			if err != nil {
				t.Fatalf("DecryptProfile: %v", err)
			}
			if *got != tt.want {
				t.Errorf("profile = %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestDecryptProfileOfThePhoneVectorIsNotAProfile(t *testing.T) {
	_, err := DecryptProfile(testAppID, vectorKey, vector)
	checkError(t, err, provider.ErrDecrypt, "")
}

func FuzzDecryptPhone(f *testing.F) {
	f.Add(vectorKey, vectorData, vectorIV)
	f.Add(vectorKey, vectorData, "")
	f.Add("", vectorData, vectorIV)
	f.Add("AAAAAAAAAAAAAAAAAAAAAA==", vectorData, vectorIV)
	f.Add(vectorKey, "AAAAAAAAAAAAAAAAAAAAAA==", vectorIV)
	f.Add(vectorKey, "%%%", "%%%")
	kinds := []error{provider.ErrDecrypt, provider.ErrSessionKeyStale, provider.ErrWatermark}
	f.Fuzz(func(t *testing.T, key, data, iv string) {
		d := provider.EncryptedData{Data: data, IV: iv}
		ph, err := DecryptPhone(testAppID, key, d)
		ph2, err2 := DecryptPhone(testAppID, key, d)
		if (err == nil) != (err2 == nil) || (ph != nil && *ph != *ph2) {
			t.Fatal("DecryptPhone is not deterministic")
		}
		if err != nil {
			if ph != nil {
				t.Fatalf("phone %+v returned with error %v", ph, err)
			}
			checkFuzzError(t, err, kinds)
			for _, s := range []string{key, data} {
				if len(s) >= 8 && strings.Contains(err.Error(), s) {
					t.Fatalf("error %q quotes its input", err)
				}
			}
			return
		}
		if ph.Number == "" || ph.PureNumber == "" {
			t.Fatalf("phone without a number: %+v", ph)
		}
		// Profiles share the decryption; they must fail or succeed alike
		// up to the document shape.
		if _, perr := DecryptProfile(testAppID, key, d); perr != nil && !errors.Is(perr, provider.ErrDecrypt) {
			t.Fatalf("phone decrypted but profile failed with %v", perr)
		}
	})
}

func FuzzDecryptProfile(f *testing.F) {
	key, _ := base64.StdEncoding.DecodeString(vectorKey)
	for _, p := range []string{`{"nickName":"kwai","avatarUrl":"https://x/y.jpg"}`, `{"nickname":"k"}`, `{}`, `x`} {
		f.Add([]byte(p))
	}
	kinds := []error{provider.ErrDecrypt, provider.ErrSessionKeyStale, provider.ErrWatermark}
	f.Fuzz(func(t *testing.T, plaintext []byte) {
		// Properly sealed plaintext: decryption always gets through the
		// crypto, so this explores the document decoding.
		d := sealRaw(t, key, plaintext, true)
		p, err := DecryptProfile(testAppID, vectorKey, d)
		if err != nil {
			if p != nil {
				t.Fatalf("profile %+v returned with error %v", p, err)
			}
			checkFuzzError(t, err, kinds)
			if errors.Is(err, provider.ErrDecrypt) && !bytes.HasPrefix(bytes.TrimSpace(plaintext), []byte("{")) {
				t.Fatalf("non-object plaintext %q reported as malformed, want stale", plaintext)
			}
			return
		}
		if p.Nickname == "" && p.AvatarURL == "" {
			t.Fatalf("empty profile accepted from %q", plaintext)
		}
	})
}

func BenchmarkDecryptPhone(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecryptPhone(testAppID, vectorKey, vector); err != nil {
			b.Fatal(err)
		}
	}
}
