package alipay

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/mpauth/mpauth/internal/provider"
)

// phoneProvider is an app whose Alipay public key is the KAT key (which
// signed the §2.9 vector) and whose AES key is the vector's.
func phoneProvider(t testing.TB, aesKey string) provider.UserDataDecrypter {
	t.Helper()
	appKey, _ := testKeys(t)
	appPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(appKey)}))
	p, err := New(provider.App{
		Platform:             provider.Alipay,
		AppID:                testAppID,
		PrivateKeyPEM:        appPEM,
		PlatformPublicKeyPEM: katPublicKeyPEM,
		AESKey:               aesKey,
	}, provider.Env{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p.(provider.UserDataDecrypter)
}

// seal encrypts plaintext as Alipay does (AES-CBC, zero IV, PKCS#7), with
// its own padding code, and signs the quoted base64 with the KAT key.
func seal(t testing.TB, keyB64, plaintext string) (response, sign string) {
	t.Helper()
	key, _ := base64.StdEncoding.DecodeString(keyB64)
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	n := 16 - len(plaintext)%16
	padded := []byte(plaintext + strings.Repeat(string([]byte{byte(n)}), n))
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, make([]byte, 16)).CryptBlocks(ct, padded)
	response = base64.StdEncoding.EncodeToString(ct)
	return response, rsa2(t, katKey(t), `"`+response+`"`)
}

// signQuoted signs arbitrary response text as Alipay would.
func signQuoted(t testing.TB, response string) string {
	return rsa2(t, katKey(t), `"`+response+`"`)
}

func TestSealMatchesTheVector(t *testing.T) {
	ct, sign := seal(t, vectorAESKey, `{"code":"10000","msg":"Success","mobile":"1597671905"}`)
	if ct != vectorCiphertext {
		t.Errorf("ciphertext = %s, want the §2.9 vector %s", ct, vectorCiphertext)
	}
	if sign != vectorPhoneSign {
		t.Errorf("sign = %s, want the openssl one %s", sign, vectorPhoneSign)
	}
}

