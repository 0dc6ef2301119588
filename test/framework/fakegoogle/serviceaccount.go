package fakegoogle

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AssertionSkew is how far in the future a service account's assertion may be issued (iat)
// and still be accepted: clocks differ a little, and Google tolerates that much.
const AssertionSkew = 30 * time.Second

// MaxAssertionLifetime is the longest exp - iat Google accepts.
const MaxAssertionLifetime = time.Hour

// Google's answers to bad assertions, as it words them.
const (
	descBadSignature  = "Invalid JWT Signature."
	descBadTime       = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	descBadAudience   = "Invalid JWT: Failed audience check."
	descBadSubject    = "Invalid email or User ID"
	descNoScope       = "Empty or missing scope not allowed."
	descNoDelegation  = "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."
	descNoAssertion   = "Missing required parameter: assertion"
	serviceAccountSub = "sa:" // access tokens' "refresh" field for service-account tokens
)

type saKey struct {
	email   string
	public  *rsa.PublicKey
	pem     string // the private key, kept for leak checks only
	deleted bool
}

// ServiceAccountKey is a key the fake issued for a service account.
type ServiceAccountKey struct {
	ID string
	// JSON is the key file as the Google Cloud console downloads it.
	JSON []byte
}

func (s *Server) saInitLocked() {
	if s.saKeys == nil {
		s.saKeys = map[string]*saKey{}
		s.delegation = map[[2]string][]string{}
		s.users = map[string]bool{}
		s.saRequests = map[string]int{}
	}
}

// NewServiceAccountKey creates a key for the service account email (created on first use)
// and returns it as the console's JSON download; the fake keeps only the public half
// (and the private PEM for leak checks).
func (s *Server) NewServiceAccountKey(email string) ServiceAccountKey {
	pk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(pk)
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	id := randomString(40)
	js, _ := json.MarshalIndent(map[string]string{
		"type":                        "service_account",
		"project_id":                  "fake-project",
		"private_key_id":              id,
		"private_key":                 pemText,
		"client_email":                email,
		"client_id":                   "1" + strings.Repeat("0", 19),
		"auth_uri":                    s.AuthURL(),
		"token_uri":                   s.TokenURL(),
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"universe_domain":             "googleapis.com",
	}, "", "  ")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saInitLocked()
	s.saKeys[id] = &saKey{email: email, public: &pk.PublicKey, pem: pemText}
	return ServiceAccountKey{ID: id, JSON: js}
}

// DeleteServiceAccountKey deletes a key, as in the console: assertions it signs are refused
// with invalid_grant "Invalid JWT Signature.".
func (s *Server) DeleteServiceAccountKey(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.saKeys[id]; k != nil {
		k.deleted = true
	}
}

// AddUser makes email a user of the Workspace domain, one a service account may act as
// once AllowDelegation says so.
func (s *Server) AddUser(email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saInitLocked()
	s.users[email] = true
}

// AllowDelegation lets the service account act as user (added as a user) for these scopes,
// as a Workspace admin does under Security > API controls > Domain-wide delegation
// (Google grants it per client for scopes; the fake records it per user, which tests need).
func (s *Server) AllowDelegation(serviceAccount, user string, scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saInitLocked()
	s.users[user] = true
	s.delegation[[2]string{serviceAccount, user}] = scopes
}

// ServiceAccountRequests counts the assertions a service account presented (valid or not).
func (s *Server) ServiceAccountRequests(email string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saRequests[email]
}

// PrivateKeys lists the PEM text of every private key the fake issued, for leak checks.
func (s *Server) PrivateKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, k := range s.saKeys {
		out = append(out, k.pem)
	}
	return out
}

// jwtGrant answers a jwt-bearer grant as Google does: the signature against the public key
// registered for the header's kid, aud, the iat/exp window, scope, and delegation.
func (s *Server) jwtGrant(w http.ResponseWriter, r *http.Request) {
	s.saInitLocked()
	raw := r.PostForm.Get("assertion")
	if raw == "" {
		oauthError(w, 400, "invalid_request", descNoAssertion)
		return
	}
	var key *saKey
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		key = s.saKeys[kid]
		if key == nil || key.deleted {
			return nil, jwt.ErrTokenUnverifiable
		}
		return key.public, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	iss, _ := claims["iss"].(string)
	if iss != "" {
		s.saRequests[iss]++
	}
	if err != nil || key == nil || key.email != iss {
		oauthError(w, 400, "invalid_grant", descBadSignature)
		return
	}
	if aud, _ := claims["aud"].(string); aud != s.TokenURL() {
		oauthError(w, 400, "invalid_grant", descBadAudience)
		return
	}
	iat, okI := claims["iat"].(float64)
	exp, okE := claims["exp"].(float64)
	now := s.now()
	issued, expires := time.Unix(int64(iat), 0), time.Unix(int64(exp), 0)
	if !okI || !okE || issued.After(now.Add(AssertionSkew)) || !expires.After(now) ||
		!expires.After(issued) || expires.Sub(issued) > MaxAssertionLifetime {
		oauthError(w, 400, "invalid_grant", descBadTime)
		return
	}
	scope, _ := claims["scope"].(string)
	scopes := strings.Fields(scope)
	if len(scopes) == 0 {
		oauthError(w, 400, "invalid_scope", descNoScope)
		return
	}
	actor := iss
	if sub, _ := claims["sub"].(string); sub != "" {
		if !s.users[sub] {
			oauthError(w, 400, "invalid_grant", descBadSubject)
			return
		}
		allowed := s.delegation[[2]string{iss, sub}]
		for _, sc := range scopes {
			if !slices.Contains(allowed, sc) {
				oauthError(w, 401, "unauthorized_client", descNoDelegation)
				return
			}
		}
		actor = sub
	}
	resp := s.issueLocked(serviceAccountSub+actor, iss, scopes)
	// Google lists no scopes in a service account's token response, and never a refresh token.
	delete(resp, "scope")
	delete(resp, "refresh_token_expires_in")
	writeJSON(w, 200, resp)
}

// AccessTokenActor is the account an access token acts for: the delegated user, or the
// service account itself ("" for tokens from refresh tokens or unknown ones).
func (s *Server) AccessTokenActor(token string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at := s.access[token]; at != nil {
		actor, _ := strings.CutPrefix(at.refresh, serviceAccountSub)
		if actor != at.refresh {
			return actor
		}
	}
	return ""
}
