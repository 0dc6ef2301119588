package metrics

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
)

// clientIDs finds the OAuth client id of each grant for grantkeeper_grant_info. A client
// object carries it in its status (cached). A client Secret's data is not cached (the
// manager watches Secrets as metadata only), so the Secret is read live once and its id
// remembered by the Secret's UID and resourceVersion, which the metadata watch tells: a
// scrape reads a Secret again only after it changed. Only the id is kept, never the secret.
type clientIDs struct {
	mu sync.Mutex
	m  map[types.NamespacedName]recordedID
}

type recordedID struct {
	uid, version, id string
}

// liveReadBudget bounds the time one scrape spends reading Secrets it has not seen at their
// current version: with thousands of grants each naming its own client Secret, the first
// scrapes would otherwise take longer than Prometheus waits. Ids not read by then are
// reported empty and read by the following scrapes.
const liveReadBudget = 2 * time.Second

// lookup returns the grant's client id, or "" when it is unknown (a service-account grant,
// a missing or malformed Secret, a namespace not watched yet, no readers, or a Secret not
// read yet because this scrape's live reads stopped at liveUntil).
func (c *clientIDs) lookup(ctx context.Context, r Readers, g *oauthv1alpha1.GoogleOAuthGrant, seen map[types.NamespacedName]bool, liveUntil time.Time) string {
	switch {
	case g.Spec.ClientRef != nil:
		return clientObjectID(ctx, r.Cache, g)
	case g.UsesServiceAccount() || r.SecretMeta == nil || r.Live == nil:
		return ""
	}
	key := types.NamespacedName{Namespace: g.Namespace, Name: g.ClientSecretName()}
	if key.Name == "" {
		return ""
	}
	seen[key] = true
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := r.SecretMeta.Get(ctx, key, meta, client.UnsafeDisableDeepCopy); err != nil {
		return ""
	}
	c.mu.Lock()
	known, ok := c.m[key]
	c.mu.Unlock()
	if ok && known.uid == string(meta.UID) && known.version == meta.ResourceVersion {
		return known.id
	}
	if time.Now().After(liveUntil) {
		return ""
	}
	var s corev1.Secret
	if err := r.Live.Get(ctx, key, &s); err != nil {
		return ""
	}
	id := secretClientID(g, &s)
	c.mu.Lock()
	if c.m == nil {
		c.m = map[types.NamespacedName]recordedID{}
	}
	c.m[key] = recordedID{uid: string(s.UID), version: s.ResourceVersion, id: id}
	c.mu.Unlock()
	return id
}

// forgetExcept drops the ids of Secrets no grant named in the last scrape.
func (c *clientIDs) forgetExcept(seen map[types.NamespacedName]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if !seen[k] {
			delete(c.m, k)
		}
	}
}

// secretClientID parses the client id out of the grant's client (or authorized-user) Secret.
func secretClientID(g *oauthv1alpha1.GoogleOAuthGrant, s *corev1.Secret) string {
	if g.UsesAuthorizedUser() {
		cl, _, p := credentials.ParseAuthorizedUser(s.Name, s.Data, g.RefreshTokenKey())
		if p != nil {
			return ""
		}
		return cl.ID
	}
	cl, p := credentials.ParseClient(s.Name, s.Data)
	if p != nil {
		return ""
	}
	return cl.ID
}

// clientObjectID is the status.clientID of the client object a grant's spec.clientRef names.
func clientObjectID(ctx context.Context, cache client.Reader, g *oauthv1alpha1.GoogleOAuthGrant) string {
	if g.ClientRefKind() == oauthv1alpha1.KindClusterGoogleOAuthClient {
		var c oauthv1alpha1.ClusterGoogleOAuthClient
		if err := cache.Get(ctx, types.NamespacedName{Name: g.Spec.ClientRef.Name}, &c, client.UnsafeDisableDeepCopy); err != nil {
			return ""
		}
		return c.Status.ClientID
	}
	var c oauthv1alpha1.GoogleOAuthClient
	if err := cache.Get(ctx, types.NamespacedName{Namespace: g.Namespace, Name: g.Spec.ClientRef.Name}, &c, client.UnsafeDisableDeepCopy); err != nil {
		return ""
	}
	return c.Status.ClientID
}
