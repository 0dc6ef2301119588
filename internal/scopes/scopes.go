// Package scopes compares OAuth scopes the way Google names them (pure). A grant's access
// tokens must carry no scope outside its spec.scopes (issue 28): Google answers with
// canonical names (`email` comes back as .../auth/userinfo.email), and one OAuth client
// shared by several namespaces unions what each account granted it, so what a token
// carries is checked, not assumed.
package scopes

import (
	"slices"
	"strings"
)

// Identity scopes grantkeeper adds to consents and refreshes so that Google names the
// account (ID token, tokeninfo); a token may carry them whatever spec.scopes says.
const (
	OpenID = "openid"
	Email  = "email"
)

// IdentityScopes are OpenID and Email, in the order links ask for them.
var IdentityScopes = []string{OpenID, Email}

const authPrefix = "https://www.googleapis.com/auth/"

// aliases are the short names Google accepts and the canonical name it answers with.
var aliases = map[string]string{
	"email":   authPrefix + "userinfo.email",
	"profile": authPrefix + "userinfo.profile",
}

// Canonical is Google's canonical form of a scope: the short `email` and `profile` become
// their userinfo URLs; anything else is itself (trimmed).
func Canonical(s string) string {
	s = strings.TrimSpace(s)
	if c, ok := aliases[s]; ok {
		return c
	}
	return s
}

// Contains reports whether list holds s, in canonical forms.
func Contains(list []string, s string) bool {
	c := Canonical(s)
	return slices.ContainsFunc(list, func(x string) bool { return Canonical(x) == c })
}

// identity reports whether s is one of the identity scopes (in any form).
func identity(s string) bool {
	return Contains(IdentityScopes, s)
}

// Excess are the scopes in got that are neither in allowed nor identity scopes, as got
// names them, once each, in got's order. nil when there are none.
func Excess(allowed, got []string) []string {
	var out []string
	for _, s := range got {
		if s == "" || identity(s) || Contains(allowed, s) || Contains(out, s) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// Missing are the scopes of want that got does not carry (canonical forms), in want's order.
func Missing(want, got []string) []string {
	var out []string
	for _, s := range want {
		if !Contains(got, s) && !Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// WithIdentity is scopes followed by the identity scopes it lacks, once each.
func WithIdentity(scopes []string) []string {
	out := slices.Clone(scopes)
	for _, s := range IdentityScopes {
		if !Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// RefreshRequests are the `scope` values a refresh of a grant with spec.scopes tries, in
// order: the grant's scopes with the identity scopes (so the answer still names the
// account), then, if Google refuses that with invalid_scope and identity scopes were added,
// the grant's scopes alone (a refresh token that was never granted openid or email, such
// as one the user brought). None for a grant without spec.scopes: its refresh asks for
// what the refresh token was granted. lastGranted is the scopes of the last answer for the
// same inputs (nil when unknown): when they lack openid, the refresh token was never granted
// the identity scopes and the first try would be refused again, so only spec.scopes is
// asked (one token request a refresh, not two).
func RefreshRequests(spec, lastGranted []string) [][]string {
	if len(spec) == 0 {
		return nil
	}
	full := WithIdentity(spec)
	if len(full) == len(spec) {
		return [][]string{full}
	}
	if len(lastGranted) > 0 && !Contains(lastGranted, "openid") {
		return [][]string{slices.Clone(spec)}
	}
	return [][]string{full, slices.Clone(spec)}
}
