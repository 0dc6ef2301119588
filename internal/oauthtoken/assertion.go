package oauthtoken

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ClientAssertionType is RFC 7523's client_assertion_type for a JWT.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime: long enough for clock skew and a slow request, short enough that a
// leaked assertion is soon useless (providers refuse a reused jti meanwhile).
const assertionLifetime = 5 * time.Minute

// assertionBackdate dates iat back a little, as for Google's service-account assertions: a
// provider refuses an assertion issued in its future, and our clock may run ahead.
const assertionBackdate = 10 * time.Second

// SigningKey is a private_key_jwt key: the signer, its JWS algorithm and the kid the
// provider knows its public half by.
type SigningKey struct {
	Signer crypto.Signer
	Method jwt.SigningMethod
	KeyID  string
}

// ParsePrivateKey reads a PEM private key (PKCS #8, PKCS #1 or SEC 1): RSA of at least 2048
// bits signs RS256, ECDSA P-256/P-384/P-521 ES256/ES384/ES512. Errors never hold key material.
func ParsePrivateKey(pemBytes []byte, keyID string) (*SigningKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("no PEM block: the key must be PEM encoded (-----BEGIN PRIVATE KEY-----)")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("the %s PEM block does not parse", block.Type)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("the RSA key has %d bits; providers require at least 2048", k.N.BitLen())
		}
		return &SigningKey{Signer: k, Method: jwt.SigningMethodRS256, KeyID: keyID}, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return &SigningKey{Signer: k, Method: jwt.SigningMethodES256, KeyID: keyID}, nil
		case elliptic.P384():
			return &SigningKey{Signer: k, Method: jwt.SigningMethodES384, KeyID: keyID}, nil
		case elliptic.P521():
			return &SigningKey{Signer: k, Method: jwt.SigningMethodES512, KeyID: keyID}, nil
		}
		return nil, fmt.Errorf("ECDSA curve %s is not supported (P-256, P-384 or P-521)", k.Curve.Params().Name)
	}
	return nil, fmt.Errorf("a %T key is not supported for private_key_jwt (RSA or ECDSA)", key)
}

// Assertion is the client assertion of RFC 7523 section 3 / OpenID Connect Core 9: iss and
// sub the client id, aud the token endpoint URL, a random jti, iat and exp from now (the
// injected clock). x/oauth2 has no client-assertion support (its jwt package is the
// jwt-bearer grant, dated by the wall clock), hence golang-jwt here.
func (k *SigningKey) Assertion(clientID, audience string, now time.Time) (string, error) {
	iat := now.Add(-assertionBackdate)
	claims := jwt.RegisteredClaims{
		Issuer:    clientID,
		Subject:   clientID,
		Audience:  jwt.ClaimStrings{audience},
		ID:        rand.Text(),
		IssuedAt:  jwt.NewNumericDate(iat),
		NotBefore: jwt.NewNumericDate(iat),
		ExpiresAt: jwt.NewNumericDate(now.Add(assertionLifetime)),
	}
	t := jwt.NewWithClaims(k.Method, claims)
	if k.KeyID != "" {
		t.Header["kid"] = k.KeyID
	}
	s, err := t.SignedString(k.Signer)
	if err != nil {
		return "", fmt.Errorf("signing the client assertion: %w", err)
	}
	return s, nil
}
