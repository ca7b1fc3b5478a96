// Package atrest encrypts what careline stores about patients (message bodies, media, phone
// numbers) with AES-256-GCM. Each sealed value names the key that sealed it, so keys can be
// rotated: the active key seals, every configured key opens.
package atrest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// KeySize is the length of every key: AES-256.
const KeySize = 32

const version = 1

var (
	ErrUnknownKey = errors.New("atrest: sealed with a key that is not configured")
	ErrCorrupt    = errors.New("atrest: sealed value is corrupt or was moved from another record")
)

// Keyring holds the keys by id.
type Keyring struct {
	active string
	aeads  map[string]cipher.AEAD
}

// NewKeyring builds a keyring; active must be one of keys.
func NewKeyring(active string, keys map[string][]byte) (*Keyring, error) {
	if _, ok := keys[active]; !ok {
		return nil, fmt.Errorf("atrest: active key %q is not among the configured keys", active)
	}
	kr := &Keyring{active: active, aeads: make(map[string]cipher.AEAD, len(keys))}
	for id, key := range keys {
		if id == "" || len(id) > 255 {
			return nil, fmt.Errorf("atrest: key id %q must be 1 to 255 bytes", id)
		}
		if len(key) != KeySize {
			return nil, fmt.Errorf("atrest: key %q is %d bytes, want %d", id, len(key), KeySize)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		kr.aeads[id] = aead
	}
	return kr, nil
}

// ParseKey decodes a key written as standard or URL-safe base64.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(s); err == nil && len(key) == KeySize {
			return key, nil
		}
	}
	return nil, fmt.Errorf("atrest: a key must be %d random bytes in base64 (e.g. `openssl rand -base64 32`)", KeySize)
}

// NewKey returns a fresh random key in base64, for generated configs.
func NewKey() string {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(key)
}

// ActiveKeyID is the id of the key new values are sealed with.
func (kr *Keyring) ActiveKeyID() string { return kr.active }

// Seal encrypts plaintext. context binds the value to where it is stored (e.g. "message:ID"),
// so a sealed value copied into another row does not open there.
//
// Layout: version(1) | len(keyID)(1) | keyID | nonce(12) | ciphertext+tag.
func (kr *Keyring) Seal(plaintext []byte, context string) []byte {
	aead := kr.aeads[kr.active]
	out := make([]byte, 0, 2+len(kr.active)+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out = append(out, version, byte(len(kr.active)))
	out = append(out, kr.active...)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, kr.additionalData(out[:2+len(kr.active)], context))
}

// Open decrypts a value sealed by Seal with the same context.
func (kr *Keyring) Open(sealed []byte, context string) ([]byte, error) {
	if len(sealed) < 2 || sealed[0] != version {
		return nil, ErrCorrupt
	}
	idLen := int(sealed[1])
	if len(sealed) < 2+idLen {
		return nil, ErrCorrupt
	}
	header, rest := sealed[:2+idLen], sealed[2+idLen:]
	aead, ok := kr.aeads[string(header[2:])]
	if !ok {
		return nil, fmt.Errorf("%w (key id %q)", ErrUnknownKey, header[2:])
	}
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrCorrupt
	}
	nonce, ciphertext := rest[:aead.NonceSize()], rest[aead.NonceSize():]
	plaintext, err := aead.Open(nil, nonce, ciphertext, kr.additionalData(header, context))
	if err != nil {
		return nil, ErrCorrupt
	}
	return plaintext, nil
}

// Context names where a value is stored and who owns it, e.g. Context("message-body",
// patientID, messageID): a value sealed for one owner's row does not open in another's, even
// when a database writer moves it there. Each part is length-prefixed, so no choice of ids
// makes two different lists read the same.
func Context(purpose string, parts ...string) string {
	var b strings.Builder
	b.WriteString(purpose)
	for _, p := range parts {
		b.WriteString("|")
		b.WriteString(strconv.Itoa(len(p)))
		b.WriteString(":")
		b.WriteString(p)
	}
	return b.String()
}

// SealString and OpenString are Seal and Open for text.
func (kr *Keyring) SealString(plaintext, context string) []byte {
	return kr.Seal([]byte(plaintext), context)
}

func (kr *Keyring) OpenString(sealed []byte, context string) (string, error) {
	plaintext, err := kr.Open(sealed, context)
	return string(plaintext), err
}

func (kr *Keyring) additionalData(header []byte, context string) []byte {
	ad := make([]byte, 0, len(header)+len(context))
	return append(append(ad, header...), context...)
}

// KeyID is the id of the key that sealed a value ("" if the value is not a sealed value).
func KeyID(sealed []byte) string {
	if len(sealed) < 2 || sealed[0] != version || len(sealed) < 2+int(sealed[1]) {
		return ""
	}
	return string(sealed[2 : 2+int(sealed[1])])
}

// Reseal returns sealed under the active key, opening it with whichever key sealed it;
// changed is false (and sealed is returned as is) when the active key already did. After
// every stored value is resealed (`careline storage reseal`), the old keys can go.
func (kr *Keyring) Reseal(sealed []byte, context string) (out []byte, changed bool, err error) {
	if KeyID(sealed) == kr.active {
		return sealed, false, nil
	}
	plaintext, err := kr.Open(sealed, context)
	if err != nil {
		return nil, false, err
	}
	return kr.Seal(plaintext, context), true, nil
}
