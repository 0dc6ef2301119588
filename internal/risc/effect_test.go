package risc

import (
	"reflect"
	"strings"
	"testing"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

func TestEffectOf(t *testing.T) {
	acct := Subject{Type: "iss-sub", Iss: "https://accounts.google.com/", Sub: "1234"}
	token := "1//0gAbCdEfGhIjKlMnOpQrStUvWxYz"
	for _, tc := range []struct {
		name    string
		ev      Event
		action  Action
		reason  string
		target  Target
		message string
	}{
		{"token-revoked by prefix", Event{Type: TokenRevoked, Subject: Subject{TokenType: "refresh_token", TokenAlg: AlgPrefix, Token: token[:16]}},
			Revoke, oauthv1alpha1.ReasonTokenRevokedByGoogle, Target{TokenKey: "prefix:" + token[:16]}, "token-revoked"},
		{"token-revoked by hash", Event{Type: TokenRevoked, Subject: Subject{TokenType: "refresh_token", TokenAlg: AlgHashSHA512, Token: HashIdentifier(token)}},
			Revoke, oauthv1alpha1.ReasonTokenRevokedByGoogle, Target{TokenKey: Identifiers(token)[1]}, ""},
		{"token-revoked of an access token: nothing (we hold refresh tokens)", Event{Type: TokenRevoked, Subject: Subject{TokenType: "access_token", TokenAlg: AlgPrefix, Token: token[:16]}}, Ignore, "", Target{}, ""},
		{"token-revoked with an unknown algorithm", Event{Type: TokenRevoked, Subject: Subject{TokenType: "refresh_token", TokenAlg: "md5", Token: "x"}}, Ignore, "", Target{}, ""},
		{"token-revoked with a prefix of the wrong length", Event{Type: TokenRevoked, Subject: Subject{TokenType: "refresh_token", TokenAlg: AlgPrefix, Token: token[:10]}}, Ignore, "", Target{}, ""},
		{"tokens-revoked: every grant of the account", Event{Type: TokensRevoked, Subject: acct}, Revoke, oauthv1alpha1.ReasonTokensRevokedByGoogle, Target{Sub: "1234"}, "tokens-revoked"},
		{"tokens-revoked: only grants of the clients in aud", Event{Type: TokensRevoked, Subject: acct, Audience: []string{"1-a.apps.googleusercontent.com"}}, Revoke, oauthv1alpha1.ReasonTokensRevokedByGoogle,
			Target{Sub: "1234", Clients: []string{"1-a.apps.googleusercontent.com"}}, "tokens-revoked"},
		{"token-revoked: only grants of the clients in aud", Event{Type: TokenRevoked, Subject: Subject{TokenType: "refresh_token", TokenAlg: AlgPrefix, Token: token[:16]}, Audience: []string{"1-a.apps.googleusercontent.com"}},
			Revoke, oauthv1alpha1.ReasonTokenRevokedByGoogle, Target{TokenKey: "prefix:" + token[:16], Clients: []string{"1-a.apps.googleusercontent.com"}}, ""},
		{"account-disabled: every grant of the account, whatever aud (the account is disabled)", Event{Type: AccountDisabled, Subject: acct, Audience: []string{"1-a.apps.googleusercontent.com"}}, Revoke, oauthv1alpha1.ReasonAccountDisabled, Target{Sub: "1234"}, "reason: unspecified"},
		{"account-disabled carries Google's reason", Event{Type: AccountDisabled, Subject: acct, Reason: "hijacking"}, Revoke, oauthv1alpha1.ReasonAccountDisabled, Target{Sub: "1234"}, "reason: hijacking"},
		{"account-disabled reason is sanitized", Event{Type: AccountDisabled, Subject: acct, Reason: "bulk-account\n\x1b[31m"}, Revoke, oauthv1alpha1.ReasonAccountDisabled, Target{Sub: "1234"}, "reason: bulk-account[31m;"},
		{"account-enabled lifts", Event{Type: AccountEnabled, Subject: acct}, Enable, oauthv1alpha1.ReasonAccountEnabled, Target{Sub: "1234"}, ""},
		{"sessions-revoked warns", Event{Type: SessionsRevoked, Subject: acct}, Warn, oauthv1alpha1.ReasonSessionsRevoked, Target{Sub: "1234"}, "stay valid"},
		{"credential change warns", Event{Type: AccountCredentialChangeRequired, Subject: acct}, Warn, oauthv1alpha1.ReasonAccountCredentialChangeRequired, Target{Sub: "1234"}, "password"},
		{"verification: nothing", Event{Type: Verification, State: "abc", Subject: acct}, Ignore, "", Target{}, ""},
		{"account event without sub: nothing", Event{Type: TokensRevoked, Subject: Subject{Type: "iss-sub"}}, Ignore, "", Target{}, ""},
		{"unknown type: nothing", Event{Type: "https://example.com/x", Subject: acct}, Ignore, "", Target{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := EffectOf(tc.ev)
			if e.Action != tc.action || e.Reason != tc.reason || !reflect.DeepEqual(e.Target, tc.target) {
				t.Errorf("EffectOf = %+v, want action %v reason %q target %+v", e, tc.action, tc.reason, tc.target)
			}
			if !strings.Contains(e.Message, tc.message) {
				t.Errorf("message %q lacks %q", e.Message, tc.message)
			}
		})
	}
}

func TestIdentifiersMatchEventKeys(t *testing.T) {
	token := "1//0gAbCdEfGhIjKlMnOpQrStUvWxYz-0123456789"
	ids := Identifiers(token)
	for _, s := range []Subject{
		{TokenType: "refresh_token", TokenAlg: AlgPrefix, Token: token[:16]},
		{TokenType: "refresh_token", TokenAlg: AlgHashSHA512, Token: HashIdentifier(token)},
		{TokenType: "refresh_token", TokenAlg: AlgHashSHA512, Token: strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(HashIdentifier(token)), "=")},
	} {
		key := s.TokenKey()
		found := false
		for _, id := range ids {
			found = found || id == key
		}
		if !found {
			t.Errorf("subject %+v (key %q) matches none of the token's identifiers", s, key)
		}
	}
	if other := Identifiers("1//0gAbCdEfGhIjKlXXXX"); other[1] == ids[1] {
		t.Error("two tokens share a hash identifier")
	}
	for _, id := range ids {
		if strings.Contains(id, token[16:]) {
			t.Errorf("identifier %q holds more of the token than its prefix", id)
		}
	}
}

func TestShortName(t *testing.T) {
	if ShortName(AccountCredentialChangeRequired) != "account-credential-change-required" || ShortName("x") != "unknown" {
		t.Error("ShortName")
	}
}
