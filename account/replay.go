package account

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// A refresh whose answer was lost (docs/protocol.md §2) is answered again from what the used
// token's row keeps: the refresh token issued for it, sealed with a key derived from the used
// token. The server stores only the used token's hash, so the seal opens only for whoever presents
// that token again: a copy of the database alone gives no refresh token away.

// replayKeyInfo binds the derived key to this one use.
const replayKeyInfo = "fieldsync refresh replay v1"

// replayAEAD returns the AES-256-GCM cipher keyed by HKDF-SHA-256 of the used refresh token.
func replayAEAD(usedToken string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, []byte(usedToken), nil, replayKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("derive replay key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("replay cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// sealSuccessor seals successor (the refresh token issued for usedToken) so that only usedToken
// opens it. The used token's hash is the additional data: a seal copied to another row does not
// open.
func sealSuccessor(usedToken, successor string) ([]byte, error) {
	aead, err := replayAEAD(usedToken)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("replay nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, []byte(successor), hashToken(usedToken)), nil
}

// openSuccessor returns the refresh token sealed for usedToken.
func openSuccessor(usedToken string, sealed []byte) (string, error) {
	aead, err := replayAEAD(usedToken)
	if err != nil {
		return "", err
	}
	if len(sealed) < aead.NonceSize() {
		return "", errors.New("sealed successor too short")
	}
	nonce, box := sealed[:aead.NonceSize()], sealed[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, box, hashToken(usedToken))
	if err != nil {
		return "", fmt.Errorf("open sealed successor: %w", err)
	}
	return string(plain), nil
}
