// Package risctransmitter is a fake Cross-Account Protection transmitter: it plays Google's
// part in pushing security events. It has its own RSA keys, serves a RISC configuration
// document and a JWKS like https://accounts.google.com/.well-known/risc-configuration, and
// signs and posts Security Event Tokens, well-formed or hostile.
package risctransmitter

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/grantkeeper/grantkeeper/internal/risc"
)

// Transmitter is a fake Google security-event transmitter.
type Transmitter struct {
	mu      sync.Mutex
	key     *rsa.PrivateKey
	kid     string
	issuer  string            // fixed issuer (NewWith), else the server's URL
	old     []jose.JSONWebKey // keys still published after a rotation (none by default)
	srv     *httptest.Server
	fetches int
	HTTP    *http.Client
}

// New starts a transmitter with a fresh key; Close stops it.
func New() (*Transmitter, error) { return NewWith(Fixed{}) }

// Fixed makes a transmitter's tokens the same in every process (a fuzz test's workers
// check the tokens its seeds were signed with): a given key, kid and issuer.
type Fixed struct {
	Key    *rsa.PrivateKey
	KeyID  string
	Issuer string
}

// NewWith starts a transmitter with what f fixes (a fresh key and kid, and the server's
// URL as issuer, for what it leaves zero).
func NewWith(f Fixed) (*Transmitter, error) {
	t := &Transmitter{HTTP: &http.Client{Timeout: 10 * time.Second}, issuer: f.Issuer}
	if err := t.Rotate(); err != nil {
		return nil, err
	}
	if f.Key != nil {
		t.key = f.Key
	}
	if f.KeyID != "" {
		t.kid = f.KeyID
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/risc-configuration", func(w http.ResponseWriter, r *http.Request) {
		t.mu.Lock()
		t.fetches++
		t.mu.Unlock()
		writeJSON(w, map[string]any{
			"issuer": t.Issuer(), "jwks_uri": t.srv.URL + "/jwks",
			"delivery_methods_supported": []string{"https://schemas.openid.net/secevent/risc/delivery-method/push"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		t.mu.Lock()
		keys := append([]jose.JSONWebKey{{Key: &t.key.PublicKey, KeyID: t.kid, Algorithm: "RS256", Use: "sig"}}, t.old...)
		t.mu.Unlock()
		writeJSON(w, jose.JSONWebKeySet{Keys: keys})
	})
	t.srv = httptest.NewServer(mux)
	return t, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Close stops the server.
func (t *Transmitter) Close() { t.srv.Close() }

// ConfigurationURL is the configuration document's URL (the manager's --risc-configuration-url).
func (t *Transmitter) ConfigurationURL() string {
	return t.srv.URL + "/.well-known/risc-configuration"
}

// Issuer is the configuration's issuer, with a trailing slash like Google's.
func (t *Transmitter) Issuer() string {
	if t.issuer != "" {
		return t.issuer
	}
	return t.srv.URL + "/"
}

// Fetches counts fetches of the configuration document.
func (t *Transmitter) Fetches() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fetches
}

// Rotate replaces the signing key with a new one under a new kid; the old key is no longer
// published.
func (t *Transmitter) Rotate() error {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.key, t.kid = k, hex.EncodeToString(b)
	return nil
}

// KeyID is the current kid.
func (t *Transmitter) KeyID() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.kid
}

// PublicKey is the current public key.
func (t *Transmitter) PublicKey() *rsa.PublicKey {
	t.mu.Lock()
	defer t.mu.Unlock()
	return &t.key.PublicKey
}

// Event is one event to send: Type and Body (the event object, subject included).
type Event struct {
	Type string
	Body map[string]any
}

// AccountEvent is an event about an account (subject iss-sub), with extra fields (reason, ...).
func (t *Transmitter) AccountEvent(typ, sub string, extra map[string]any) Event {
	body := map[string]any{"subject": map[string]any{"subject_type": "iss-sub", "iss": "https://accounts.google.com/", "sub": sub}}
	for k, v := range extra {
		body[k] = v
	}
	return Event{Type: typ, Body: body}
}

// TokenRevoked is a token-revoked event naming refreshToken by alg (risc.AlgPrefix or risc.AlgHashSHA512).
func TokenRevoked(refreshToken, alg string) Event {
	id := refreshToken
	if alg == risc.AlgPrefix {
		id = refreshToken[:risc.PrefixLen]
	} else {
		id = risc.HashIdentifier(refreshToken)
	}
	return Event{Type: risc.TokenRevoked, Body: map[string]any{"subject": map[string]any{
		"subject_type": "oauth_token", "token_type": "refresh_token", "token_identifier_alg": alg, "token": id}}}
}

// Options vary a token: zero values make a valid one.
type Options struct {
	Audience string
	Issuer   string // default: the configuration's issuer
	JTI      string // default: random
	IssuedAt time.Time
	KeyID    string          // default: the current kid
	Key      *rsa.PrivateKey // default: the current key
}

// Sign makes a Security Event Token carrying evs, RS256-signed with the current key.
func (t *Transmitter) Sign(o Options, evs ...Event) string {
	t.mu.Lock()
	key, kid := t.key, t.kid
	t.mu.Unlock()
	if o.Key != nil {
		key = o.Key
	}
	if o.KeyID != "" {
		kid = o.KeyID
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, t.claims(o, evs))
	tok.Header["kid"] = kid
	raw, err := tok.SignedString(key)
	if err != nil {
		panic(err)
	}
	return raw
}

func (t *Transmitter) claims(o Options, evs []Event) jwt.MapClaims {
	if o.Issuer == "" {
		o.Issuer = t.Issuer()
	}
	if o.JTI == "" {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		o.JTI = hex.EncodeToString(b)
	}
	if o.IssuedAt.IsZero() {
		o.IssuedAt = time.Now()
	}
	events := map[string]any{}
	for _, e := range evs {
		events[e.Type] = e.Body
	}
	return jwt.MapClaims{"iss": o.Issuer, "aud": o.Audience, "iat": o.IssuedAt.Unix(), "jti": o.JTI, "events": events}
}

// SignNone makes an unsigned token (alg none) carrying evs.
func (t *Transmitter) SignNone(o Options, evs ...Event) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodNone, t.claims(o, evs))
	tok.Header["kid"] = t.KeyID()
	raw, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		panic(err)
	}
	return raw
}

// SignHS256WithPublicKey is the algorithm-confusion attack: HS256 keyed with the public key
// in PEM form, as a verifier that trusts the header's alg would check it.
func (t *Transmitter) SignHS256WithPublicKey(o Options, evs ...Event) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, t.claims(o, evs))
	tok.Header["kid"] = t.KeyID()
	der, err := x509.MarshalPKIXPublicKey(t.PublicKey())
	if err != nil {
		panic(err)
	}
	raw, err := tok.SignedString(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		panic(err)
	}
	return raw
}

// Post delivers raw to the receiver's URL as Google does and returns the HTTP status.
func (t *Transmitter) Post(url, raw string) (int, error) {
	return t.PostBody(url, []byte(raw))
}

// PostBody delivers an arbitrary body.
func (t *Transmitter) PostBody(url string, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/secevent+jwt")
	req.Header.Set("Accept", "application/json")
	resp, err := t.HTTP.Do(req)
	if err != nil {
		return 0, fmt.Errorf("posting a security event: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}
