package controllers

import (
	"context"
	"slices"

	logf "sigs.k8s.io/controller-runtime/pkg/log"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/grantinputs"
	"github.com/grantkeeper/grantkeeper/internal/idtoken"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
)

// Scopes that make Google name the account behind a token.
const (
	scopeOpenID    = "openid"
	scopeEmail     = "email"
	scopeEmailLong = "https://www.googleapis.com/auth/userinfo.email"
)

// identity is the user account a successful refresh acts for: from the ID token when the
// grant has openid; else, with the email scope, from one tokeninfo call per new set of inputs
// (a new refresh token changes the inputs fingerprint), not per refresh; else nil (keep).
// The email is personal data: it is logged only at debug level.
func (r *GrantReconciler) identity(ctx context.Context, obs observation, in *grantinputs.Credential, tok *tokenclient.Token) *oauthv1alpha1.AccountStatus {
	if in.ServiceAccount != nil {
		return nil
	}
	log := logf.FromContext(ctx)
	if tok.IDToken != "" {
		a, err := idtoken.Parse(tok.IDToken)
		if err != nil {
			log.Info("ignoring the token endpoint's id_token", "error", err.Error())
			return nil
		}
		return &oauthv1alpha1.AccountStatus{Email: a.Email, Sub: a.Sub}
	}
	g := obs.Grant
	if in.Provider != nil {
		// tokeninfo is Google's; another provider names the account in its ID token only.
		return nil
	}
	if !slices.Contains(tok.Scopes, scopeEmail) && !slices.Contains(tok.Scopes, scopeEmailLong) {
		return nil
	}
	if known := g.GrantStatus().Account; known != nil && known.Sub != "" && g.GrantStatus().InputsFingerprint == in.Fingerprint(g, &obs.inputs) {
		return nil
	}
	a, err := r.Tokens.Tokeninfo(ctx, tok.AccessToken)
	if err != nil {
		// Not worth failing a refresh over: the next new refresh token tries again.
		log.Info("could not learn the grant's account from tokeninfo", "error", err.Error())
		return nil
	}
	log.V(1).Info("account learned from tokeninfo", "sub", a.Sub, "email", a.Email)
	return &oauthv1alpha1.AccountStatus{Email: a.Email, Sub: a.Sub}
}
