// Package plan decides, without I/O, everything the grant reconciler does: from an
// Observation, whether to request a token and, if not, the status to report and when to look
// again (Decide); from the Outcome of a token request, the new status (Record). The
// reconciler only loads, acts and writes what this package returns.
//
// The rules read top-down in Decide and Record; the conditions table in the README is the
// same table, tested row by row in plan_test.go.
package plan

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/derivedsecret"
	"github.com/grantkeeper/grantkeeper/internal/schedule"
	"github.com/grantkeeper/grantkeeper/internal/scopes"
	"github.com/grantkeeper/grantkeeper/internal/tokenerr"
)

// Observation is what the reconciler saw of one grant.
type Observation struct {
	Now time.Time
	// Grant is the grant as cached (spec, annotations and the last reported status). Read only.
	Grant oauthv1alpha1.Grant
	// Conflict is why the derived Secret's name cannot be used (a *derivedsecret.ConflictError),
	// nil when it can.
	Conflict error
	// Token is the derived Secret's token, valid only when HaveToken: the Secret is ours and
	// in our exact shape.
	Token     derivedsecret.Token
	HaveToken bool
	// Fingerprint identifies the spec and the referenced Secrets' versions as observed.
	Fingerprint string
	// Backoff is how this manager backs off after transient failures (zero: the default).
	Backoff schedule.Backoff
	// Client is the client object spec.clientRef names; nil when the grant has none.
	Client *ClientState
	// ConsentEnabled: consent links are served (--consent-bind-address), so a grant that
	// needs a person says ConsentRequired and keeps status.consent.
	ConsentEnabled bool
	// RefreshTokenAbsent: the caches show no refresh-token Secret (grants with
	// refreshTokenSecretRef only).
	RefreshTokenAbsent bool
	// Withdrawal is what a security event recorded in the derived Secret (ours), nil when
	// nothing (security.go).
	Withdrawal *derivedsecret.Withdrawal
}

// Event is an event to record on the grant.
type Event struct {
	Type, Reason, Action, Note string
}

// Report is what to write back: the status, the events, and when to reconcile again
// (0: only on a watch event).
type Report struct {
	Status       oauthv1alpha1.GrantStatus
	Events       []Event
	RequeueAfter time.Duration
}

// Plan is Decide's answer: request a token now (Why says why), or report Report.
type Plan struct {
	Refresh bool
	Why     string
	Report  Report
}

// Issued is what Record needs of an access token the token endpoint issued (never the
// token itself).
type Issued struct {
	Expiry time.Time
	// Scopes the token carries.
	Scopes []string
	// RefreshTokenExpiresIn is set when the endpoint reported one (time-based access).
	RefreshTokenExpiresIn time.Duration
	// Rotated: the endpoint rotated the refresh token and act stored the new one.
	Rotated bool
}

// Outcome is what act's token request led to: exactly one of Token, Failure or Problem.
// The reconciler makes it a Report with Record, once per reconcile.
type Outcome struct {
	Token   *Issued
	Failure *tokenerr.Failure
	// Problem is bad input found while reading the Secrets; no request was made.
	Problem *credentials.Problem
	// Fingerprint identifies the inputs the request used (after any refresh-token write-back).
	Fingerprint string
	// Account is the email of the account the token acts for, when the inputs tell it
	// (a service account's grant: spec.subject, else the key's client_email); "" keeps
	// status.account as it is.
	Account string
	// RefreshTokenMissing: Problem is that the refresh-token Secret or its key is absent
	// (not the client's Secret).
	RefreshTokenMissing bool
	// Identity is the user account the token endpoint's ID token (or tokeninfo) named;
	// nil keeps status.account as it is.
	Identity *oauthv1alpha1.AccountStatus
	// ClientID is the OAuth client the request used ("" for a service account); with a
	// Problem no request was made and status.clientID stays as it is.
	ClientID string
	// ExcessScopes, with Token: the scopes Token carries outside spec.scopes (identity
	// scopes excepted); the token was not published.
	ExcessScopes []string
	// Events are act's own (a rotated refresh token it could not store), recorded with
	// Record's.
	Events []Event
}

