package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/decision"
	"github.com/grantkeeper/grantkeeper/internal/derivedsecret"
	"github.com/grantkeeper/grantkeeper/internal/metrics"
	"github.com/grantkeeper/grantkeeper/internal/schedule"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
	"github.com/grantkeeper/grantkeeper/internal/tokenerr"
)

// refresh requests a new access token and publishes it, or records why it could not.
func (r *GoogleOAuthGrantReconciler) refresh(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant, obs *observation, d decision.Decision) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	now := r.Clock.Now()
	before := g.Status.DeepCopy()
	// Whatever happens next answers these inputs and this manual request: a failure is
	// not retried until they change (permanent errors) or the backoff ends (transient).
	g.Status.InputsFingerprint = obs.fingerprint
	if obs.manual != "" {
		g.Status.LastHandledRefreshRequest = obs.manual
	}

	in, problem := readInputs(g, obs.userSecrets)
	if problem != nil {
		r.setProblem(g, before, problem.Reason, problem.Message)
		return r.writeStatus(ctx, g, before, 0)
	}

	log.V(1).Info("requesting access token", "why", d.Why, "refreshToken", fingerprint(in.refreshToken))
	tok, err := r.Tokens.Refresh(ctx, in.client, in.refreshToken, now)
	result := "success"
	var failure tokenerr.Failure
	if err != nil {
		failure = tokenerr.Classify(err, now).Redact(in.refreshToken, in.client.Secret)
		result = failure.Kind.String()
	}
	metrics.TokenRequests.WithLabelValues(result).Inc()
	metrics.TokenRequestDuration.WithLabelValues(result).Observe(r.Clock.Since(now).Seconds())
	if err != nil {
		return r.failed(ctx, g, before, obs, failure)
	}

	if tok.RefreshToken != "" {
		// A rotated refresh token is the only copy of the grant: persist it before anything else.
		if err := r.writeBackRefreshToken(ctx, g, in, tok.RefreshToken); err != nil {
			return ctrl.Result{}, err
		}
		// Record the Secret's new version, or the write-back would count as a change of input.
		obs.userSecrets[in.refreshSecret.Name] = in.refreshSecret
		g.Status.InputsFingerprint = fingerprintInputs(g, secretMetas(obs.userSecrets))
	}

	issued := now.Truncate(time.Second)
	if err := r.publish(ctx, g, obs.target, derivedsecret.Token{AccessToken: tok.AccessToken, Expiry: tok.Expiry, RefreshedAt: issued}); err != nil {
		return ctrl.Result{}, err
	}
	r.succeeded(g, before, tok, issued)
	log.V(1).Info("access token refreshed", "expiresAt", tok.Expiry, "refreshAt", g.Status.RefreshTime.Time)
	return r.writeStatus(ctx, g, before, schedule.Delay(now, g.Status.RefreshTime.Time))
}

// inputs are the credentials read live from the user's Secrets.
type inputs struct {
	client        credentials.Client
	refreshToken  string
	refreshSecret *corev1.Secret
}

// readInputs takes the client and the refresh token out of the Secrets a live observation
// read (never from a cache of every Secret in the cluster), or says what is wrong with them.
func readInputs(g *oauthv1alpha1.GoogleOAuthGrant, secrets map[string]*corev1.Secret) (*inputs, *credentials.Problem) {
	get := func(name, field string) (*corev1.Secret, *credentials.Problem) {
		if s := secrets[name]; s != nil {
			return s, nil
		}
		return nil, &credentials.Problem{Reason: oauthv1alpha1.ReasonSecretNotFound,
			Message: fmt.Sprintf("Secret %q (%s) not found in namespace %q; create it, and the grant will pick it up within seconds", name, field, g.Namespace)}
	}
	if g.UsesAuthorizedUser() {
		s, p := get(g.Spec.AuthorizedUserSecretRef.Name, "spec.authorizedUserSecretRef")
		if p != nil {
			return nil, p
		}
		return parseInputs(g, s, s)
	}
	cs, p := get(g.ClientSecretName(), "spec.clientSecretRef")
	if p != nil {
		return nil, p
	}
	rs, p := get(g.RefreshTokenSecretName(), "spec.refreshTokenSecretRef")
	if p != nil {
		return nil, p
	}
	return parseInputs(g, cs, rs)
}

// parseInputs reads the client from cs and the refresh token from rs (the same Secret in
// the authorized-user form).
func parseInputs(g *oauthv1alpha1.GoogleOAuthGrant, cs, rs *corev1.Secret) (*inputs, *credentials.Problem) {
	if g.UsesAuthorizedUser() {
		c, rt, p := credentials.ParseAuthorizedUser(rs.Name, rs.Data, g.RefreshTokenKey())
		if p != nil {
			return nil, p
		}
		return &inputs{client: c, refreshToken: rt, refreshSecret: rs}, nil
	}
	c, p := credentials.ParseClient(cs.Name, cs.Data)
	if p != nil {
		return nil, p
	}
	rt, p := credentials.RefreshToken(rs.Name, rs.Data, g.RefreshTokenKey())
	if p != nil {
		return nil, p
	}
	return &inputs{client: c, refreshToken: rt, refreshSecret: rs}, nil
}