func TestDecryptPhone(t *testing.T) {
	otherAES := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 16))
	aes256 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	envelope := func(response, sign, signType string) string {
		return `{"response":"` + response + `","sign":"` + sign + `","sign_type":"` + signType + `","encrypt_type":"AES","charset":"UTF-8"}`
	}
	type tc struct {
		name   string
		aesKey string // default vectorAESKey; "-" for none
		data   func(t *testing.T) (data, sign string)

		wantMobile  string
		wantKind    error
		wantCode    string
		wantMessage string
	}
	fixed := func(data, sign string) func(*testing.T) (string, string) {
		return func(*testing.T) (string, string) { return data, sign }
	}
	sealed := func(plaintext string) func(*testing.T) (string, string) {
		return func(t *testing.T) (string, string) { return seal(t, vectorAESKey, plaintext) }
	}
	tests := []tc{
		{name: "the §2.9 vector", data: fixed(vectorCiphertext, vectorPhoneSign), wantMobile: vectorMobile},
		{name: "whole res.response text in Data", data: fixed(envelope(vectorCiphertext, vectorPhoneSign, "RSA2"), ""), wantMobile: vectorMobile},
		{name: "res.response text without the optional fields", data: fixed(`{"response":"`+vectorCiphertext+`","sign":"`+vectorPhoneSign+`"}`, ""), wantMobile: vectorMobile},
		{name: "res.response text with the sign passed apart", data: fixed(`{"response":"`+vectorCiphertext+`"}`, vectorPhoneSign), wantMobile: vectorMobile},
		{name: "AES-256 key", aesKey: aes256, data: func(t *testing.T) (string, string) {
			return seal(t, aes256, `{"code":"10000","msg":"Success","mobile":"13800138000"}`)
		}, wantMobile: "13800138000"},
		{name: "no aes_key configured", aesKey: "-", data: fixed(vectorCiphertext, vectorPhoneSign), wantKind: provider.ErrMisconfigured, wantMessage: "aes_key"},
		{name: "no sign", data: fixed(vectorCiphertext, ""), wantKind: provider.ErrDecrypt, wantMessage: "no signature"},
		{name: "sign of other data", data: func(t *testing.T) (string, string) { return vectorCiphertext, signQuoted(t, "other") }, wantKind: provider.ErrDecrypt, wantMessage: "signature"},
		{name: "sign without the quotes does not verify", data: func(t *testing.T) (string, string) {
			return vectorCiphertext, rsa2(t, katKey(t), vectorCiphertext)
		}, wantKind: provider.ErrDecrypt, wantMessage: "signature"},
		{name: "tampered ciphertext", data: fixed("5"+vectorCiphertext[1:], vectorPhoneSign), wantKind: provider.ErrDecrypt, wantMessage: "signature"},
		{name: "sign by the app's key, not Alipay's", data: func(t *testing.T) (string, string) {
			k, _ := testKeys(t)
			return vectorCiphertext, rsa2(t, k, `"`+vectorCiphertext+`"`)
		}, wantKind: provider.ErrDecrypt, wantMessage: "signature"},
		{name: "another app's AES key", aesKey: otherAES, data: fixed(vectorCiphertext, vectorPhoneSign), wantKind: provider.ErrDecrypt, wantMessage: "does not decrypt"},
		{name: "error inside the encrypted payload", data: sealed(`{"code":"40006","msg":"Insufficient Permissions","subCode":"isv.insufficient-isv-permissions","subMsg":"ISV权限不足"}`),
			wantKind: provider.ErrDecrypt, wantCode: "40006/isv.insufficient-isv-permissions", wantMessage: "ISV权限不足"},
		{name: "snake_case error inside the payload", data: sealed(`{"code":"40003","msg":"x","sub_code":"isv.invalid-auth-relations","sub_msg":"无效的授权关系"}`),
			wantKind: provider.ErrDecrypt, wantCode: "40003/isv.invalid-auth-relations", wantMessage: "无效的授权关系"},
		{name: "numeric code inside the payload", data: sealed(`{"code":10000,"msg":"Success","mobile":"1597671905"}`), wantMobile: vectorMobile},
		{name: "no phone bound", data: sealed(`{"code":"10000","msg":"Success","mobile":""}`), wantKind: provider.ErrDecrypt, wantCode: "10000", wantMessage: "no phone number"},
		{name: "mobile that is not a number", data: sealed(`{"code":"10000","msg":"Success","mobile":"<script>"}`), wantKind: provider.ErrDecrypt},
		{name: "payload that is not JSON", data: sealed(`not json at all`), wantKind: provider.ErrDecrypt, wantMessage: "does not decrypt"},
		{name: "clear missing-encrypt-key error", data: fixed(`{"code":"40001","msg":"Missing Required Arguments","subCode":"isv.missing-encrypt-key","subMsg":"缺少加密配置"}`, ""),
			wantKind: provider.ErrDecrypt, wantCode: "40001/isv.missing-encrypt-key", wantMessage: "缺少加密配置"},
		{name: "clear error inside res.response", data: fixed(`{"response":{"code":"40006","msg":"x","subCode":"isv.insufficient-isv-permissions","subMsg":"ISV权限不足"}}`, ""),
			wantKind: provider.ErrDecrypt, wantCode: "40006/isv.insufficient-isv-permissions"},
		{name: "clear success is refused", data: fixed(`{"code":"10000","msg":"Success","mobile":"1597671905"}`, "x"), wantKind: provider.ErrDecrypt, wantMessage: "not encrypted"},
		{name: "sign_type RSA (SHA1) is refused", data: fixed(envelope(vectorCiphertext, vectorPhoneSign, "RSA"), ""), wantKind: provider.ErrDecrypt, wantMessage: "sign_type"},
		{name: "signed text that is not base64", data: func(t *testing.T) (string, string) { return "!!!!", signQuoted(t, "!!!!") }, wantKind: provider.ErrDecrypt, wantMessage: "base64"},
		{name: "signed data of a partial block", data: func(t *testing.T) (string, string) {
			s := base64.StdEncoding.EncodeToString(make([]byte, 20))
			return s, signQuoted(t, s)
		},
			wantKind: provider.ErrDecrypt, wantMessage: "blocks"},
		{name: "signed data with bad padding", data: func(t *testing.T) (string, string) {
			s := base64.StdEncoding.EncodeToString(make([]byte, 32))
			return s, signQuoted(t, s)
		},
			wantKind: provider.ErrDecrypt, wantMessage: "does not decrypt"},
		{name: "empty data", data: fixed("", vectorPhoneSign), wantKind: provider.ErrDecrypt},
		{name: "oversized data", data: fixed(strings.Repeat("A", maxEncrypted+4), vectorPhoneSign), wantKind: provider.ErrDecrypt},
		{name: "JSON that is neither", data: fixed(`{"x":`, ""), wantKind: provider.ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.aesKey
			switch key {
			case "":
				key = vectorAESKey
			case "-":
				key = ""
			}
			p := phoneProvider(t, key)
			data, sign := tt.data(t)
			ph, err := p.DecryptPhone("ignored-session-key", provider.EncryptedData{Data: data, Sign: sign})
			if tt.wantKind != nil {
				if ph != nil {
					t.Errorf("phone = %+v, want nil", ph)
				}
				pe := checkError(t, err, tt.wantKind, tt.wantCode)
				if !strings.Contains(pe.Message, tt.wantMessage) {
					t.Errorf("Message = %q, want it to contain %q", pe.Message, tt.wantMessage)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecryptPhone: %v", err)
			}
			if ph.Number != tt.wantMobile || ph.PureNumber != tt.wantMobile || ph.CountryCode != "" {
				t.Errorf("phone = %+v, want %s", ph, tt.wantMobile)
			}
		})
	}
}