// Decide applies the rules in order of precedence.
func Decide(o Observation) Plan {
	g := o.Grant
	st := g.GrantStatus().DeepCopy()
	r := &reporter{o: o, st: st}
	refreshAt := r.refreshAt()
	valid := o.HaveToken && o.Now.Before(o.Token.Expiry)
	ready := meta.FindStatusCondition(g.GrantStatus().Conditions, oauthv1alpha1.ConditionReady)
	permanent := Stalled(*g.GrantStatus())

	ownChanged, clientChanged := inputsChanged(o.Fingerprint, g.GrantStatus().InputsFingerprint)
	clientReason, clientMsg, clientWait := clientProblem(g, o.Client)

	refresh := func(why string) Plan { return Plan{Refresh: true, Why: why} }
	switch {
	case o.Conflict != nil:
		// Never write into someone else's Secret; a watch on it wakes us when it goes away.
		msg := o.Conflict.Error()
		if r.setReady(metav1.ConditionFalse, oauthv1alpha1.ReasonTargetSecretConflict, msg) {
			r.event("Warning", oauthv1alpha1.ReasonTargetSecretConflict, "Publish", msg)
		}
		return Plan{Report: r.finish(0)}
	case clientReason != "":
		// Never use a client the grant may not use, not even for a manual request. The
		// derived Secret keeps its last token; a watch on the client (or the namespace's
		// labels) wakes us when that changes.
		if r.setReady(metav1.ConditionFalse, clientReason, clientMsg) {
			r.event("Warning", clientReason, "Refresh", clientMsg)
		}
		return Plan{Report: r.finish(0)}
	case clientWait:
		// The client controller has not checked the client's current spec; its status write wakes us.
		return Plan{Report: r.finish(0)}
	case securityWithdrawn(o) != "" && !ownChanged:
		// Google revoked the token or disabled the account (security.go): not even a manual
		// refresh may use the token again; a changed Secret or spec may.
		r.securityRevoke(securityWithdrawn(o))
		return Plan{Report: r.finish(0)}
	case accountEnabled(o, ready):
		return refresh("Google re-enabled the account")
	case PendingManualRequest(g) != "":
		return refresh("manual refresh requested")
	case ownChanged && !keyReplacedWhileHealthy(o, valid):
		return refresh("spec or referenced Secret changed")
	case clientChanged && permanent:
		return refresh("OAuth client changed")
	case ready != nil && slices.Contains(ClientReasons, ready.Reason):
		return refresh("OAuth client usable again")
	case ready != nil && ready.Reason == oauthv1alpha1.ReasonTargetSecretConflict:
		// Stalled while the name was taken (a person had to free it); the conflict case
		// above no longer holds.
		return refresh("the derived Secret's name is usable again")
	case permanent && consentSwitched(o, ready):
		return refresh("consent links turned on or off")
	case permanent:
		// No token requests until an input changes or a manual refresh is requested (hot
		// loops on permanent errors are what users of other operators hated most). Look
		// again at expiry only, for the Ready condition's sake.
		if valid {
			return Plan{Report: r.finish(schedule.Delay(o.Now, o.Token.Expiry))}
		}
		return Plan{Report: r.finish(0)}
	case st.FailedRefreshAttempts > 0 && st.RefreshTime != nil && o.Now.Before(st.RefreshTime.Time):
		// Backing off. If the token ran out meanwhile, say so.
		if !valid && meta.IsStatusConditionTrue(st.Conditions, oauthv1alpha1.ConditionReady) {
			r.setReady(metav1.ConditionFalse, oauthv1alpha1.ReasonTokenEndpointError,
				fmt.Sprintf("The access token expired at %s and refreshing has failed %d time(s); retrying at %s.",
					formatTime(o.Token.Expiry), st.FailedRefreshAttempts, formatTime(st.RefreshTime.Time)))
		}
		return Plan{Report: r.finish(r.wait(st.RefreshTime.Time, valid))}
	case !valid:
		return refresh("no valid access token")
	case !o.Now.Before(refreshAt):
		return refresh("access token due for refresh")
	}
	// A fresh token: the status follows the Secret (it lags when a status write failed
	// after the Secret was written).
	if st.FailedRefreshAttempts == 0 {
		st.ExpiresAt = metaTime(o.Token.Expiry)
		st.LastRefreshTime = metaTime(o.Token.RefreshedAt)
		st.RefreshTime = metaTime(refreshAt)
	}
	return Plan{Report: r.finish(r.wait(refreshAt, valid))}
}

