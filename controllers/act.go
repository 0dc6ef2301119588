package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/derivedsecret"
	"github.com/grantkeeper/grantkeeper/internal/metrics"
	"github.com/grantkeeper/grantkeeper/internal/plan"
	"github.com/grantkeeper/grantkeeper/internal/scopes"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
	"github.com/grantkeeper/grantkeeper/internal/tokenerr"
)

// act is the one place that talks to Google on a grant's behalf: it reads the inputs,
// requests a token, persists a rotated refresh token, publishes the access token, and
// returns the outcome, which reconcile turns into the report with plan.Record. An error is
// an API failure that leaves nothing to record (the reconcile is retried).
func (r *GoogleOAuthGrantReconciler) act(ctx context.Context, obs observation, why string) (plan.Outcome, error) {
	g := obs.Grant
	in, problem, err := r.readInputs(ctx, obs)
	if err != nil {
		return plan.Outcome{}, err
	}
	if problem != nil {
		return plan.Outcome{Problem: problem, Fingerprint: in.fingerprint(obs), RefreshTokenMissing: in.refreshTokenMissing}, nil
	}

	key := types.NamespacedName{Namespace: g.Namespace, Name: g.Name}
	r.noteRefreshToken(key, in.refreshToken, in.client.ID)
	log := logf.FromContext(ctx)
	now := obs.Now
	var tok *tokenclient.Token
	if in.serviceAccount != nil {
		log.V(1).Info("requesting access token", "why", why, "serviceAccount", in.serviceAccount.Email, "keyID", in.serviceAccount.PrivateKeyID, "subject", g.Spec.Subject)
		tok, err = r.Tokens.ServiceAccountToken(ctx, *in.serviceAccount, g.Spec.Scopes, g.Spec.Subject, now)
	} else {
		log.V(1).Info("requesting access token", "why", why, "refreshToken", fingerprint(in.refreshToken))
		// What the last answer for these same inputs was granted (a refresh token without the
		// identity scopes is then not asked for them again).
		var lastGranted []string
		if g.Status.InputsFingerprint == in.fingerprint(obs) {
			lastGranted = g.Status.GrantedScopes
		}
		tok, err = r.refresh(ctx, in, g.Spec.Scopes, lastGranted, now)
	}
	result := "success"
	var failure tokenerr.Failure
	if err != nil {
		failure = tokenerr.Classify(err, now).Redact(in.refreshToken, in.client.Secret)
		if in.serviceAccount != nil {
			failure = failure.ForServiceAccount()
		}
		result = failure.Kind.String()
	}
	metrics.TokenRequests.WithLabelValues(result).Inc()
	metrics.TokenRequestDuration.WithLabelValues(result).Observe(r.Clock.Since(now).Seconds())
	if err != nil {
		logf.FromContext(ctx).Info("token request failed", "kind", failure.Kind.String(), "status", failure.Status, "error", failure.Code, "attempt", g.Status.FailedRefreshAttempts+1)
		return plan.Outcome{Failure: &failure, Fingerprint: in.fingerprint(obs), Account: in.account(g), ClientID: in.client.ID}, nil
	}

	// Never publish a token carrying scopes outside spec.scopes (issue 28): Google may answer
	// with everything the account granted a shared OAuth client.
	var excess []string
	if len(g.Spec.Scopes) > 0 {
		excess = scopes.Excess(g.Spec.Scopes, tok.Scopes)
	}

	var events []plan.Event
	if tok.RefreshToken != "" {
		// A rotated refresh token is the only copy of the grant: persist it before anything else.
		ev, err := r.writeBackRefreshToken(ctx, g, in, tok.RefreshToken)
		if err != nil {
			return plan.Outcome{}, err
		}
		events = append(events, ev...)
		if len(ev) == 0 {
			r.noteRefreshToken(key, tok.RefreshToken, in.client.ID)
		}
	}
	out := plan.Outcome{
		Token:       &plan.Issued{Expiry: tok.Expiry, Scopes: tok.Scopes, RefreshTokenExpiresIn: tok.RefreshTokenExpiresIn, Rotated: tok.RefreshToken != ""},
		Fingerprint: in.fingerprint(obs), Account: in.account(g), Identity: r.identity(ctx, obs, in, tok), ClientID: in.client.ID,
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
	r.writes.record(types.NamespacedName{Namespace: g.Namespace, Name: g.Name}, now, func(e *replaced) {
		e.secretCreated = obs.target == nil
		e.secret = ""
		if obs.target != nil {
			e.secret = obs.target.ResourceVersion
		}
	})
	log.V(1).Info("access token refreshed", "expiresAt", tok.Expiry)
	return out, nil
}

// refresh trades the refresh token for an access token narrowed to spec.scopes (with the
// identity scopes, then without them if Google refuses those: scopes.RefreshRequests); a
// grant without spec.scopes asks for what its refresh token was granted.
func (r *GoogleOAuthGrantReconciler) refresh(ctx context.Context, in *inputs, spec, lastGranted []string, now time.Time) (*tokenclient.Token, error) {
	attempts := scopes.RefreshRequests(spec, lastGranted)
	if len(attempts) == 0 {
		return r.Tokens.Refresh(ctx, in.client, in.refreshToken, nil, now)
	}
	var tok *tokenclient.Token
	var err error
	for i, want := range attempts {
		tok, err = r.Tokens.Refresh(ctx, in.client, in.refreshToken, want, now)
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

// inputs are the credentials for one token request.
type inputs struct {
	client        credentials.Client
	refreshToken  string
	refreshSecret *corev1.Secret // when read live (nil when the token came from the record)
	// serviceAccount is set instead of client and refreshToken for a service-account grant.
	serviceAccount *credentials.ServiceAccountKey
	// versions are the metadata of the grant's namespace's Secrets as used (nil: absent),
	// and clientVersion the client object's Secret's, for the fingerprint.
	versions      map[string]*metav1.ObjectMeta
	clientVersion *metav1.ObjectMeta
	// refreshTokenMissing: the problem is an absent refresh-token Secret or key (a consent
	// link can fix that).
	refreshTokenMissing bool
}

// account is the email the token acts for when the inputs tell it ("" for user grants).
func (in *inputs) account(g *oauthv1alpha1.GoogleOAuthGrant) string {
	switch {
	case in.serviceAccount == nil:
		return ""
	case g.Spec.Subject != "":
		return g.Spec.Subject
	}
	return in.serviceAccount.Email
}

func (in *inputs) fingerprint(obs observation) string {
	own := fingerprintInputs(obs.Grant, in.versions)
	if obs.Grant.Spec.ClientRef == nil {
		return own
	}
	return plan.JoinFingerprint(own, clientFingerprint(obs.client, in.clientVersion))
}

// readInputs reads the refresh token and the client from their records when the metadata
// watch shows their Secrets at the versions recorded (refreshtokens.go, clients.go), else
// from the API server (never from a cache of Secrets' data); or says what is wrong with them.
func (r *GoogleOAuthGrantReconciler) readInputs(ctx context.Context, obs observation) (*inputs, *credentials.Problem, error) {
	g := obs.Grant
	in := &inputs{versions: map[string]*metav1.ObjectMeta{}}
	notFound := func(name, field string) *credentials.Problem {
		return secretNotFound(types.NamespacedName{Namespace: g.Namespace, Name: name}, field, "grant")
	}
	if g.UsesServiceAccount() {
		// Read live like a refresh token: a replaced key is used at the next request.
		name := g.Spec.ServiceAccountKeySecretRef.Name
		s, err := r.liveSecret(ctx, g.Namespace, name)
		if err != nil || s == nil {
			return in, notFound(name, "spec.serviceAccountKeySecretRef"), err
		}
		in.versions[name] = &s.ObjectMeta
		k, p := credentials.ParseServiceAccountKey(s.Name, s.Data, g.ServiceAccountKey())
		if p == nil {
			in.serviceAccount = &k
		}
		return in, p, nil
	}
	if g.UsesAuthorizedUser() {
		name := g.Spec.AuthorizedUserSecretRef.Name
		s, err := r.liveSecret(ctx, g.Namespace, name)
		if err != nil || s == nil {
			return in, notFound(name, "spec.authorizedUserSecretRef"), err
		}
		in.versions[name], in.refreshSecret = &s.ObjectMeta, s
		c, rt, p := credentials.ParseAuthorizedUser(s.Name, s.Data, g.RefreshTokenKey())
		in.client, in.refreshToken = c, rt
		return in, p, nil
	}

	// The client's Secret: the grant's clientSecretRef, or the one its clientRef's object names.
	ckey, cfield := types.NamespacedName{Namespace: g.Namespace, Name: g.ClientSecretName()}, "spec.clientSecretRef"
	setVersion := func(m *metav1.ObjectMeta) { in.versions[ckey.Name] = m }
	if g.Spec.ClientRef != nil {
		if obs.client == nil || obs.client.secret.Namespace == "" {
			// Decide reports these before any request; this is a guard.
			return in, &credentials.Problem{Reason: oauthv1alpha1.ReasonClientNotReady, Message: "the client object spec.clientRef names is not usable"}, nil
		}
		ckey, cfield = obs.client.secret, obs.client.field()
		setVersion = func(m *metav1.ObjectMeta) { in.clientVersion = m }
	}
	rname := g.RefreshTokenSecretName()
	cmeta, err := r.cachedSecretMeta(ctx, ckey.Namespace, ckey.Name)
	if err != nil {
		return in, nil, err
	}
	var clientSecret *corev1.Secret
	c, recorded := r.clients.get(ckey, cmeta)
	if recorded {
		setVersion(cmeta)
	} else {
		if clientSecret, err = r.liveSecret(ctx, ckey.Namespace, ckey.Name); err != nil || clientSecret == nil {
			return in, secretNotFound(ckey, cfield, "grant"), err
		}
		setVersion(&clientSecret.ObjectMeta)
	}
	rt, rp, absent, err := r.readRefreshToken(ctx, g, in)
	if err != nil || absent {
		in.refreshTokenMissing = err == nil
		return in, notFound(rname, "spec.refreshTokenSecretRef"), err
	}
	if !recorded {
		var p *credentials.Problem
		if c, p = credentials.ParseClient(clientSecret.Name, clientSecret.Data); p != nil {
			return in, p, nil
		}
		r.clients.put(clientSecret, c)
	}
	in.client, in.refreshToken = c, rt
	in.refreshTokenMissing = rp != nil && rp.Reason == oauthv1alpha1.ReasonSecretKeyMissing
	return in, rp, nil
}

// liveSecret reads a Secret from the API server; nil when it does not exist.
func (r *GoogleOAuthGrantReconciler) liveSecret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return s, nil
}

// writeBackRefreshToken stores a rotated refresh token in the user's Secret. If the Secret
// changed meanwhile and no longer holds the token we used, the user put a new one there:
// theirs wins and ours is dropped (it would be the older grant).
func (r *GoogleOAuthGrantReconciler) writeBackRefreshToken(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant, in *inputs, rotated string) ([]plan.Event, error) {
	key := g.RefreshTokenKey()
	name := g.RefreshTokenSecretName()
	// When the token came from the record (refreshtokens.go) there is no Secret at hand yet:
	// read it to write it, as after a conflict.
	s := in.refreshSecret.DeepCopy()
	var events []plan.Event
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if s == nil {
			var err error
			if s, err = r.liveSecret(ctx, g.Namespace, name); err != nil || s == nil {
				return fmt.Errorf("reading Secret %q to store the rotated refresh token: %v", name, err)
			}
		}
		if credentials.StoredRefreshToken(g, s.Name, s.Data) != in.refreshToken {
			events = []plan.Event{{Type: corev1.EventTypeWarning, Reason: "RefreshTokenChanged", Action: "WriteBack",
				Note: fmt.Sprintf("The token endpoint rotated the refresh token, but Secret %q changed meanwhile; keeping the Secret's new value", s.Name)}}
			return nil
		}
		// No writable.RefreshToken check here, unlike a consent's write: the rotated token
		// replaces, in the same key, the very token it was traded for (the check above), so
		// it can only go where a refresh token of this client already was, and refusing it
		// would lose the grant (the provider has retired the old one). A consent, which picks
		// a new value for a Secret, needs the grant to own or be allowed the Secret.
		if g.UsesAuthorizedUser() {
			updated, err := credentials.ReplaceAuthorizedUserRefreshToken(s.Data[key], rotated)
			if err != nil {
				return fmt.Errorf("writing the rotated refresh token back to Secret %q: %w", s.Name, err)
			}
			s.Data[key] = updated
		} else {
			s.Data[key] = []byte(rotated)
		}
		if err := r.Update(ctx, s); err != nil {
			s = nil // read it again (a conflict is retried)
			return fmt.Errorf("writing the rotated refresh token back to Secret %q: %w", name, err)
		}
		// Record the Secret's new version, or the write-back would count as a change of input.
		in.refreshSecret, in.versions[s.Name] = s, &s.ObjectMeta
		if !g.UsesAuthorizedUser() {
			r.refreshTokens.put(types.NamespacedName{Namespace: s.Namespace, Name: s.Name}, s.ResourceVersion, rotated)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return events, nil
}

// fingerprint is a short, non-reversible identifier of a secret value, for logs.
func fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:4])
}
