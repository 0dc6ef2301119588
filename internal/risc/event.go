// Package risc receives Google's Cross-Account Protection (RISC) security events: Security
// Event Tokens (RFC 8417) that Google pushes when a user's account or tokens are compromised,
// disabled or revoked. It verifies them as Google prescribes (Verifier), serves the receiver
// endpoint (Handler), and says what each event means for a grant (EffectOf); applying the
// effects to grants is the controllers package's job.
package risc

import (
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Event types (a contract: the stream is registered with these, the README lists them).
const (
	TokenRevoked                    = "https://schemas.openid.net/secevent/oauth/event-type/token-revoked"
	TokensRevoked                   = "https://schemas.openid.net/secevent/oauth/event-type/tokens-revoked"
	SessionsRevoked                 = "https://schemas.openid.net/secevent/risc/event-type/sessions-revoked"
	AccountDisabled                 = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	AccountEnabled                  = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
	AccountCredentialChangeRequired = "https://schemas.openid.net/secevent/risc/event-type/account-credential-change-required"
	Verification                    = "https://schemas.openid.net/secevent/risc/event-type/verification"
)

// EventTypes are the event types grantkeeper asks Google for, in registration order.
var EventTypes = []string{TokenRevoked, TokensRevoked, SessionsRevoked, AccountDisabled, AccountEnabled, AccountCredentialChangeRequired, Verification}

// ShortName is an event type's last path element (the metric label), "unknown" for others.
func ShortName(eventType string) string {
	for _, t := range EventTypes {
		if t == eventType {
			return t[strings.LastIndex(t, "/")+1:]
		}
	}
	return "unknown"
}

// Token identifier algorithms of token-revoked events.
const (
	AlgPrefix     = "prefix"
	AlgHashSHA512 = "hash_base64_sha512_sha512"
)

// PrefixLen is how many leading characters of a token the prefix identifier holds.
const PrefixLen = 16

// Subject is whom an event is about: an account (iss-sub) or one token (token-revoked).
type Subject struct {
	Type  string `json:"subject_type"`
	Iss   string `json:"iss,omitempty"`
	Sub   string `json:"sub,omitempty"`
	Email string `json:"email,omitempty"`
	// TokenType, TokenAlg and Token identify one token (token-revoked): never the token
	// itself, but its prefix or double hash. Still treated as secret: never logged.
	TokenType string `json:"token_type,omitempty"`
	TokenAlg  string `json:"token_identifier_alg,omitempty"`
	Token     string `json:"token,omitempty"`
}

// Event is one event of a Security Event Token.
type Event struct {
	Type    string
	Subject Subject
	// Reason is account-disabled's reason (hijacking, bulk-account); State is verification's.
	Reason string
	State  string
	// Audience is the token's aud: the OAuth client IDs the event is for. Events that revoke
	// tokens concern only grants whose client is one of them (Google revokes tokens per
	// project).
	Audience []string
}

// SET is a verified Security Event Token.
type SET struct {
	JTI      string
	IssuedAt time.Time
	Events   []Event
}

type eventBody struct {
	Subject *Subject `json:"subject"`
	Reason  string   `json:"reason"`
	State   string   `json:"state"`
}

// parseEvents reads the events claim: a map from event type to its body.
func parseEvents(raw map[string]json.RawMessage) ([]Event, error) {
	if len(raw) == 0 {
		return nil, errors.New("no events claim")
	}
	out := make([]Event, 0, len(raw))
	for typ, body := range raw {
		var b eventBody
		if err := json.Unmarshal(body, &b); err != nil {
			return nil, fmt.Errorf("event %s is not a JSON object", ShortName(typ))
		}
		ev := Event{Type: typ, Reason: b.Reason, State: b.State}
		if b.Subject != nil {
			ev.Subject = *b.Subject
		}
		out = append(out, ev)
	}
	return out, nil
}

// Identifiers are the identifiers a token-revoked event may name refreshToken by: its prefix
// and its double SHA-512 hash. Google documents the hash as "hash_base64_sha512_sha512"
// without saying how the inner digest is encoded; the raw digest (the usual reading) and its
// hex form are both indexed so either reading matches.
func Identifiers(refreshToken string) []string {
	out := make([]string, 0, 3)
	if len(refreshToken) >= PrefixLen {
		out = append(out, AlgPrefix+":"+refreshToken[:PrefixLen])
	}
	inner := sha512.Sum512([]byte(refreshToken))
	outer := sha512.Sum512(inner[:])
	out = append(out, AlgHashSHA512+":"+base64.StdEncoding.EncodeToString(outer[:]))
	outerHex := sha512.Sum512([]byte(fmt.Sprintf("%x", inner)))
	return append(out, AlgHashSHA512+":"+base64.StdEncoding.EncodeToString(outerHex[:]))
}

// HashIdentifier is the hash_base64_sha512_sha512 identifier of a token (what Google sends).
func HashIdentifier(token string) string {
	inner := sha512.Sum512([]byte(token))
	outer := sha512.Sum512(inner[:])
	return base64.StdEncoding.EncodeToString(outer[:])
}

// TokenKey is the index key a token-revoked subject names, "" when it names no refresh token
// by a known algorithm.
func (s Subject) TokenKey() string {
	if s.TokenType != "refresh_token" || s.Token == "" {
		return ""
	}
	switch s.TokenAlg {
	case AlgPrefix:
		if len(s.Token) != PrefixLen {
			return ""
		}
	case AlgHashSHA512:
		// Accept URL-safe or unpadded base64 too: compare in standard padded form.
		if b, err := decodeAnyBase64(s.Token); err == nil {
			return AlgHashSHA512 + ":" + base64.StdEncoding.EncodeToString(b)
		}
		return ""
	default:
		return ""
	}
	return s.TokenAlg + ":" + s.Token
}

func decodeAnyBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}