// keyReplacedWhileHealthy: only a service account's key Secret changed (same spec
// generation) while the grant is healthy. The new key is used at the scheduled refresh:
// many grants share one key Secret, and rotating it must not make them all request at once.
func keyReplacedWhileHealthy(o Observation, valid bool) bool {
	g := o.Grant
	return usesServiceAccount(g) && valid && g.GrantStatus().ObservedGeneration == g.GetGeneration() &&
		g.GrantStatus().FailedRefreshAttempts == 0 && meta.IsStatusConditionTrue(g.GrantStatus().Conditions, oauthv1alpha1.ConditionReady)
}

// Record is the report after a token request (or an attempt stopped by bad input).
func Record(o Observation, out Outcome) Report {
	g := o.Grant
	st := g.GrantStatus().DeepCopy()
	r := &reporter{o: o, st: st, events: slices.Clone(out.Events)}
	// Whatever happened answers these inputs and this manual request: a failure is not
	// retried until they change (permanent) or the backoff ends (transient).
	st.InputsFingerprint = out.Fingerprint
	if m := PendingManualRequest(g); m != "" {
		st.LastHandledRefreshRequest = m
	}
	r.securityEnabled()
	if out.Account != "" && (st.Account == nil || st.Account.Email != out.Account) {
		st.Account = &oauthv1alpha1.AccountStatus{Email: out.Account}
	}
	if id := out.Identity; id != nil && id.Sub != "" && (st.Account == nil || *st.Account != *id) {
		st.Account = id.DeepCopy()
	}
	if out.Problem == nil {
		st.ClientID = out.ClientID
	}
	switch {
	case out.Problem != nil && out.RefreshTokenMissing && o.ConsentEnabled && ConsentEligible(g):
		// A person authorizes through the consent link; the controller's link event says so.
		st.RefreshTime = nil
		r.setReady(metav1.ConditionFalse, oauthv1alpha1.ReasonConsentRequired, fmt.Sprintf("No refresh token yet (%s). The Google account's owner authorizes in a browser at the consent link (kubectl grantkeeper consent-link %s -n %s prints it for someone who may read Secrets here); the token is stored in Secret %q key %q.",
			out.Problem.Message, g.GetName(), g.GetNamespace(), g.RefreshTokenSecretName(), g.RefreshTokenKey()))
		return r.finish(0)
	case out.Problem != nil:
		st.RefreshTime = nil
		if r.setReady(metav1.ConditionFalse, out.Problem.Reason, out.Problem.Message) {
			r.event("Warning", out.Problem.Reason, "Refresh", out.Problem.Message)
		}
		return r.finish(0)
	case out.Failure != nil:
		return r.failed(*out.Failure)
	case len(out.ExcessScopes) > 0:
		return r.excess(out.ExcessScopes)
	}
	if out.Token.Rotated {
		// The rotated refresh token was stored: the Secret is writable.
		meta.RemoveStatusCondition(&st.Conditions, oauthv1alpha1.ConditionSecretsWritable)
	}
	return r.succeeded(out.Token)
}

type reporter struct {
	o      Observation
	st     *oauthv1alpha1.GrantStatus
	events []Event
}

func (r *reporter) refreshAt() time.Time {
	if !r.o.HaveToken {
		return time.Time{}
	}
	return schedule.RefreshTime(r.o.Token.RefreshedAt, r.o.Token.Expiry, refreshBefore(r.o.Grant), string(r.o.Grant.GetUID()))
}

// wait is the requeue for a look at `at`, or at expiry if that is sooner, so Ready turns
// False on time.
func (r *reporter) wait(at time.Time, valid bool) time.Duration {
	if valid && r.o.Token.Expiry.Before(at) {
		at = r.o.Token.Expiry
	}
	return schedule.Delay(r.o.Now, at)
}

