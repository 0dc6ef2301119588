package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/grantkeeper/grantkeeper/internal/derivedsecret"
	"github.com/grantkeeper/grantkeeper/internal/grantinputs"
	"github.com/grantkeeper/grantkeeper/internal/metrics"
	"github.com/grantkeeper/grantkeeper/internal/oauthtoken"
	"github.com/grantkeeper/grantkeeper/internal/plan"
	"github.com/grantkeeper/grantkeeper/internal/scopes"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
	"github.com/grantkeeper/grantkeeper/internal/tokenerr"
)

// act is the one place that talks to Google on a grant's behalf: it reads the inputs,
// requests a token, persists a rotated refresh token, publishes the access token, and
// returns the outcome, which reconcile turns into the report with plan.Record. An error is
// an API failure that leaves nothing to record (the reconcile is retried).
func (r *GrantReconciler) act(ctx context.Context, obs observation, why string) (plan.Outcome, error) {
	g := obs.Grant
	in, problem, err := r.credentials().Read(ctx, g, &obs.inputs)
	if err != nil {
		return plan.Outcome{}, err
	}
	fp := in.Fingerprint(g, &obs.inputs)
	if problem != nil {
		return plan.Outcome{Problem: problem, Fingerprint: fp, RefreshTokenMissing: in.RefreshTokenMissing}, nil
	}

	key := types.NamespacedName{Namespace: g.GetNamespace(), Name: g.GetName()}
	r.noteRefreshToken(key, in.RefreshToken, in.Client.ID)
	log := logf.FromContext(ctx)
	now := obs.Now
	var tok *tokenclient.Token
	switch {
	case in.ServiceAccount != nil:
		log.V(1).Info("requesting access token", "why", why, "serviceAccount", in.ServiceAccount.Email, "keyID", in.ServiceAccount.PrivateKeyID, "subject", subjectOf(g))
		tok, err = r.Tokens.ServiceAccountToken(ctx, *in.ServiceAccount, g.Settings().Scopes, subjectOf(g), now)
	case in.Provider != nil:
		log.V(1).Info("requesting access token", "why", why, "clientCredentials", in.Provider.ClientCredentials, "refreshToken", fingerprint(in.RefreshToken))
		tok, err = r.providerToken(ctx, in, now)
	default:
		log.V(1).Info("requesting access token", "why", why, "refreshToken", fingerprint(in.RefreshToken))
		// What the last answer for these same inputs was granted (a refresh token without the
		// identity scopes is then not asked for them again).
		var lastGranted []string
		if g.GrantStatus().InputsFingerprint == fp {
			lastGranted = g.GrantStatus().GrantedScopes
		}
		tok, err = r.refresh(ctx, in, g.Settings().Scopes, lastGranted, now)
	}
	result := "success"
	var failure tokenerr.Failure
	if err != nil {
		failure = tokenerr.Classify(err, now).Redact(in.RefreshToken, in.Client.Secret)
		if in.ServiceAccount != nil {
			failure = failure.ForServiceAccount()
		}
		result = failure.Kind.String()
	}
	metrics.TokenRequests.WithLabelValues(result).Inc()
	metrics.TokenRequestDuration.WithLabelValues(result).Observe(r.Clock.Since(now).Seconds())
	if err != nil {
		logf.FromContext(ctx).Info("token request failed", "kind", failure.Kind.String(), "status", failure.Status, "error", failure.Code, "attempt", g.GrantStatus().FailedRefreshAttempts+1)
		return plan.Outcome{Failure: &failure, Fingerprint: fp, Account: in.Account(g), ClientID: in.Client.ID}, nil
	}

	// Never publish a token carrying scopes outside spec.scopes (issue 28): Google may answer
	// with everything the account granted a shared OAuth client.
	var excess []string
	if len(g.Settings().Scopes) > 0 {
		excess = scopes.Excess(g.Settings().Scopes, tok.Scopes)
	}

	var events []plan.Event
	if tok.RefreshToken != "" {
		// A rotated refresh token is the only copy of the grant: persist it before anything else.
		kept, err := r.credentials().WriteBack(ctx, g, obs.inputs.Form, in, tok.RefreshToken)
		if err != nil {
			return plan.Outcome{}, err
		}
		if kept {
			events = append(events, plan.Event{Type: corev1.EventTypeWarning, Reason: "RefreshTokenChanged", Action: "WriteBack",
				Note: fmt.Sprintf("The token endpoint rotated the refresh token, but Secret %q changed meanwhile; keeping the Secret's new value", obs.inputs.Form.RefreshToken().Secret)})
		} else {
			r.noteRefreshToken(key, tok.RefreshToken, in.Client.ID)
		}
	}
	out := plan.Outcome{
		Token:       &plan.Issued{Expiry: tok.Expiry, Scopes: tok.Scopes, RefreshTokenExpiresIn: tok.RefreshTokenExpiresIn, Rotated: tok.RefreshToken != ""},
		Fingerprint: in.Fingerprint(g, &obs.inputs), Account: in.Account(g), Identity: r.identity(ctx, obs, in, tok), ClientID: in.Client.ID,
		ExcessScopes: excess, Events: events,
	}
	if len(excess) > 0 {
		log.Info("token not published: it carries scopes outside spec.scopes", "excessScopes", excess)
		return out, nil
	}

	issued := now.Truncate(time.Second)
	if _, err := derivedsecret.Publish(ctx, r.Client, r.Scheme(), g, obs.target, derivedsecret.Token{AccessToken: tok.AccessToken, Expiry: tok.Expiry, RefreshedAt: issued}); err != nil {
		return plan.Outcome{}, err
	}
	r.writes.record(types.NamespacedName{Namespace: g.GetNamespace(), Name: g.GetName()}, now, func(e *replaced) {
		e.secretCreated = obs.target == nil
		e.secret = ""
		if obs.target != nil {
			e.secret = obs.target.ResourceVersion
		}
	})
	log.V(1).Info("access token refreshed", "expiresAt", tok.Expiry)
	return out, nil
}

