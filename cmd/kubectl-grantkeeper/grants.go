package main

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// grantRef is a command's grant argument: NAME (a GoogleOAuthGrant, or an OAuthGrant when
// no GoogleOAuthGrant has that name), or KIND/NAME as kubectl spells kinds
// (googleoauthgrant, gog, oauthgrant, oag, with or without the group).
type grantRef struct {
	kind string // "" when not given
	name string
}

func parseGrantRef(arg string) (grantRef, error) {
	kind, name, ok := strings.Cut(arg, "/")
	if !ok {
		return grantRef{name: arg}, nil
	}
	switch strings.TrimSuffix(strings.ToLower(kind), ".oauth.grantkeeper.dev") {
	case "googleoauthgrant", "googleoauthgrants", "gog":
		return grantRef{kind: oauthv1alpha1.KindGoogleOAuthGrant, name: name}, nil
	case "oauthgrant", "oauthgrants", "oag":
		return grantRef{kind: oauthv1alpha1.KindOAuthGrant, name: name}, nil
	}
	return grantRef{}, fmt.Errorf("%q: the kind must be googleoauthgrant (gog) or oauthgrant (oag)", kind)
}

// getGrant reads the grant ref names in namespace ns.
func getGrant(ctx context.Context, c client.Client, ns string, ref grantRef) (oauthv1alpha1.Grant, error) {
	key := types.NamespacedName{Namespace: ns, Name: ref.name}
	if ref.kind == oauthv1alpha1.KindOAuthGrant {
		g := &oauthv1alpha1.OAuthGrant{}
		return g, c.Get(ctx, key, g)
	}
	g := &oauthv1alpha1.GoogleOAuthGrant{}
	err := c.Get(ctx, key, g)
	if err == nil || ref.kind != "" || !apierrors.IsNotFound(err) {
		return g, err
	}
	og := &oauthv1alpha1.OAuthGrant{}
	if oerr := c.Get(ctx, key, og); oerr == nil {
		return og, nil
	}
	return g, err
}

// resourceName is how kubectl names a grant: googleoauthgrant.oauth.grantkeeper.dev/NAME.
func resourceName(g oauthv1alpha1.Grant) string {
	return strings.ToLower(g.GrantKind()) + "." + oauthv1alpha1.GroupVersion.Group + "/" + g.GetName()
}