func (r *reporter) succeeded(tok *Issued) Report {
	g, st, now := r.o.Grant, r.st, r.o.Now
	before := *r.o.Grant.GrantStatus()
	issued := now.Truncate(time.Second)
	st.ExpiresAt = metaTime(tok.Expiry)
	st.LastRefreshTime = metaTime(issued)
	st.RefreshTime = metaTime(schedule.RefreshTime(issued, tok.Expiry, refreshBefore(g), string(g.GetUID())))
	st.GrantedScopes = tok.Scopes
	st.RefreshTokenExpiresAt = nil
	if tok.RefreshTokenExpiresIn > 0 {
		st.RefreshTokenExpiresAt = metaTime(issued.Add(tok.RefreshTokenExpiresIn))
	}
	st.FailedRefreshAttempts = 0
	accepted := "The token endpoint accepted the refresh token."
	if usesServiceAccount(g) {
		accepted = "The token endpoint accepted the service account's assertion."
	}
	r.setCondition(oauthv1alpha1.ConditionRevoked, metav1.ConditionFalse, oauthv1alpha1.ReasonRefreshSucceeded, accepted)
	r.setReady(metav1.ConditionTrue, oauthv1alpha1.ReasonTokenValid, r.validMessage(tok.Expiry, ""))
	switch {
	case before.ExpiresAt == nil:
		r.event("Normal", "TokenIssued", "Refresh", fmt.Sprintf("First access token written to Secret %q, valid until %s", g.TargetSecretName(), formatTime(tok.Expiry)))
	case !meta.IsStatusConditionTrue(before.Conditions, oauthv1alpha1.ConditionReady) || before.FailedRefreshAttempts > 0:
		r.event("Normal", "Recovered", "Refresh", fmt.Sprintf("Refresh succeeded again; Secret %q holds a token valid until %s", g.TargetSecretName(), formatTime(tok.Expiry)))
	}
	return r.finish(schedule.Delay(now, st.RefreshTime.Time))
}

// excess reports a token that was not published because it carries scopes outside
// spec.scopes. Retrying cannot change what the refresh token was granted, so it is permanent
// (PermanentReason): a new consent (the consent link asks for spec.scopes only), a changed
// Secret or spec, or a manual refresh is what makes the next request.
func (r *reporter) excess(extra []string) Report {
	g, st, now := r.o.Grant, r.st, r.o.Now
	st.FailedRefreshAttempts++
	st.LastFailureTime = metaTime(now)
	st.RefreshTime = nil
	how := ReauthorizeCommand(g)
	if r.o.ConsentEnabled && ConsentEligible(g) {
		how = fmt.Sprintf("the account's owner consents again at status.consentURL (kubectl grantkeeper consent-link %s -n %s), or %s", g.GetName(), g.GetNamespace(), how)
	}
	msg := fmt.Sprintf("Google's answer carries scopes outside spec.scopes: %s. The token was not published (Secret %q keeps its previous token until it expires). The refresh token was granted more than this grant asks for (an older consent with include_granted_scopes, or another namespace's consent on the same OAuth client) and Google did not narrow it. Fix: obtain a refresh token for spec.scopes alone: %s. If the extra scopes remain, the account's owner removes the app at https://myaccount.google.com/permissions and consents again, or give this namespace its own OAuth client. No more requests are made until then.",
		strings.Join(extra, " "), g.TargetSecretName(), how)
	if google(g) == nil {
		msg = fmt.Sprintf("The provider's answer carries scopes outside spec.scopes: %s. The token was not published (Secret %q keeps its previous token until it expires). The refresh token was granted more than this grant asks for, and the provider did not narrow it to the scope sent. Fix: obtain a refresh token for spec.scopes alone (%s). No more requests are made until then.",
			strings.Join(extra, " "), g.TargetSecretName(), how)
	}
	r.setCondition(oauthv1alpha1.ConditionRevoked, metav1.ConditionFalse, oauthv1alpha1.ReasonRefreshSucceeded, "The token endpoint accepted the refresh token.")
	if r.setReady(metav1.ConditionFalse, oauthv1alpha1.ReasonExcessScopes, msg) {
		r.event("Warning", oauthv1alpha1.ReasonExcessScopes, "Refresh", "Token not published: it carries scopes outside spec.scopes: "+strings.Join(extra, " "))
	}
	return r.finish(0)
}

