package fakegoogle

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Account is the Google account a refresh token was granted by.
type Account struct {
	Sub, Email string
	// Unverified: Google has not verified Email (a consumer account can carry any address);
	// its ID tokens say email_verified false.
	Unverified bool
}

// The scopes that make Google name the account: openid adds an id_token to token
// responses; email adds the address (to the ID token and to tokeninfo).
const (
	ScopeOpenID    = "openid"
	ScopeEmail     = "email"
	ScopeEmailLong = "https://www.googleapis.com/auth/userinfo.email"
)

// idTokenKey signs the fake's ID tokens. Clients that receive an ID token straight from the
// token endpoint need not check its signature, so any key does.
var idTokenKey = func() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}()

// SetAccount makes refreshToken (and the tokens rotated from it) belong to account a.
func (s *Server) SetAccount(refreshToken string, a Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.accounts == nil {
		s.accounts = map[string]Account{}
	}
	s.accounts[refreshToken] = a
}

// AccountOf is the account refreshToken belongs to: the one set with SetAccount or the one
// that consented at the consent page (also for tokens rotated from it), else one derived
// from the token, stable for a token.
func (s *Server) AccountOf(refreshToken string) Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accountLocked(refreshToken)
}

func (s *Server) accountLocked(token string) Account {
	for t := token; t != ""; {
		if a, ok := s.accounts[t]; ok {
			return a
		}
		rt := s.refresh[t]
		if rt == nil {
			break
		}
		if rt.account != nil {
			return *rt.account
		}
		t = rt.rotatedFrom
	}
	sum := sha256.Sum256([]byte(token))
	n := binary.BigEndian.Uint64(sum[:8]) % 1e18
	sub := fmt.Sprintf("1%020d", n)
	return Account{Sub: sub, Email: "user" + sub[len(sub)-6:] + "@example.com"}
}

// IDTokens counts the ID tokens the token endpoint issued.
func (s *Server) IDTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idTokens
}

// TokeninfoRequests counts requests to the tokeninfo endpoint.
func (s *Server) TokeninfoRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokeninfos
}

func hasEmailScope(scopes []string) bool {
	return slices.Contains(scopes, ScopeEmail) || slices.Contains(scopes, ScopeEmailLong)
}

// idTokenLocked is the id_token of a token response for account a, "" unless the grant has
// the openid scope.
func (s *Server) idTokenLocked(a Account, clientID string, scopes []string) string {
	if !slices.Contains(scopes, ScopeOpenID) {
		return ""
	}
	now := s.now()
	claims := jwt.MapClaims{
		"iss": "https://accounts.google.com", "azp": clientID, "aud": clientID, "sub": a.Sub,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	if hasEmailScope(scopes) {
		claims["email"], claims["email_verified"] = a.Email, !a.Unverified
	}
	raw, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(idTokenKey)
	if err != nil {
		return ""
	}
	s.idTokens++
	return raw
}
