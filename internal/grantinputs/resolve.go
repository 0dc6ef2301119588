package grantinputs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/plan"
)

// Caches is what Resolve reads: the manager's caches, never the API server.
type Caches interface {
	// SecretMeta is a Secret's metadata, nil when absent.
	SecretMeta(ctx context.Context, ns, name string) (*metav1.ObjectMeta, error)
	// SecretsSynced reports whether the namespace's Secrets are watched and listed.
	SecretsSynced(ns string) bool
	// Client is the client object of kind named key (GetClient), nil when absent.
	Client(ctx context.Context, kind string, key types.NamespacedName) (*ClientObject, error)
	// NamespaceLabels are a namespace's labels (nil when it is not found).
	NamespaceLabels(ctx context.Context, ns string) (map[string]string, error)
}

// Resolved is a grant's inputs as the caches show them.
type Resolved struct {
	Form Form
	// Metas are the metadata of Form.Secrets (nil: absent).
	Metas map[string]*metav1.ObjectMeta
	// ClientState is what plan reads of the client object; nil when the form names none.
	ClientState *plan.ClientState
	// Client is the client object, when found and admitting the grant's namespace.
	Client *ClientObject
	// clientMeta is the client object's Secret's metadata (nil: absent or not needed).
	clientMeta *metav1.ObjectMeta
	// Fingerprint identifies the spec and the versions of every Secret read (plan's
	// two-part form when a client object supplies the client).
	Fingerprint string
	// RefreshTokenAbsent: the caches do not show the Secret the form keeps its refresh
	// token in.
	RefreshTokenAbsent bool
	// Wait: the client's Secret's namespace is not watched yet; look again shortly.
	Wait bool
}

// Options are the manager's settings Resolve needs.
type Options struct {
	// NamespacesOnly: the manager reads only the namespaces it manages (--namespaces), so
	// no cluster-scoped clients.
	NamespacesOnly bool
}

// Resolve reads a grant's inputs from the caches: the form's Secrets' versions, the client
// object its form names (whether it admits the grant's namespace, its Ready, its Secret's
// version) and the fingerprint of all of them.
func Resolve(ctx context.Context, g oauthv1alpha1.Grant, c Caches, opts Options) (Resolved, error) {
	f := Of(g)
	res := Resolved{Form: f, Metas: map[string]*metav1.ObjectMeta{}}
	for _, name := range f.Secrets() {
		m, err := c.SecretMeta(ctx, g.GetNamespace(), name)
		if err != nil {
			return res, err
		}
		res.Metas[name] = m
	}
	res.Fingerprint = fingerprint(g.GetGeneration(), f, res.Metas)
	if l := f.RefreshToken(); l != nil {
		res.RefreshTokenAbsent = res.Metas[l.Secret] == nil
	}
	ref := f.ClientRef()
	if ref == nil {
		return res, nil
	}
	if err := res.resolveClient(ctx, g, *ref, c, opts); err != nil || res.Wait {
		return res, err
	}
	res.Fingerprint = plan.JoinFingerprint(res.Fingerprint, clientFingerprint(res.Client, res.clientMeta))
	return res, nil
}

// resolveClient finds the client object ref names, whether it admits namespace ns, and its
// Secret's metadata.
func (res *Resolved) resolveClient(ctx context.Context, g oauthv1alpha1.Grant, ref ClientRef, c Caches, opts Options) error {
	ns := g.GetNamespace()
	st := &plan.ClientState{Kind: ref.Kind, Name: ref.Name}
	res.ClientState = st
	if oauthv1alpha1.ClusterScopedClient(ref.Kind) && opts.NamespacesOnly {
		st.Found, st.NotAllowedWhy = true, "this grantkeeper manages only some namespaces (--namespaces) and does not read cluster-scoped clients; use a "+oauthv1alpha1.NamespacedClientKind(ref.Kind)+" in this namespace"
		return nil
	}
	co, err := c.Client(ctx, ref.Kind, types.NamespacedName{Namespace: ns, Name: ref.Name})
	if err != nil || co == nil {
		return err
	}
	res.Client = co
	st.Found, st.Allowed = true, true
	if co.Cluster != nil {
		labels, err := c.NamespaceLabels(ctx, ns)
		if err != nil {
			return err
		}
		st.Allowed = plan.NamespaceAllowed(*co.Cluster, ns, labels)
	}
	st.Ready = co.Ready
	if why := revocationRefused(g, co); why != "" {
		st.Allowed, st.NotAllowedWhy = false, why
		return nil
	}
	if !st.Allowed || co.Secret.Namespace == "" || co.Secret.Name == "" {
		return nil
	}
	if !c.SecretsSynced(co.Secret.Namespace) {
		res.Wait = true
		return nil
	}
	res.clientMeta, err = c.SecretMeta(ctx, co.Secret.Namespace, co.Secret.Name)
	return err
}

// fingerprint identifies the spec generation and the versions of the form's Secrets (metas,
// nil for absent ones). It holds no secret material: only UIDs and resourceVersions are
// hashed. Its format is stored in status.inputsFingerprint: changing it makes every grant
// refresh once after an upgrade.
func fingerprint(generation int64, f Form, metas map[string]*metav1.ObjectMeta) string {
	h := sha256.New()
	fmt.Fprintf(h, "gen=%d;", generation)
	for _, name := range f.Secrets() {
		if m := metas[name]; m != nil {
			fmt.Fprintf(h, "%s=%s/%s;", name, m.UID, m.ResourceVersion)
		} else {
			fmt.Fprintf(h, "%s=absent;", name)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// revocationRefused says why a grant with deletionPolicy Revoke cannot use a provider client
// that has no revocation endpoint ("" when it can): refused up front rather than found out
// when the grant is deleted.
func revocationRefused(g oauthv1alpha1.Grant, co *ClientObject) string {
	if co.Provider == nil || co.Ready == nil || co.Ready.Status != metav1.ConditionTrue ||
		g.Settings().DeletionPolicy != oauthv1alpha1.DeletionPolicyRevoke || co.Provider.Endpoints.RevocationURL != "" {
		return ""
	}
	return "its provider has no revocation endpoint (RFC 7009), so spec.deletionPolicy Revoke cannot be honoured; set the client's spec.endpoints.revocationURL, or use deletionPolicy Retain"
}
