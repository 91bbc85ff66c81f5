package provider_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/mpauth/mpauth/internal/provider"
)

// sealCBC encrypts plain || pad with AES-CBC, the way the platforms seal
// user data; pad nil means correct PKCS#7 padding to 16 bytes.
func sealCBC(t testing.TB, key, iv, plain, pad []byte) []byte {
	t.Helper()
	if pad == nil {
		n := aes.BlockSize - len(plain)%aes.BlockSize
		pad = bytes.Repeat([]byte{byte(n)}, n)
	}
	buf := append(append([]byte{}, plain...), pad...)
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	ct := make([]byte, len(buf))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, buf)
	return ct
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestOpenAESCBCOpensTheWeChatVector decrypts the official WeChat sample
// (platforms.md §1.6), which Douyin and Kuaishou share the scheme of.
func TestOpenAESCBCOpensTheWeChatVector(t *testing.T) {
	dec := func(s string) []byte {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	key := dec("tiihtNczf5v6AKRyjwEUhQ==")
	iv := dec("r7BXXKkLb8qrSNn05n0qiA==")
	ct := dec("CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==")
	plain, err := provider.OpenAESCBC(key, iv, ct)
	if err != nil {
		t.Fatalf("OpenAESCBC = %v", err)
	}
	if !bytes.HasPrefix(plain, []byte(`{"openId":"oGZUI0egBJY1zhBYw2KhdUfwVJJE"`)) || plain[len(plain)-1] != '}' {
		t.Errorf("plaintext = %q", plain)
	}
}

func TestOpenAESCBCRoundTripsEveryKeySizeAndLength(t *testing.T) {
	for _, keyLen := range []int{16, 24, 32} {
		key, iv := randBytes(keyLen), randBytes(aes.BlockSize)
		for n := 0; n <= 48; n++ {
			plain := randBytes(n)
			ct := sealCBC(t, key, iv, plain, nil)
			ctCopy := append([]byte{}, ct...)
			got, err := provider.OpenAESCBC(key, iv, ct)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("key %d, %d bytes: OpenAESCBC = %x, %v; want %x", keyLen, n, got, err, plain)
			}
			if !bytes.Equal(ct, ctCopy) {
				t.Fatalf("key %d, %d bytes: the ciphertext was changed", keyLen, n)
			}
			raw, err := provider.DecryptAESCBC(key, iv, ct)
			if err != nil || !bytes.Equal(raw[:n], plain) || len(raw) != len(ct) {
				t.Fatalf("key %d, %d bytes: DecryptAESCBC = %x, %v", keyLen, n, raw, err)
			}
		}
	}
}

func TestOpenAESCBCRefusesWhatCannotDecrypt(t *testing.T) {
	key, iv := randBytes(16), randBytes(16)
	good := sealCBC(t, key, iv, []byte(`{"phoneNumber":"13800138000"}`), nil)
	tampered := append([]byte{}, good...)
	tampered[len(tampered)-17] ^= 0x01 // the last plaintext byte: the padding length
	tests := []struct {
		name    string
		key, iv []byte
		ct      []byte
		want    error
		wantRaw error // DecryptAESCBC, which does not unpad
	}{
		{"a 15-byte key", key[:15], iv, good, provider.ErrAESKeySize, provider.ErrAESKeySize},
		{"a 17-byte key", append(key, 0), iv, good, provider.ErrAESKeySize, provider.ErrAESKeySize},
		{"no key", nil, iv, good, provider.ErrAESKeySize, provider.ErrAESKeySize},
		{"a short IV", key, iv[:8], good, provider.ErrIVSize, provider.ErrIVSize},
		{"no IV", key, nil, good, provider.ErrIVSize, provider.ErrIVSize},
		{"no ciphertext", key, iv, nil, provider.ErrCiphertextSize, provider.ErrCiphertextSize},
		{"a partial block", key, iv, good[:len(good)-1], provider.ErrCiphertextSize, provider.ErrCiphertextSize},
		{"a tampered padding byte", key, iv, tampered, provider.ErrPadding, nil},
		{"another key", randBytes(16), iv, good, provider.ErrPadding, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plain, err := provider.OpenAESCBC(tt.key, tt.iv, tt.ct)
			if plain != nil || !errors.Is(err, tt.want) {
				t.Errorf("OpenAESCBC = %x, %v; want %v", plain, err, tt.want)
			}
			raw, err := provider.DecryptAESCBC(tt.key, tt.iv, tt.ct)
			if !errors.Is(err, tt.wantRaw) || (err == nil) != (raw != nil) {
				t.Errorf("DecryptAESCBC = %x, %v; want %v", raw, err, tt.wantRaw)
			}
		})
	}
}

