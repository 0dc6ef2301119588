package credentials

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// ServiceAccountKey is a service account's JSON key as Google Cloud downloads it, parsed.
// The key's token_uri is not kept: assertions go to the configured token endpoint only, so
// a key file cannot send a signed assertion elsewhere.
type ServiceAccountKey struct {
	Email        string
	PrivateKeyID string
	PrivateKey   *rsa.PrivateKey
}

// ParseServiceAccountKey reads data[key] of the Secret named secret as a service-account
// key JSON ({"type": "service_account", "client_email", "private_key", "private_key_id", ...}).
// Problems name the Secret, the key and the field, never a value of the key.
func ParseServiceAccountKey(secret string, data map[string][]byte, key string) (ServiceAccountKey, *Problem) {
	raw, ok := data[key]
	if !ok || len(strings.TrimSpace(string(raw))) == 0 {
		return ServiceAccountKey{}, missing(secret, key, "the key is absent or empty")
	}
	bad := func(why string) (ServiceAccountKey, *Problem) {
		return ServiceAccountKey{}, &Problem{Reason: oauthv1alpha1.ReasonInvalidServiceAccountKey,
			Message: fmt.Sprintf("Secret %q key %q %s; store the JSON key exactly as downloaded from the Google Cloud console (IAM & Admin > Service Accounts > Keys > Add key > JSON)", secret, key, why)}
	}
	// Exact field names (encoding/json would also match "Client_Email"); errors from
	// encoding/json can quote input, so we use our own words.
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return bad("is not valid JSON")
	}
	field := func(k string) string {
		var v string
		_ = json.Unmarshal(m[k], &v)
		return strings.TrimSpace(v)
	}
	if typ := field("type"); typ != "service_account" {
		if typ == "" {
			return bad(`has no "type" (want "service_account")`)
		}
		return bad(fmt.Sprintf(`has type %q, not "service_account"`, truncate(typ, 32)))
	}
	k := ServiceAccountKey{Email: field("client_email"), PrivateKeyID: field("private_key_id")}
	switch {
	case k.Email == "":
		return bad("lacks client_email")
	case !strings.Contains(k.Email, "@"):
		return bad("has a client_email that is not an email address")
	case field("private_key") == "":
		return bad("lacks private_key")
	}
	pk, why := parseRSAKey([]byte(field("private_key")))
	if why != "" {
		return bad("has a private_key that " + why)
	}
	k.PrivateKey = pk
	return k, nil
}

// parseRSAKey reads a PEM RSA private key in PKCS #8 (what Google issues) or PKCS #1.
// The reason it gives never includes key material.
func parseRSAKey(b []byte) (*rsa.PrivateKey, string) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, "is not a PEM block"
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, "is not an RSA key"
		}
		return rk, ""
	}
	if rk, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return rk, ""
	}
	return nil, "cannot be parsed as an RSA private key (PKCS #8 or PKCS #1)"
}
