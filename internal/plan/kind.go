package plan

import oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"

// google is g as a GoogleOAuthGrant, nil for another kind: the rules and messages only a
// Google grant has (service-account keys, gcloud's ADC, the plugin's authorize command,
// Google's own pages) read it here.
func google(g oauthv1alpha1.Grant) *oauthv1alpha1.GoogleOAuthGrant {
	gg, _ := g.(*oauthv1alpha1.GoogleOAuthGrant)
	return gg
}

// usesServiceAccount: a Google grant with a service-account key.
func usesServiceAccount(g oauthv1alpha1.Grant) bool {
	gg := google(g)
	return gg != nil && gg.UsesServiceAccount()
}

// issuer names who issues g's tokens, for messages.
func issuer(g oauthv1alpha1.Grant) string {
	if google(g) != nil {
		return "Google"
	}
	return "The provider"
}
