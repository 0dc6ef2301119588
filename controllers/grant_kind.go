package controllers

import (
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// grantKind is what the reconciler knows of the grant kind it reconciles: everything else
// goes through oauthv1alpha1.Grant (the object, the shared settings, the status) and
// grantinputs (the kind's credentials).
type grantKind struct {
	name      string
	newObject func() oauthv1alpha1.Grant
	newList   func() client.ObjectList
	items     func(client.ObjectList) []oauthv1alpha1.Grant
}

var (
	googleGrants = grantKind{name: oauthv1alpha1.KindGoogleOAuthGrant,
		newObject: func() oauthv1alpha1.Grant { return &oauthv1alpha1.GoogleOAuthGrant{} },
		newList:   func() client.ObjectList { return &oauthv1alpha1.GoogleOAuthGrantList{} },
		items: func(l client.ObjectList) []oauthv1alpha1.Grant {
			return grantsOf(l.(*oauthv1alpha1.GoogleOAuthGrantList).Items)
		}}
	providerGrants = grantKind{name: oauthv1alpha1.KindOAuthGrant,
		newObject: func() oauthv1alpha1.Grant { return &oauthv1alpha1.OAuthGrant{} },
		newList:   func() client.ObjectList { return &oauthv1alpha1.OAuthGrantList{} },
		items: func(l client.ObjectList) []oauthv1alpha1.Grant {
			return grantsOf(l.(*oauthv1alpha1.OAuthGrantList).Items)
		}}
)

// grantsOf are a list's items as Grants (pointers into the list).
func grantsOf[T any, P interface {
	*T
	oauthv1alpha1.Grant
}](items []T) []oauthv1alpha1.Grant {
	out := make([]oauthv1alpha1.Grant, len(items))
	for i := range items {
		out[i] = P(&items[i])
	}
	return out
}

// copyGrant is a deep copy of g.
func copyGrant(g oauthv1alpha1.Grant) oauthv1alpha1.Grant {
	return g.DeepCopyObject().(oauthv1alpha1.Grant)
}

// googleGrant is g as a GoogleOAuthGrant, nil for another kind (Google-only features:
// consent links for now, the security-event index, service-account keys).
func googleGrant(g oauthv1alpha1.Grant) *oauthv1alpha1.GoogleOAuthGrant {
	gg, _ := g.(*oauthv1alpha1.GoogleOAuthGrant)
	return gg
}

// subjectOf is a Google grant's spec.subject (domain-wide delegation), "" otherwise.
func subjectOf(g oauthv1alpha1.Grant) string {
	if gg := googleGrant(g); gg != nil {
		return gg.Spec.Subject
	}
	return ""
}
