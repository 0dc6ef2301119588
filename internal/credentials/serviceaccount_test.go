package credentials

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"strings"
	"sync"
	"testing"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// testKey is a fixed key made for these tests only (generating one per fuzz worker is slow).
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	b, err := os.ReadFile("testdata/test-only-rsa-key.pem")
	if err != nil {
		panic(err)
	}
	k, why := parseRSAKey(b)
	if why != "" {
		panic(why)
	}
	return k
})

func pkcs8PEM(k any) string {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// keyJSON is a key file as the console downloads it, with fields changed by edit.
func keyJSON(edit func(map[string]any)) []byte {
	m := map[string]any{
		"type":           "service_account",
		"project_id":     "analytics-prod",
		"private_key_id": "0123456789abcdef0123456789abcdef01234567",
		"private_key":    pkcs8PEM(testKey()),
		"client_email":   "reporter@analytics-prod.iam.gserviceaccount.com",
		"client_id":      "104000000000000000001",
		"token_uri":      "https://oauth2.googleapis.com/token",
	}
	if edit != nil {
		edit(m)
	}
	b, _ := json.Marshal(m)
	return b
}

func TestParseServiceAccountKey(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testKey())}))
	for _, tc := range []struct {
		name   string
		data   map[string][]byte
		reason string
		says   string
	}{
		{"as downloaded", map[string][]byte{"credentials.json": keyJSON(nil)}, "", ""},
		{"PKCS #1 key", map[string][]byte{"credentials.json": keyJSON(func(m map[string]any) { m["private_key"] = pkcs1 })}, "", ""},
		{"key absent", map[string][]byte{"other": keyJSON(nil)}, oauthv1alpha1.ReasonSecretKeyMissing, `"credentials.json"`},
		{"empty", map[string][]byte{"credentials.json": []byte(" \n")}, oauthv1alpha1.ReasonSecretKeyMissing, "absent or empty"},
		{"not JSON", map[string][]byte{"credentials.json": []byte(pkcs8PEM(testKey()))}, oauthv1alpha1.ReasonInvalidServiceAccountKey, "is not valid JSON"},
		{"authorized_user JSON", map[string][]byte{"credentials.json": keyJSON(func(m map[string]any) { m["type"] = "authorized_user" })}, oauthv1alpha1.ReasonInvalidServiceAccountKey, `type "authorized_user"`},
		{"no type", map[string][]byte{"credentials.json": keyJSON(func(m map[string]any) { delete(m, "type") })}, oauthv1alpha1.ReasonInvalidServiceAccountKey, `no "type"`},
		{"no client_email", map[string][]byte{"credentials.json": keyJSON(func(m map[string]any) { delete(m, "client_email") })}, oauthv1alpha1.ReasonInvalidServiceAccountKey, "lacks client_email"},
		{"client_email not an email", map[string][]byte{"credentials.json": keyJSON(func(m map[string]any) { m["client_email"] = "reporter" })}, oauthv1alpha1.ReasonInvalidServiceAccountKey, "client_email"},
		{"no private_key", map[string][]byte{"credentials.json": keyJSON(func(m map[string]any) { delete(m, "private_key") })}, oauthv1alpha1.ReasonInvalidServiceAccountKey, "lacks private_key"},
		{"private_key not PEM", map[string][]byte{"credentials.json": keyJSON(func(m map[string]any) { m["private_key"] = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" })}, oauthv1alpha1.ReasonInvalidServiceAccountKey, "not a PEM block"},
		{"private_key truncated", map[string][]byte{"credentials.json": keyJSON(func(m map[string]any) {
			p := pkcs8PEM(testKey())
			m["private_key"] = p[:len(p)/2] + "\n-----END PRIVATE KEY-----\n"
		})}, oauthv1alpha1.ReasonInvalidServiceAccountKey, "cannot be parsed"},
		{"EC key", map[string][]byte{"credentials.json": keyJSON(func(m map[string]any) { m["private_key"] = pkcs8PEM(ec) })}, oauthv1alpha1.ReasonInvalidServiceAccountKey, "not an RSA key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, p := ParseServiceAccountKey("analytics-sa-key", tc.data, "credentials.json")
			if tc.reason == "" {
				if p != nil {
					t.Fatalf("unexpected problem: %v", p)
				}
				if k.Email != "reporter@analytics-prod.iam.gserviceaccount.com" || k.PrivateKeyID == "" || !k.PrivateKey.Equal(testKey()) {
					t.Fatalf("parsed %q %q, key equal: %v", k.Email, k.PrivateKeyID, k.PrivateKey != nil && k.PrivateKey.Equal(testKey()))
				}
				return
			}
			if p == nil || p.Reason != tc.reason {
				t.Fatalf("got problem %+v, want reason %s", p, tc.reason)
			}
			if !strings.Contains(p.Message, `"analytics-sa-key"`) || !strings.Contains(p.Message, tc.says) {
				t.Errorf("message %q should name the Secret and say %q", p.Message, tc.says)
			}
			if strings.Contains(p.Message, "PRIVATE KEY") || strings.Contains(p.Message, "MIIE") {
				t.Errorf("message quotes key material: %q", p.Message)
			}
		})
	}
}
