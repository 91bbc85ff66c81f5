package provider

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
)

// This file opens the AES-CBC user data the mini-program platforms hand
// out (WeChat, Douyin, Kuaishou with the session_key; Alipay with the app's
// AES key; Baidu with its own padding). The errors are plain: each provider
// maps them to its provider.Error kinds and messages, since only it knows
// which input was the client's and what a failure means on its platform.

// The failures of DecryptAESCBC, OpenAESCBC and OpenCBC.
var (
	// ErrAESKeySize: the key is not 16, 24 or 32 bytes.
	ErrAESKeySize = errors.New("AES key is not 16, 24 or 32 bytes")
	// ErrIVSize: the IV is not one block.
	ErrIVSize = errors.New("CBC IV is not one block long")
	// ErrCiphertextSize: the ciphertext is empty or not a whole number of
	// blocks. Such data can never be decrypted, whatever the key.
	ErrCiphertextSize = errors.New("ciphertext is not a non-empty whole number of blocks")
	// ErrPadding: the plaintext does not end in strict PKCS#7 padding.
	// With well-formed input this means the key is wrong (or the data was
	// tampered with). Callers must not tell it apart from a plaintext that
	// turns out to be garbage, or they become a padding oracle.
	ErrPadding = errors.New("bad PKCS#7 padding")
)

// DecryptAESCBC decrypts ct with AES-CBC under key (16, 24 or 32 bytes) and
// iv (16 bytes) and returns the plaintext in a new slice, padding
// included: for platforms with a padding of their own (Baidu pads to 32
// bytes). ct is not changed.
func DecryptAESCBC(key, iv, ct []byte) ([]byte, error) {
	block, err := newAES(key)
	if err != nil {
		return nil, err
	}
	return decryptCBC(block, iv, ct)
}

// OpenAESCBC decrypts ct with AES-CBC under key (16, 24 or 32 bytes) and iv
// (16 bytes), checks and strips strict PKCS#7 padding in constant time (see
// UnpadPKCS7) and returns the plaintext in a new slice. This is how WeChat,
// Douyin and Kuaishou seal user data (AES-128, key = the session_key).
func OpenAESCBC(key, iv, ct []byte) ([]byte, error) {
	block, err := newAES(key)
	if err != nil {
		return nil, err
	}
	return OpenCBC(block, iv, ct)
}

// OpenCBC is OpenAESCBC with a block cipher the caller keeps (Alipay's app
// AES key is parsed once); the padding is to block's block size.
func OpenCBC(block cipher.Block, iv, ct []byte) ([]byte, error) {
	plain, err := decryptCBC(block, iv, ct)
	if err != nil {
		return nil, err
	}
	n, ok := UnpadPKCS7(plain, block.BlockSize())
	if !ok {
		return nil, ErrPadding
	}
	return plain[:n], nil
}

func newAES(key []byte) (cipher.Block, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, ErrAESKeySize // aes.NewCipher's only failure
	}
	return block, nil
}

func decryptCBC(block cipher.Block, iv, ct []byte) ([]byte, error) {
	bs := block.BlockSize()
	if len(iv) != bs {
		return nil, ErrIVSize
	}
	if len(ct) == 0 || len(ct)%bs != 0 {
		return nil, ErrCiphertextSize
	}
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ct)
	return plain, nil
}

// UnpadPKCS7 checks strict PKCS#7 padding of b to blockSize (1..255): the
// last byte p is 1..blockSize and the last p bytes all equal p. It returns
// the length without the padding. b must be a non-empty whole number of
// blocks, else it is false. The check runs in time independent of the
// padding's value (it always looks at the whole last block), so that its
// result cannot be timed.
func UnpadPKCS7(b []byte, blockSize int) (int, bool) {
	if blockSize < 1 || blockSize > 255 || len(b) == 0 || len(b)%blockSize != 0 {
		return 0, false
	}
	last := b[len(b)-1]
	p := int(last)
	// good is 1 while the padding is valid.
	good := subtle.ConstantTimeLessOrEq(1, p) & subtle.ConstantTimeLessOrEq(p, blockSize)
	// Out of range, check one byte instead (the answer is "bad" anyway) so
	// the comparisons below stay within their non-negative domain.
	p = subtle.ConstantTimeSelect(good, p, 1)
	tail := b[len(b)-blockSize:]
	for i := range blockSize {
		// Byte i of the last block is padding when i >= blockSize-p.
		inPad := subtle.ConstantTimeLessOrEq(blockSize-p, i)
		same := subtle.ConstantTimeByteEq(tail[i], last)
		// inPad implies same.
		good &= subtle.ConstantTimeSelect(inPad, same, 1)
	}
	if good != 1 {
		return 0, false
	}
	return len(b) - p, true
}