func (r *reporter) failed(f tokenerr.Failure) Report {
	g, st, now := r.o.Grant, r.st, r.o.Now
	st.FailedRefreshAttempts++
	st.LastFailureTime = metaTime(now)
	if f.Kind.Permanent() {
		// No retry: RefreshTime nil, no requeue; a change of input or a manual request wakes us.
		st.RefreshTime = nil
		reason := ReasonFor(f.Kind)
		switch {
		case usesServiceAccount(g) && f.Kind == tokenerr.InvalidGrant:
			r.setCondition(oauthv1alpha1.ConditionRevoked, metav1.ConditionTrue, reason, fmt.Sprintf("Google rejected the service account's assertion: %s", describe(f)))
			r.setReady(metav1.ConditionFalse, reason, fmt.Sprintf("Google rejected the service account's assertion (%s). Usual causes: the key was deleted or disabled (Invalid JWT Signature: put a current key in Secret %q key %q), spec.subject is not a user of the Workspace domain, or this node's clock is off. No more requests are made until the Secret or the spec changes.",
				f.Summary(), google(g).Spec.ServiceAccountKeySecretRef.Name, google(g).ServiceAccountKey()))
			r.event("Warning", reason, "Refresh", "Service account assertion rejected: "+f.Summary())
		case f.Kind == tokenerr.DelegationDenied:
			who := "its own access"
			if s := google(g).Spec.Subject; s != "" {
				who = fmt.Sprintf("acting as %q", s)
			}
			r.setReady(metav1.ConditionFalse, reason, fmt.Sprintf("Google refused the service account %s for scopes %s (%s). A Google Workspace super admin grants domain-wide delegation in the Admin console (Security > Access and data control > API controls > Domain-wide delegation) to the service account's client ID for exactly these scopes. No more requests are made until the Secret or the spec changes, or a manual refresh is requested.",
				who, strings.Join(g.Settings().Scopes, ","), f.Summary()))
			r.event("Warning", reason, "Refresh", "Domain-wide delegation refused: "+f.Summary())
		case f.Kind == tokenerr.InvalidGrant:
			r.setCondition(oauthv1alpha1.ConditionRevoked, metav1.ConditionTrue, reason, fmt.Sprintf("%s rejected the refresh token: %s", issuer(g), describe(f)))
			how := ReauthorizeCommand(g)
			if r.o.ConsentEnabled && ConsentEligible(g) {
				how = fmt.Sprintf("the account's owner opens the consent link (kubectl grantkeeper consent-link %s -n %s), or %s", g.GetName(), g.GetNamespace(), how)
			}
			r.setReady(metav1.ConditionFalse, reason, fmt.Sprintf("The refresh token was revoked, expired or superseded (%s). Obtain a new one with a new consent: %s (it stores the new token in Secret %q key %q); no more requests are made until then.",
				f.Summary(), how, g.RefreshTokenSecretName(), g.RefreshTokenKey()))
			r.event("Warning", reason, "Refresh", "Refresh token rejected: "+f.Summary())
		case f.Kind == tokenerr.InvalidClient && usesServiceAccount(g):
			r.setReady(metav1.ConditionFalse, reason, fmt.Sprintf("The token endpoint rejected the service account (%s). Check that the service account of the key in Secret %q key %q still exists and is enabled; no more requests are made until the Secret or the spec changes.", f.Summary(), google(g).Spec.ServiceAccountKeySecretRef.Name, google(g).ServiceAccountKey()))
			r.event("Warning", reason, "Refresh", "Service account rejected: "+f.Summary())
		case f.Kind == tokenerr.InvalidClient:
			r.setReady(metav1.ConditionFalse, reason, fmt.Sprintf("The token endpoint rejected the OAuth client (%s). Check the client id and secret in %s and that the refresh token was issued to that client; no more requests are made until a Secret or the spec changes.", f.Summary(), clientSource(g)))
			r.event("Warning", reason, "Refresh", "OAuth client rejected: "+f.Summary())
		case f.Code == "invalid_scope" && len(g.Settings().Scopes) > 0 && !usesServiceAccount(g):
			// The refresh asked for spec.scopes (scopes.RefreshRequests): the refresh token
			// was not granted them all. Only a consent to all of them helps.
			how := ReauthorizeCommand(g)
			if r.o.ConsentEnabled && ConsentEligible(g) {
				how = fmt.Sprintf("the account's owner consents at status.consentURL (kubectl grantkeeper consent-link %s -n %s), or %s", g.GetName(), g.GetNamespace(), how)
			}
			r.setCondition(oauthv1alpha1.ConditionScopesGranted, metav1.ConditionFalse, oauthv1alpha1.ReasonMissingScopes,
				fmt.Sprintf("%s refused a token for spec.scopes (%s): the refresh token was not granted all of %s (a consent that left some unticked, or scopes added to spec.scopes since), or one of them is not a valid scope.", issuer(g), f.Summary(), strings.Join(g.Settings().Scopes, " ")))
			r.setReady(metav1.ConditionFalse, reason, fmt.Sprintf("%s refused a token for spec.scopes (%s): the refresh token does not cover all of them, or one is not valid. Obtain a refresh token with a consent to all of them: %s. No more requests are made until the Secret or the spec changes.", issuer(g), f.Summary(), how))
			r.event("Warning", "RefreshFailed", "Refresh", "Token request refused: "+f.Summary())
		default:
			r.setReady(metav1.ConditionFalse, reason, fmt.Sprintf("The token endpoint refused the request (%s). Fix the cause, then change the grant or its Secrets or request a manual refresh.", f.Summary()))
			r.event("Warning", "RefreshFailed", "Refresh", "Token request refused: "+f.Summary())
		}
		return r.finish(0)
	}

	backoff := r.o.Backoff
	if backoff == (schedule.Backoff{}) {
		backoff = schedule.DefaultBackoff
	}
	retryAt := now.Add(backoff.Delay(st.FailedRefreshAttempts, f.RetryAfter, string(g.GetUID()))).Truncate(time.Second).Add(time.Second)
	st.RefreshTime = metaTime(retryAt)
	r.event("Warning", "RefreshFailed", "Refresh", fmt.Sprintf("Refresh attempt %d failed: %s; retrying at %s", st.FailedRefreshAttempts, f.Summary(), formatTime(retryAt)))
	valid := r.o.HaveToken && now.Before(r.o.Token.Expiry)
	if valid {
		r.setReady(metav1.ConditionTrue, oauthv1alpha1.ReasonTokenValid, r.validMessage(r.o.Token.Expiry, f.Summary()))
	} else {
		r.setReady(metav1.ConditionFalse, oauthv1alpha1.ReasonTokenEndpointError,
			fmt.Sprintf("No valid access token: refreshing failed %d time(s), last: %s. Retrying at %s.", st.FailedRefreshAttempts, f.Summary(), formatTime(retryAt)))
	}
	return r.finish(r.wait(retryAt, valid))
}

