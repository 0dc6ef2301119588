package risc

import (
	"fmt"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// Action is what an event does to the grants it concerns.
type Action int

const (
	// Ignore: nothing (verification, unknown types, events grantkeeper cannot match).
	Ignore Action = iota
	// Revoke: Revoked=True, Ready=False with Reason, the access token withdrawn, no further
	// token requests until the refresh-token Secret changes.
	Revoke
	// Warn: a Warning event on each grant, nothing else (Google does not revoke OAuth tokens).
	Warn
	// Enable: lift an AccountDisabled revocation; the grant tries a refresh.
	Enable
)

// Target is how an event finds its grants.
type Target struct {
	// TokenKey: the grant holding this refresh token (an Identifiers entry).
	TokenKey string
	// Sub: every grant of this account.
	Sub string
	// Clients, when set, limits the grants to those whose OAuth client ID is one of these
	// (the event's aud): token revocations are per client project, and anyone who may
	// create a client can make a client ID the cluster knows.
	Clients []string
}

// Effect is what one event means.
type Effect struct {
	Action  Action
	Target  Target
	Reason  string
	Message string
}

// EffectOf is what an event does, without I/O. An event whose subject cannot be matched is Ignore.
func EffectOf(ev Event) Effect {
	account := Target{Sub: ev.Subject.Sub}
	if ev.Subject.Sub == "" && ev.Type != TokenRevoked {
		return Effect{}
	}
	switch ev.Type {
	case TokenRevoked:
		key := ev.Subject.TokenKey()
		if key == "" {
			return Effect{}
		}
		return Effect{Action: Revoke, Target: Target{TokenKey: key, Clients: ev.Audience}, Reason: oauthv1alpha1.ReasonTokenRevokedByGoogle,
			Message: "Google revoked this grant's refresh token (Cross-Account Protection token-revoked event)."}
	case TokensRevoked:
		return Effect{Action: Revoke, Target: Target{Sub: ev.Subject.Sub, Clients: ev.Audience}, Reason: oauthv1alpha1.ReasonTokensRevokedByGoogle,
			Message: "Google revoked every OAuth token of this account (Cross-Account Protection tokens-revoked event)."}
	case AccountDisabled:
		why := ev.Reason
		if why == "" {
			why = "unspecified"
		}
		return Effect{Action: Revoke, Target: account, Reason: oauthv1alpha1.ReasonAccountDisabled,
			Message: fmt.Sprintf("Google disabled the account (reason: %s; Cross-Account Protection account-disabled event).", sanitize(why))}
	case AccountEnabled:
		return Effect{Action: Enable, Target: account, Reason: oauthv1alpha1.ReasonAccountEnabled,
			Message: "Google re-enabled the account (Cross-Account Protection account-enabled event); requesting a new access token."}
	case SessionsRevoked:
		return Effect{Action: Warn, Target: account, Reason: oauthv1alpha1.ReasonSessionsRevoked,
			Message: "Google ended the account's sessions (Cross-Account Protection sessions-revoked event); OAuth tokens stay valid."}
	case AccountCredentialChangeRequired:
		return Effect{Action: Warn, Target: account, Reason: oauthv1alpha1.ReasonAccountCredentialChangeRequired,
			Message: "Google asks the account's owner to change their password (Cross-Account Protection account-credential-change-required event); OAuth tokens stay valid."}
	}
	return Effect{}
}

// sanitize bounds a value from an event before it goes into a message.
func sanitize(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	out := []rune{}
	for _, r := range s {
		if r >= 0x20 && r < 0x7f {
			out = append(out, r)
		}
	}
	return string(out)
}