func TestOpenAESCBCChecksEveryPaddingByte(t *testing.T) {
	key, iv := randBytes(16), randBytes(16)
	tests := []struct {
		name  string
		plain []byte
		pad   []byte
		want  []byte // nil: ErrPadding
	}{
		{"one byte of padding", []byte("123456789012345"), []byte{1}, []byte("123456789012345")},
		{"a whole block of padding", []byte("1234567890123456"), bytes.Repeat([]byte{16}, 16), []byte("1234567890123456")},
		{"only padding", nil, bytes.Repeat([]byte{16}, 16), []byte{}},
		{"a zero padding byte", []byte("123456789012345"), []byte{0}, nil},
		{"a padding byte above 16", bytes.Repeat([]byte{17}, 15), []byte{17}, nil},
		{"inconsistent padding bytes", []byte("1234567890123"), []byte{9, 3, 3}, nil},
		{"a padding byte claiming more than the padding", []byte("1234567890123"), []byte{3, 3, 4}, nil},
		{"the first padding byte off", []byte("12345678"), []byte{8 ^ 0x80, 8, 8, 8, 8, 8, 8, 8}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := provider.OpenAESCBC(key, iv, sealCBC(t, key, iv, tt.plain, tt.pad))
			if tt.want == nil {
				if !errors.Is(err, provider.ErrPadding) {
					t.Errorf("OpenAESCBC = %q, %v; want ErrPadding", got, err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Errorf("OpenAESCBC = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestOpenCBCWithAKeptBlock(t *testing.T) {
	key := randBytes(32)
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, aes.BlockSize) // Alipay's fixed IV
	msg := []byte(`{"code":"10000","mobile":"13800138000"}`)
	got, err := provider.OpenCBC(block, zero, sealCBC(t, key, zero, msg, nil))
	if err != nil || !bytes.Equal(got, msg) {
		t.Errorf("OpenCBC = %q, %v", got, err)
	}
	if _, err := provider.OpenCBC(block, zero, sealCBC(t, key, zero, msg, append(bytes.Repeat([]byte{9}, 8), 8))); !errors.Is(err, provider.ErrPadding) {
		t.Errorf("OpenCBC of bad padding = %v, want ErrPadding", err)
	}
}

func TestUnpadPKCS7(t *testing.T) {
	block := func(size int, tail ...byte) []byte {
		return append(bytes.Repeat([]byte{'a'}, size-len(tail)), tail...)
	}
	tests := []struct {
		name      string
		in        []byte
		blockSize int
		want      int // -1: invalid
	}{
		{"16: one byte", block(16, 1), 16, 15},
		{"16: sixteen bytes", append(block(16), bytes.Repeat([]byte{16}, 16)...), 16, 16},
		{"16: two blocks, four bytes", append(block(16), block(16, 4, 4, 4, 4)...), 16, 28},
		{"16: zero", block(16, 0), 16, -1},
		{"16: seventeen", block(16, 17), 16, -1},
		{"16: 255", block(16, 255), 16, -1},
		{"16: a wrong byte", block(16, 2, 5, 5, 5, 5), 16, -1},
		{"16: empty", nil, 16, -1},
		{"16: not whole blocks", block(17, 1), 16, -1},
		{"32: Baidu-sized padding", block(32, bytes.Repeat([]byte{20}, 20)...), 32, 12},
		{"32: 33 is too much", block(64, bytes.Repeat([]byte{33}, 33)...), 32, -1},
		{"8: DES-sized blocks", block(8, 3, 3, 3), 8, 5},
		{"block size 0", block(16, 1), 0, -1},
		{"block size 256", block(256, 1), 256, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, ok := provider.UnpadPKCS7(tt.in, tt.blockSize)
			if ok != (tt.want >= 0) || (ok && n != tt.want) {
				t.Errorf("UnpadPKCS7 = %d, %v; want %d", n, ok, tt.want)
			}
		})
	}
}

// naiveUnpad is the obvious PKCS#7 check UnpadPKCS7 must agree with.
func naiveUnpad(b []byte, bs int) (int, bool) {
	if bs < 1 || bs > 255 || len(b) == 0 || len(b)%bs != 0 {
		return 0, false
	}
	p := int(b[len(b)-1])
	if p < 1 || p > bs {
		return 0, false
	}
	for _, c := range b[len(b)-p:] {
		if int(c) != p {
			return 0, false
		}
	}
	return len(b) - p, true
}

func FuzzUnpadPKCS7(f *testing.F) {
	f.Add([]byte("123456789012345\x01"), 16)
	f.Add(bytes.Repeat([]byte{16}, 32), 16)
	f.Add([]byte("1234567890123\x09\x03\x03"), 16)
	f.Add(bytes.Repeat([]byte{32}, 32), 32)
	f.Add([]byte{}, 16)
	f.Fuzz(func(t *testing.T, b []byte, bs int) {
		gn, gok := provider.UnpadPKCS7(b, bs)
		wn, wok := naiveUnpad(b, bs)
		if gn != wn || gok != wok {
			t.Fatalf("UnpadPKCS7(%x, %d) = %d, %v; naive = %d, %v", b, bs, gn, gok, wn, wok)
		}
	})
}