// finish derives what follows from the rest of the status and returns the report.
func (r *reporter) finish(requeue time.Duration) Report {
	g, st := r.o.Grant, r.st
	st.ObservedGeneration = g.GetGeneration()
	st.AccessTokenSecretName = g.TargetSecretName()
	r.setScopesCondition()
	if meta.FindStatusCondition(st.Conditions, oauthv1alpha1.ConditionReady) == nil {
		r.setCondition(oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonPending, "No access token has been obtained yet.")
	}
	r.setStalled()
	if !r.o.ConsentEnabled || NeedsConsent(g, st) == nil {
		// The controller mints a link only while a person is needed (controllers/grant_consent.go).
		st.Consent = ""
	}
	return Report{Status: *st, Events: r.events, RequeueAfter: requeue}
}

// setStalled derives Stalled from Ready (kstatus): True, with Ready's reason, when Ready
// records a failure that no retry fixes (PermanentReason) or a derived Secret's name taken by
// another Secret, so nothing happens until a person changes something; False otherwise.
func (r *reporter) setStalled() {
	ready := meta.FindStatusCondition(r.st.Conditions, oauthv1alpha1.ConditionReady)
	if ready.Status != metav1.ConditionTrue && (PermanentReason(ready.Reason) || ready.Reason == oauthv1alpha1.ReasonTargetSecretConflict) {
		r.setCondition(oauthv1alpha1.ConditionStalled, metav1.ConditionTrue, ready.Reason, "No progress until a person changes something: see the Ready condition.")
		return
	}
	r.setCondition(oauthv1alpha1.ConditionStalled, metav1.ConditionFalse, oauthv1alpha1.ReasonProgressing, "Refreshes or retries on its own.")
}

