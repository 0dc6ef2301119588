package plan

import (
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// Consent needs, for messages and events.
const (
	NeedNoRefreshToken = "no refresh token yet"
	NeedRevoked        = "the refresh token was revoked"
	NeedMissingScopes  = "scopes are missing"
	NeedExcessScopes   = "its tokens carry scopes outside spec.scopes"
)

// ConsentNeed is why a grant needs a person, and what the consent link asks for: always all
// of spec.scopes. Links never send include_granted_scopes (issue 28): with an OAuth client
// shared by namespaces, that would merge another namespace's scopes into this grant's.
type ConsentNeed struct {
	Why    string
	Scopes []string
}

// ConsentEligible reports whether a grant can be repaired by a consent link: it names its
// scopes, and a refresh-token Secret with an OAuth client (clientSecretRef or clientRef);
// not the authorized-user (ADC) or service-account forms.
func ConsentEligible(gr oauthv1alpha1.Grant) bool {
	// Consent links for other providers' grants are not built yet (issue 30).
	g := google(gr)
	return g != nil && len(g.Settings().Scopes) > 0 && g.Spec.RefreshTokenSecretRef != nil && !g.UsesAuthorizedUser() && !g.UsesServiceAccount() &&
		(g.Spec.ClientSecretRef != nil || g.Spec.ClientRef != nil)
}

// NeedsConsent says whether an eligible grant with status st needs a person, in order:
// no refresh token (Ready reason ConsentRequired), revoked (any Revoked=True), tokens with
// scopes outside spec.scopes (Ready reason ExcessScopes), missing scopes (ScopesGranted=False
// with MissingScopes). The link asks for all of spec.scopes. nil: no person is needed.
func NeedsConsent(g oauthv1alpha1.Grant, st *oauthv1alpha1.GrantStatus) *ConsentNeed {
	if !ConsentEligible(g) {
		return nil
	}
	ready := meta.FindStatusCondition(st.Conditions, oauthv1alpha1.ConditionReady)
	if ready != nil && (slices.Contains(ClientReasons, ready.Reason) || ready.Reason == oauthv1alpha1.ReasonInvalidClient || ready.Reason == oauthv1alpha1.ReasonInvalidClientSecret) {
		// The client itself is unusable: consenting to it cannot help.
		return nil
	}
	switch {
	case ready != nil && ready.Reason == oauthv1alpha1.ReasonConsentRequired:
		return &ConsentNeed{Why: NeedNoRefreshToken, Scopes: slices.Clone(g.Settings().Scopes)}
	case meta.IsStatusConditionTrue(st.Conditions, oauthv1alpha1.ConditionRevoked):
		return &ConsentNeed{Why: NeedRevoked, Scopes: slices.Clone(g.Settings().Scopes)}
	case ready != nil && ready.Reason == oauthv1alpha1.ReasonExcessScopes:
		return &ConsentNeed{Why: NeedExcessScopes, Scopes: slices.Clone(g.Settings().Scopes)}
	}
	sg := meta.FindStatusCondition(st.Conditions, oauthv1alpha1.ConditionScopesGranted)
	if sg == nil || sg.Status != metav1.ConditionFalse || sg.Reason != oauthv1alpha1.ReasonMissingScopes {
		return nil
	}
	return &ConsentNeed{Why: NeedMissingScopes, Scopes: slices.Clone(g.Settings().Scopes)}
}

// consentSwitched: the grant reported a missing Secret before consent links were turned on
// (or ConsentRequired before they were turned off). Reading the inputs again gives it the
// reason, and the link, that fit now, without a token request while the refresh token is
// still missing. With links on, a missing refresh-token Secret is reported as
// ConsentRequired, so SecretNotFound with the refresh-token Secret absent from the caches
// was recorded with links off; a grant whose client Secret is missing (which a consent
// cannot fix) is not read again.
func consentSwitched(o Observation, ready *metav1.Condition) bool {
	switch ready.Reason {
	case oauthv1alpha1.ReasonConsentRequired:
		return !o.ConsentEnabled
	case oauthv1alpha1.ReasonSecretNotFound:
		return o.ConsentEnabled && ConsentEligible(o.Grant) && o.RefreshTokenAbsent
	case oauthv1alpha1.ReasonSecretKeyMissing:
		// Which Secret lacks its key the caches cannot tell (they hold metadata): read again
		// on each wake while links are on (a stalled grant is woken only by changes).
		return o.ConsentEnabled && ConsentEligible(o.Grant)
	}
	return false
}