func secretMetas(secrets map[string]*corev1.Secret) map[string]*metav1.ObjectMeta {
	m := make(map[string]*metav1.ObjectMeta, len(secrets))
	for name, s := range secrets {
		if s != nil {
			m[name] = &s.ObjectMeta
		}
	}
	return m
}

// writeBackRefreshToken stores a rotated refresh token in the user's Secret. If the Secret
// changed meanwhile and no longer holds the token we used, the user put a new one there:
// theirs wins and ours is dropped (it would be the older grant).
func (r *GoogleOAuthGrantReconciler) writeBackRefreshToken(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant, in *inputs, rotated string) error {
	key := g.RefreshTokenKey()
	s := in.refreshSecret.DeepCopy()
	for range 5 {
		if credentials.StoredRefreshToken(g, s.Name, s.Data) != in.refreshToken {
			r.event(g, corev1.EventTypeWarning, "RefreshTokenChanged", "WriteBack",
				"The token endpoint rotated the refresh token, but Secret %q changed meanwhile; keeping the Secret's new value", s.Name)
			return nil
		}
		if g.UsesAuthorizedUser() {
			updated, err := credentials.ReplaceAuthorizedUserRefreshToken(s.Data[key], rotated)
			if err != nil {
				return fmt.Errorf("writing the rotated refresh token back to Secret %q: %w", s.Name, err)
			}
			s.Data[key] = updated
		} else {
			s.Data[key] = []byte(rotated)
		}
		err := r.Update(ctx, s)
		if err == nil {
			in.refreshSecret = s
			return nil
		}
		if !apierrors.IsConflict(err) {
			return fmt.Errorf("writing the rotated refresh token back to Secret %q: %w", s.Name, err)
		}
		s = &corev1.Secret{}
		if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: g.Namespace, Name: in.refreshSecret.Name}, s); err != nil {
			return fmt.Errorf("re-reading Secret %q to store the rotated refresh token: %w", in.refreshSecret.Name, err)
		}
	}
	return fmt.Errorf("writing the rotated refresh token back to Secret %q: too many conflicting updates", in.refreshSecret.Name)
}

// publish writes the token into the derived Secret, creating it if needed.
func (r *GoogleOAuthGrantReconciler) publish(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant, existing *corev1.Secret, t derivedsecret.Token) error {
	s := existing
	if s == nil {
		s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: g.Namespace, Name: g.TargetSecretName()}}
	}
	derivedsecret.Apply(s, g.Name, t)
	if err := controllerutil.SetControllerReference(g, s, r.Scheme()); err != nil {
		return err
	}
	if existing == nil {
		if err := r.Create(ctx, s); err != nil {
			return fmt.Errorf("creating access-token Secret %q: %w", s.Name, err)
		}
		return nil
	}
	if err := r.Update(ctx, s); err != nil {
		return fmt.Errorf("updating access-token Secret %q: %w", s.Name, err)
	}
	return nil
}

// succeeded records a successful refresh in the status, with events on state changes only.
func (r *GoogleOAuthGrantReconciler) succeeded(g *oauthv1alpha1.GoogleOAuthGrant, before *oauthv1alpha1.GoogleOAuthGrantStatus, tok *tokenclient.Token, issued time.Time) {
	st := &g.Status
	rb := time.Duration(0)
	if g.Spec.RefreshBefore != nil {
		rb = g.Spec.RefreshBefore.Duration
	}
	st.ExpiresAt = metaTime(tok.Expiry)
	st.LastRefreshTime = metaTime(issued)
	st.RefreshTime = metaTime(schedule.RefreshTime(issued, tok.Expiry, rb, string(g.UID)))
	st.GrantedScopes = tok.Scopes
	st.RefreshTokenExpiresAt = nil
	if tok.RefreshTokenExpiresIn > 0 {
		st.RefreshTokenExpiresAt = metaTime(issued.Add(tok.RefreshTokenExpiresIn))
	}
	st.FailedRefreshAttempts = 0
	r.setCondition(g, oauthv1alpha1.ConditionRevoked, metav1.ConditionFalse, oauthv1alpha1.ReasonRefreshSucceeded, "The token endpoint accepted the refresh token.")
	r.setReady(g, before, metav1.ConditionTrue, oauthv1alpha1.ReasonTokenValid, validMessage(g, tok.Expiry, ""))

	wasReady := conditionTrue(before.Conditions, oauthv1alpha1.ConditionReady)
	switch {
	case before.ExpiresAt == nil:
		r.event(g, corev1.EventTypeNormal, "TokenIssued", "Refresh", "First access token written to Secret %q, valid until %s", g.TargetSecretName(), formatTime(tok.Expiry))
	case !wasReady || before.FailedRefreshAttempts > 0:
		r.event(g, corev1.EventTypeNormal, "Recovered", "Refresh", "Refresh succeeded again; Secret %q holds a token valid until %s", g.TargetSecretName(), formatTime(tok.Expiry))
	}
}