// Stalled reports whether a grant's status says it is stalled (the Stalled condition; for
// a status written before Stalled existed, derived from Ready as setStalled does).
func Stalled(st oauthv1alpha1.GrantStatus) bool {
	if c := meta.FindStatusCondition(st.Conditions, oauthv1alpha1.ConditionStalled); c != nil {
		return c.Status == metav1.ConditionTrue
	}
	ready := meta.FindStatusCondition(st.Conditions, oauthv1alpha1.ConditionReady)
	return ready != nil && ready.Status != metav1.ConditionTrue && PermanentReason(ready.Reason)
}

// setScopesCondition reports spec.scopes missing from the granted scopes; it is absent
// when spec.scopes is empty, and waits for the first token to know the granted scopes.
func (r *reporter) setScopesCondition() {
	g, st := r.o.Grant, r.st
	if len(g.Settings().Scopes) == 0 {
		meta.RemoveStatusCondition(&st.Conditions, oauthv1alpha1.ConditionScopesGranted)
		return
	}
	ready := meta.FindStatusCondition(st.Conditions, oauthv1alpha1.ConditionReady)
	if sg := meta.FindStatusCondition(st.Conditions, oauthv1alpha1.ConditionScopesGranted); sg != nil && sg.Status == metav1.ConditionFalse &&
		ready != nil && ready.Status == metav1.ConditionFalse && ready.Reason == oauthv1alpha1.ReasonTokenRequestRejected {
		// Google refused spec.scopes (failed, invalid_scope): that says more than the scopes
		// of the last token, until a request answers again.
		return
	}
	if st.ExpiresAt == nil {
		return
	}
	missing := scopes.Missing(g.Settings().Scopes, st.GrantedScopes)
	if len(missing) == 0 {
		r.setCondition(oauthv1alpha1.ConditionScopesGranted, metav1.ConditionTrue, oauthv1alpha1.ReasonAllScopesGranted, "Every scope in spec.scopes is granted.")
		return
	}
	r.setCondition(oauthv1alpha1.ConditionScopesGranted, metav1.ConditionFalse, oauthv1alpha1.ReasonMissingScopes,
		fmt.Sprintf("Not granted: %s. The user did not consent to them (users can grant scopes one by one); obtain a new refresh token with a consent that includes them.", strings.Join(missing, " ")))
}

// setReady sets Ready and reports whether its status or reason changed from the observed
// status, which is when events are worth sending (10,000 grants must not flood the event store).
func (r *reporter) setReady(status metav1.ConditionStatus, reason, msg string) bool {
	r.setCondition(oauthv1alpha1.ConditionReady, status, reason, msg)
	old := meta.FindStatusCondition(r.o.Grant.GrantStatus().Conditions, oauthv1alpha1.ConditionReady)
	return old == nil || old.Status != status || old.Reason != reason
}

func (r *reporter) setCondition(typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&r.st.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: r.o.Grant.GetGeneration(),
		LastTransitionTime: metav1.NewTime(r.o.Now.UTC().Truncate(time.Second)),
	})
}

func (r *reporter) event(typ, reason, action, note string) {
	r.events = append(r.events, Event{Type: typ, Reason: reason, Action: action, Note: note})
}

func (r *reporter) validMessage(expiry time.Time, lastFailure string) string {
	st := r.st
	msg := fmt.Sprintf("Secret %q holds an access token valid until %s.", r.o.Grant.TargetSecretName(), formatTime(expiry))
	if lastFailure != "" {
		return msg + fmt.Sprintf(" Refreshing failed %d time(s), last: %s; retrying at %s.", st.FailedRefreshAttempts, lastFailure, formatTime(st.RefreshTime.Time))
	}
	return msg + fmt.Sprintf(" Next refresh at %s.", formatTime(st.RefreshTime.Time))
}

// ReasonFor is the Ready reason a classified token-endpoint failure reports.
func ReasonFor(k tokenerr.Kind) string {
	switch k {
	case tokenerr.InvalidGrant:
		return oauthv1alpha1.ReasonInvalidGrant
	case tokenerr.InvalidClient:
		return oauthv1alpha1.ReasonInvalidClient
	case tokenerr.Rejected:
		return oauthv1alpha1.ReasonTokenRequestRejected
	case tokenerr.DelegationDenied:
		return oauthv1alpha1.ReasonDelegationDenied
	default:
		return oauthv1alpha1.ReasonTokenEndpointError
	}
}

