package account

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// signingMethod is the only algorithm access tokens are signed or accepted with. Pinning it is what
// makes "alg: none" and HS256-with-the-public-key forgeries fail.
var signingMethod = jwt.SigningMethodEdDSA

// clockSkew is how far replicas' clocks may disagree when checking exp, nbf and iat.
const clockSkew = 30 * time.Second

// Keys are the Ed25519 keys access tokens are signed and verified with. The first key signs; every
// key verifies, by its key id (kid), so keys rotate without logging anyone out: put a new key first
// and keep the old one below it until the tokens it signed have expired.
type Keys struct {
	signing   ed25519.PrivateKey
	signingID string
	verify    map[string]ed25519.PublicKey
}

// KeyID returns the key id of a public key: the first 16 hex digits of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// GenerateKeyPEM returns a new Ed25519 private key as a PKCS #8 PEM block.
func GenerateKeyPEM() ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// LoadKeysFile reads keys from a PEM file (see ParseKeys).
func LoadKeysFile(path string) (*Keys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read JWT key file: %w", err)
	}
	return ParseKeys(data)
}

// ParseKeys reads PEM blocks: the first must be an Ed25519 "PRIVATE KEY" (PKCS #8) and signs; the
// ones after it may be private or "PUBLIC KEY" blocks and only verify.
func ParseKeys(data []byte) (*Keys, error) {
	k := &Keys{verify: map[string]ed25519.PublicKey{}}
	for n := 0; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var pub ed25519.PublicKey
		switch block.Type {
		case "PRIVATE KEY":
			key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d: %w", n+1, err)
			}
			priv, ok := key.(ed25519.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("PEM block %d: not an Ed25519 key", n+1)
			}
			pub = priv.Public().(ed25519.PublicKey)
			if k.signing == nil {
				k.signing, k.signingID = priv, KeyID(pub)
			}
		case "PUBLIC KEY":
			if n == 0 {
				return nil, errors.New("the first PEM block must be the signing PRIVATE KEY")
			}
			key, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d: %w", n+1, err)
			}
			var ok bool
			if pub, ok = key.(ed25519.PublicKey); !ok {
				return nil, fmt.Errorf("PEM block %d: not an Ed25519 key", n+1)
			}
		default:
			return nil, fmt.Errorf("PEM block %d: unexpected type %q", n+1, block.Type)
		}
		k.verify[KeyID(pub)] = pub
	}
	if k.signing == nil {
		return nil, errors.New("no Ed25519 PRIVATE KEY found")
	}
	return k, nil
}

// TokenConfig says who issues access tokens, for whom, and for how long.
type TokenConfig struct {
	Issuer   string
	Audience string
	TTL      time.Duration
}

// AccessClaims are the claims of an access token. The subject is the user id. Role and branch are
// there for clients to read; the server takes them from the database on every request.
type AccessClaims struct {
	jwt.RegisteredClaims
	SessionID uuid.UUID `json:"sid"`
	DeviceID  uuid.UUID `json:"did"`
	Role      string    `json:"role"`
	BranchID  uuid.UUID `json:"bid,omitzero"`
}

// signAccessToken returns a signed access token for the identity, valid from now for cfg.TTL.
func (k *Keys) signAccessToken(cfg TokenConfig, id *fieldsync.Identity, now time.Time) (string, error) {
	claims := AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    cfg.Issuer,
			Subject:   id.UserID.String(),
			Audience:  jwt.ClaimStrings{cfg.Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(cfg.TTL)),
			ID:        uuid.NewString(),
		},
		SessionID: id.SessionID,
		DeviceID:  id.DeviceID,
		Role:      id.Role,
		BranchID:  id.BranchID,
	}
	tok := jwt.NewWithClaims(signingMethod, claims)
	tok.Header["kid"] = k.signingID
	s, err := tok.SignedString(crypto.Signer(k.signing))
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return s, nil
}

// parseAccessToken verifies signature, algorithm, key id, issuer, audience and times, and returns
// the claims. Failures are *fieldsync.Error with code token_expired or token_invalid.
func (k *Keys) parseAccessToken(cfg TokenConfig, raw string, now time.Time) (*AccessClaims, error) {
	var claims AccessClaims
	_, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		pub, ok := k.verify[kid]
		if !ok {
			return nil, fmt.Errorf("unknown key id %q", kid)
		}
		return pub, nil
	},
		jwt.WithValidMethods([]string{signingMethod.Alg()}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(clockSkew),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, fieldsync.Errorf(fieldsync.EUNAUTHORIZED, "token_expired", "The access token has expired; refresh it.")
	default:
		return nil, fieldsync.Errorf(fieldsync.EUNAUTHORIZED, "token_invalid", "The access token is not valid.")
	}
	if claims.SessionID == uuid.Nil || claims.DeviceID == uuid.Nil {
		return nil, fieldsync.Errorf(fieldsync.EUNAUTHORIZED, "token_invalid", "The access token is not valid.")
	}
	return &claims, nil
}