func TestDecryptProfileIsNotSupported(t *testing.T) {
	p := phoneProvider(t, vectorAESKey)
	_, err := p.DecryptProfile("", provider.EncryptedData{Data: vectorCiphertext, Sign: vectorPhoneSign})
	pe := checkError(t, err, provider.ErrNotSupported, "")
	if !strings.Contains(pe.Message, "alipay.user.info.share") {
		t.Errorf("Message = %q, want it to say where the profile comes from", pe.Message)
	}
}

func FuzzDecryptPhone(f *testing.F) {
	f.Add(vectorCiphertext, vectorPhoneSign)
	f.Add(`{"response":"`+vectorCiphertext+`","sign":"`+vectorPhoneSign+`"}`, "")
	f.Add(`{"code":"40001","subCode":"isv.missing-encrypt-key","subMsg":"缺少加密配置"}`, "")
	f.Add(`{"response":{"code":"40006"}}`, "")
	f.Add("", "")
	f.Add("AAAA", "AAAA")
	p := phoneProvider(f, vectorAESKey)
	f.Fuzz(func(t *testing.T, data, sign string) {
		ph, err := p.DecryptPhone("", provider.EncryptedData{Data: data, Sign: sign})
		if (ph == nil) == (err == nil) {
			t.Fatalf("DecryptPhone = (%v, %v): want exactly one", ph, err)
		}
		if err != nil {
			if !errors.Is(err, provider.ErrDecrypt) {
				t.Fatalf("err = %v, want ErrDecrypt", err)
			}
			return
		}
		// Only data signed by the Alipay key decrypts.
		if ph.Number != vectorMobile {
			t.Fatalf("decrypted %q from unsigned data", ph.Number)
		}
	})
}

// FuzzDecryptPhonePayload fuzzes what follows a valid signature: base64,
// AES, padding and the payload.
func FuzzDecryptPhonePayload(f *testing.F) {
	ct, _ := base64.StdEncoding.DecodeString(vectorCiphertext)
	f.Add(ct)
	f.Add(make([]byte, 16))
	f.Add([]byte{})
	key, _ := base64.StdEncoding.DecodeString(vectorAESKey)
	block, _ := aes.NewCipher(key)
	f.Fuzz(func(t *testing.T, ct []byte) {
		plain, err := aesOpen(block, base64.StdEncoding.EncodeToString(ct))
		if err != nil {
			if !errors.Is(err, provider.ErrDecrypt) {
				t.Fatalf("err = %v", err)
			}
			return
		}
		if len(plain) >= len(ct) || len(ct)-len(plain) > 16 {
			t.Fatalf("unpadded %d bytes to %d", len(ct), len(plain))
		}
		m, err := phoneOf(plain)
		if err == nil && m == "" {
			t.Fatal("success without a mobile")
		}
		if err != nil && !errors.Is(err, provider.ErrDecrypt) {
			t.Fatalf("err = %v", err)
		}
	})
}

func BenchmarkDecryptPhone(b *testing.B) {
	p := phoneProvider(b, vectorAESKey)
	d := provider.EncryptedData{Data: vectorCiphertext, Sign: vectorPhoneSign}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = p.DecryptPhone("", d)
	}
}