// PermanentReason reports whether a not-Ready reason records a failure that retrying
// without a change cannot fix. It is derived from the failure classification
// (tokenerr.Kind.Permanent), from bad input (credentials.ProblemReasons) and from an unusable
// client object (ClientReasons), never listed twice.
func PermanentReason(reason string) bool {
	for _, k := range tokenerr.Kinds {
		if ReasonFor(k) == reason {
			return k.Permanent()
		}
	}
	return slices.Contains(credentials.ProblemReasons, reason) || slices.Contains(ClientReasons, reason) || slices.Contains(oauthv1alpha1.SecurityReasons, reason) ||
		reason == oauthv1alpha1.ReasonConsentRequired || reason == oauthv1alpha1.ReasonExcessScopes
}

// PendingManualRequest returns the refresh-requested-at annotation when it asks for a
// refresh that has not been handled: a valid RFC 3339 time, not older than the last refresh
// (the same second counts: refresh times are whole seconds), and not the request handled
// last (so a request whose refresh failed is not retried in a loop).
func PendingManualRequest(g oauthv1alpha1.Grant) string {
	v := g.GetAnnotations()[oauthv1alpha1.RefreshRequestedAtAnnotation]
	if v == "" || v == g.GrantStatus().LastHandledRefreshRequest {
		return ""
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return ""
	}
	if last := g.GrantStatus().LastRefreshTime; last != nil && t.Before(last.Time) {
		return ""
	}
	return v
}

// ReauthorizeCommand is how to obtain a new refresh token for g and store it where g reads
// it: for a Google grant the kubectl plugin's command; for another provider's grant, what to
// do (the plugin does not authorize those yet).
func ReauthorizeCommand(gr oauthv1alpha1.Grant) string {
	g := google(gr)
	if g == nil {
		return fmt.Sprintf("authorize again at the provider for spec.scopes and store the refresh token in Secret %q key %q", gr.RefreshTokenSecretName(), gr.RefreshTokenKey())
	}
	var b strings.Builder
	clientFlag := "--client-secret-file client_secret.json"
	switch g.ClientRefKind() {
	case oauthv1alpha1.KindGoogleOAuthClient:
		clientFlag = "--client " + g.Spec.ClientRef.Name
	case oauthv1alpha1.KindClusterGoogleOAuthClient:
		clientFlag = "--cluster-client " + g.Spec.ClientRef.Name
	}
	fmt.Fprintf(&b, "kubectl grantkeeper authorize %s -n %s %s --scopes ", g.Name, g.Namespace, clientFlag)
	scopes := g.Spec.Scopes
	if len(scopes) == 0 {
		scopes = g.Status.GrantedScopes
	}
	if len(scopes) == 0 {
		b.WriteString("SCOPE[,SCOPE...]")
	} else {
		b.WriteString(strings.Join(scopes, ","))
	}
	if g.UsesAuthorizedUser() {
		fmt.Fprintf(&b, " -o adc --secret-name %s", g.Spec.AuthorizedUserSecretRef.Name)
		return b.String()
	}
	if n := g.RefreshTokenSecretName(); n != g.Name+"-refresh-token" {
		fmt.Fprintf(&b, " --secret-name %s", n)
	}
	if n := g.ClientSecretName(); g.Spec.ClientRef == nil && n != g.Name+"-oauth-client" {
		fmt.Fprintf(&b, " --client-secret-name %s", n)
	}
	return b.String()
}

// clientSource says where the grant's OAuth client comes from, for messages.
func clientSource(gr oauthv1alpha1.Grant) string {
	if og, ok := gr.(*oauthv1alpha1.OAuthGrant); ok {
		return fmt.Sprintf("%s %q (its client id, and its secret or key)", og.ClientRefKind(), og.Spec.ClientRef.Name)
	}
	g := google(gr)
	if ref := g.Spec.ClientRef; ref != nil {
		return fmt.Sprintf("the Secret of %s %q", g.ClientRefKind(), ref.Name)
	}
	return fmt.Sprintf("Secret %q", g.ClientSecretName())
}

func refreshBefore(g oauthv1alpha1.Grant) time.Duration {
	if g.Settings().RefreshBefore != nil {
		return g.Settings().RefreshBefore.Duration
	}
	return 0
}

func describe(f tokenerr.Failure) string {
	if f.Description != "" {
		return fmt.Sprintf("%s (%s)", f.Description, f.Code)
	}
	return f.Summary()
}

func metaTime(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