// failed records a failed token request.
func (r *GoogleOAuthGrantReconciler) failed(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant, before *oauthv1alpha1.GoogleOAuthGrantStatus, obs *observation, f tokenerr.Failure) (ctrl.Result, error) {
	now := r.Clock.Now()
	st := &g.Status
	st.FailedRefreshAttempts++
	st.LastFailureTime = metaTime(now)
	logf.FromContext(ctx).Info("token request failed", "kind", f.Kind.String(), "status", f.Status, "error", f.Code, "attempt", st.FailedRefreshAttempts)
	ref := g.RefreshTokenSecretName()

	switch f.Kind {
	case tokenerr.InvalidGrant:
		st.RefreshTime = nil
		r.setCondition(g, oauthv1alpha1.ConditionRevoked, metav1.ConditionTrue, oauthv1alpha1.ReasonInvalidGrant,
			fmt.Sprintf("Google rejected the refresh token: %s", describe(f)))
		r.setReady(g, before, metav1.ConditionFalse, oauthv1alpha1.ReasonInvalidGrant,
			fmt.Sprintf("The refresh token was revoked, expired or superseded (%s). Obtain a new one with a new consent and store it in Secret %q key %q; no more requests are made until then.", f.Summary(), ref, g.RefreshTokenKey()))
		r.event(g, corev1.EventTypeWarning, oauthv1alpha1.ReasonInvalidGrant, "Refresh", "Refresh token rejected: %s", f.Summary())
		return r.writeStatus(ctx, g, before, 0)
	case tokenerr.InvalidClient:
		st.RefreshTime = nil
		r.setReady(g, before, metav1.ConditionFalse, oauthv1alpha1.ReasonInvalidClient,
			fmt.Sprintf("The token endpoint rejected the OAuth client (%s). Check the client id and secret in Secret %q and that the refresh token was issued to that client; no more requests are made until a Secret or the spec changes.", f.Summary(), g.ClientSecretName()))
		r.event(g, corev1.EventTypeWarning, oauthv1alpha1.ReasonInvalidClient, "Refresh", "OAuth client rejected: %s", f.Summary())
		return r.writeStatus(ctx, g, before, 0)
	case tokenerr.Rejected:
		st.RefreshTime = nil
		r.setReady(g, before, metav1.ConditionFalse, oauthv1alpha1.ReasonTokenRequestRejected,
			fmt.Sprintf("The token endpoint refused the request (%s). Fix the cause, then change the grant or its Secrets or request a manual refresh.", f.Summary()))
		r.event(g, corev1.EventTypeWarning, "RefreshFailed", "Refresh", "Token request refused: %s", f.Summary())
		return r.writeStatus(ctx, g, before, 0)
	}

	delay := r.Backoff.Delay(st.FailedRefreshAttempts, f.RetryAfter, string(g.UID))
	retryAt := now.Add(delay).Truncate(time.Second).Add(time.Second)
	st.RefreshTime = metaTime(retryAt)
	r.event(g, corev1.EventTypeWarning, "RefreshFailed", "Refresh", "Refresh attempt %d failed: %s; retrying at %s", st.FailedRefreshAttempts, f.Summary(), formatTime(retryAt))
	next := retryAt
	if obs.facts.HaveToken && now.Before(obs.token.Expiry) {
		r.setReady(g, before, metav1.ConditionTrue, oauthv1alpha1.ReasonTokenValid, validMessage(g, obs.token.Expiry, f.Summary()))
		next = earliest(retryAt, obs.token.Expiry)
	} else {
		r.setReady(g, before, metav1.ConditionFalse, oauthv1alpha1.ReasonTokenEndpointError,
			fmt.Sprintf("No valid access token: refreshing failed %d time(s), last: %s. Retrying at %s.", st.FailedRefreshAttempts, f.Summary(), formatTime(retryAt)))
	}
	return r.writeStatus(ctx, g, before, schedule.Delay(now, next))
}

func describe(f tokenerr.Failure) string {
	if f.Description != "" {
		return fmt.Sprintf("%s (%s)", f.Description, f.Code)
	}
	return f.Summary()
}

// setProblem records bad user input (a missing or malformed Secret).
func (r *GoogleOAuthGrantReconciler) setProblem(g *oauthv1alpha1.GoogleOAuthGrant, before *oauthv1alpha1.GoogleOAuthGrantStatus, reason, msg string) {
	g.Status.RefreshTime = nil
	if r.setReady(g, before, metav1.ConditionFalse, reason, msg) {
		r.event(g, corev1.EventTypeWarning, reason, "Refresh", "%s", msg)
	}
}

func validMessage(g *oauthv1alpha1.GoogleOAuthGrant, expiry time.Time, lastFailure string) string {
	st := g.Status
	msg := fmt.Sprintf("Secret %q holds an access token valid until %s.", g.TargetSecretName(), formatTime(expiry))
	if lastFailure != "" {
		return msg + fmt.Sprintf(" Refreshing failed %d time(s), last: %s; retrying at %s.", st.FailedRefreshAttempts, lastFailure, formatTime(st.RefreshTime.Time))
	}
	return msg + fmt.Sprintf(" Next refresh at %s.", formatTime(st.RefreshTime.Time))
}

func metaTime(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
