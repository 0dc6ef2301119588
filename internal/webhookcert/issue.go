package webhookcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// CA is the Secret key of the CA certificate (the caBundle) and of its key.
const (
	CAName    = "ca.crt"
	CAKeyName = "ca.key"
)

// Validity of what Issue writes, and how long before expiry Renew replaces it.
const (
	CALifetime   = 10 * 365 * 24 * time.Hour
	CertLifetime = 365 * 24 * time.Hour
	RenewBefore  = 90 * 24 * time.Hour
)

// Pair is the Secret's data: a CA and the serving certificate it signed.
type Pair map[string][]byte

// Check says what of p must be issued again at now for dnsNames: the CA (and so the
// certificate) when it is missing, unreadable or expires within RenewBefore; the certificate
// alone when it is missing, not the CA's, not for every name, or expires within RenewBefore.
func Check(p Pair, dnsNames []string, now time.Time) (ca, cert bool) {
	caCert, _, err := parseCA(p)
	if err != nil || now.Add(RenewBefore).After(caCert.NotAfter) {
		return true, true
	}
	if _, err := tls.X509KeyPair(p[CertName], p[KeyName]); err != nil {
		return false, true
	}
	leaf, err := parseCert(p[CertName])
	if err != nil || now.Add(RenewBefore).After(leaf.NotAfter) {
		return false, true
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	for _, n := range dnsNames {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: pool, CurrentTime: now}); err != nil {
			return false, true
		}
	}
	return false, false
}

// Issue returns p with what Check asks for issued again (a new CA when ca, a certificate
// signed by the CA in p otherwise).
func Issue(p Pair, ca bool, caName string, dnsNames []string, now time.Time) (Pair, error) {
	out := Pair{}
	for k, v := range p {
		out[k] = v
	}
	if ca {
		crt, key, err := newCert(&x509.Certificate{
			Subject:               pkix.Name{CommonName: caName, Organization: []string{"grantkeeper"}},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(CALifetime),
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}, nil, nil)
		if err != nil {
			return nil, err
		}
		out[CAName], out[CAKeyName] = crt, key
	}
	caCert, caKey, err := parseCA(out)
	if err != nil {
		return nil, err
	}
	crt, key, err := newCert(&x509.Certificate{
		Subject:     pkix.Name{CommonName: dnsNames[0]},
		DNSNames:    dnsNames,
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(CertLifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, caCert, caKey)
	if err != nil {
		return nil, err
	}
	out[CertName], out[KeyName] = crt, key
	return out, nil
}

// newCert signs tmpl with parent's key (itself when parent is nil) and returns both PEMs.
func newCert(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) ([]byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128)); err != nil {
		return nil, nil, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

func parseCert(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// parseCA reads p's CA certificate and its key (an EC key, as Issue writes; any other is
// replaced by a new CA).
func parseCA(p Pair) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	crt, err := parseCert(p[CAName])
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", CAName, err)
	}
	block, _ := pem.Decode(p[CAKeyName])
	if block == nil {
		return nil, nil, fmt.Errorf("%s: no PEM key", CAKeyName)
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", CAKeyName, err)
	}
	if !crt.IsCA || !key.PublicKey.Equal(crt.PublicKey) {
		return nil, nil, fmt.Errorf("%s does not match %s", CAKeyName, CAName)
	}
	return crt, key, nil
}
