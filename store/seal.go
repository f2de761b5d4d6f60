package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
)

// sealer encrypts secrets at rest with AES-256-GCM under the master key.
// The associated data binds a ciphertext to the record it belongs to, so a
// sealed seed copied into another factor does not open.
type sealer struct {
	aead cipher.AEAD
}

const sealVersion = 1

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, errors.New("store: master key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, opError(err, "master key")
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, opError(err, "master key")
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(plain []byte, ad string) ([]byte, error) {
	out := make([]byte, 1, 1+s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	out[0] = sealVersion
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, opError(err, "nonce")
	}
	out = append(out, nonce...)
	return s.aead.Seal(out, nonce, plain, []byte(ad)), nil
}

// errSealed never says more than that a secret did not open: a wrong master
// key is the usual cause.
var errSealed = errors.New("store: cannot decrypt a stored secret (wrong master key?)")

func (s *sealer) open(sealed []byte, ad string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n || sealed[0] != sealVersion {
		return nil, errSealed
	}
	plain, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(ad))
	if err != nil {
		return nil, errSealed
	}
	return plain, nil
}