// providerToken is an OAuthGrant's token request: a refresh, or the client credentials
// grant, at the endpoint its client object uses, sending spec.scopes (and resources,
// audience) every time.
func (r *GrantReconciler) providerToken(ctx context.Context, in *grantinputs.Credential, now time.Time) (*tokenclient.Token, error) {
	p := in.Provider
	e := &oauthtoken.Endpoint{TokenURL: p.Endpoints.TokenURL, RevocationURL: p.Endpoints.RevocationURL, HTTP: r.ProviderHTTP}
	if p.ClientCredentials {
		return e.ClientCredentials(ctx, p.Client, p.Params, now)
	}
	return e.Refresh(ctx, p.Client, in.RefreshToken, p.Params, now)
}

// refresh trades the refresh token for an access token narrowed to spec.scopes (with the
// identity scopes, then without them if Google refuses those: scopes.RefreshRequests); a
// grant without spec.scopes asks for what its refresh token was granted.
func (r *GrantReconciler) refresh(ctx context.Context, in *grantinputs.Credential, spec, lastGranted []string, now time.Time) (*tokenclient.Token, error) {
	attempts := scopes.RefreshRequests(spec, lastGranted)
	if len(attempts) == 0 {
		return r.Tokens.Refresh(ctx, in.Client, in.RefreshToken, nil, now)
	}
	var tok *tokenclient.Token
	var err error
	for i, want := range attempts {
		tok, err = r.Tokens.Refresh(ctx, in.Client, in.RefreshToken, want, now)
		if err == nil || i == len(attempts)-1 {
			break
		}
		if f := tokenerr.Classify(err, now); f.Kind != tokenerr.Rejected || f.Code != "invalid_scope" {
			break
		}
		logf.FromContext(ctx).V(1).Info("Google refused the identity scopes for this refresh token; asking for spec.scopes alone")
	}
	return tok, err
}

// fingerprint is a short, non-reversible identifier of a secret value, for logs.
func fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:4])
}
