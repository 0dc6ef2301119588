package provider

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/oauthdiscovery"
	"github.com/grantkeeper/grantkeeper/internal/secretwatch"
)

// Options of SetupWithManager.
type Options struct {
	// NamespacesOnly: the manager watches listed namespaces only, so no cluster-scoped kind.
	NamespacesOnly     bool
	SkipNameValidation bool
}

// SetupWithManager runs a controller per client kind (ClusterOAuthClient only when the
// manager watches every namespace), woken by the client objects and by changes to the
// Secrets they name. r is the template of both (Client, APIReader, Recorder, Clock...).
//
// The Secrets are watched by a secretwatch.Watcher of its own, metadata only and only in
// the namespaces client Secrets are in. (The grant controller's watcher is in
// controllers/grant_setup.go, which others are changing now: sharing one watcher is for the
// OAuthGrant reconciler's change, issue 33's credential home.)
func SetupWithManager(mgr ctrl.Manager, r ClientReconciler, opts Options) error {
	md, err := metadata.NewForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return err
	}
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	if r.Discovery == nil {
		// One Fetcher, so its connections are reused across reconciles.
		r.Discovery = &oauthdiscovery.Fetcher{Egress: r.Egress}
	}
	kinds := []client.Object{&oauthv1alpha1.OAuthClient{}}
	if !opts.NamespacesOnly {
		kinds = append(kinds, &oauthv1alpha1.ClusterOAuthClient{})
	}
	var channels []chan event.TypedGenericEvent[*metav1.PartialObjectMetadata]
	for range kinds {
		channels = append(channels, make(chan event.TypedGenericEvent[*metav1.PartialObjectMetadata], 256))
	}
	watcher := secretwatch.New(md, "", keepName, func(ns, name string) {
		m := &metav1.PartialObjectMetadata{}
		m.Namespace, m.Name = ns, name
		for _, ch := range channels {
			ch <- event.TypedGenericEvent[*metav1.PartialObjectMetadata]{Object: m}
		}
	})
	if err := mgr.Add(watcher); err != nil {
		return err
	}
	c := mgr.GetClient()
	for i, obj := range kinds {
		cr := r
		cr.SecretMeta = watcher
		cr.kind = oauthv1alpha1.KindOAuthClient
		if _, ok := obj.(*oauthv1alpha1.ClusterOAuthClient); ok {
			cr.kind = oauthv1alpha1.KindClusterOAuthClient
		}
		mapSecret := func(ctx context.Context, s *metav1.PartialObjectMetadata) []reconcile.Request {
			return clientsOfSecret(ctx, c, cr.kind, types.NamespacedName{Namespace: s.Namespace, Name: s.Name}, r.ManagerNamespace)
		}
		if err := ctrl.NewControllerManagedBy(mgr).
			Named(strings.ToLower(cr.kind)).
			For(obj, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
			WatchesRawSource(source.Channel(channels[i], handler.TypedEnqueueRequestsFromMapFunc(mapSecret))).
			WithOptions(controller.Options{MaxConcurrentReconciles: 2, SkipNameValidation: &opts.SkipNameValidation}).
			Complete(&cr); err != nil {
			return err
		}
	}
	return nil
}

// keepName trims a watched Secret's metadata to its identity and version.
func keepName(obj any) (any, error) {
	if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
		m.ObjectMeta = metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion}
		m.TypeMeta = metav1.TypeMeta{Kind: "Secret", APIVersion: corev1.SchemeGroupVersion.String()}
	}
	return obj, nil
}

// clientsOfSecret are the cached client objects of kind that read Secret key. Client
// objects are few: a list, not an index.
func clientsOfSecret(ctx context.Context, c client.Reader, kind string, key types.NamespacedName, managerNamespace string) []reconcile.Request {
	var reqs []reconcile.Request
	if kind == oauthv1alpha1.KindClusterOAuthClient {
		var list oauthv1alpha1.ClusterOAuthClientList
		if err := c.List(ctx, &list); err != nil {
			return nil
		}
		for _, o := range list.Items {
			for _, ref := range []struct{ ns, name string }{refOf(o.Spec.ClientSecretRef), keyRefOf(o.Spec.PrivateKeySecretRef)} {
				if ref.name == key.Name && orDefault(ref.ns, managerNamespace) == key.Namespace {
					reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: o.Name}})
				}
			}
		}
		return reqs
	}
	var list oauthv1alpha1.OAuthClientList
	if err := c.List(ctx, &list, client.InNamespace(key.Namespace)); err != nil {
		return nil
	}
	for _, o := range list.Items {
		if (o.Spec.ClientSecretRef != nil && o.Spec.ClientSecretRef.Name == key.Name) || (o.Spec.PrivateKeySecretRef != nil && o.Spec.PrivateKeySecretRef.Name == key.Name) {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.Namespace, Name: o.Name}})
		}
	}
	return reqs
}

func refOf(r *oauthv1alpha1.ClusterOAuthClientSecretReference) struct{ ns, name string } {
	if r == nil {
		return struct{ ns, name string }{}
	}
	return struct{ ns, name string }{r.Namespace, r.Name}
}

func keyRefOf(r *oauthv1alpha1.ClusterPrivateKeySecretReference) struct{ ns, name string } {
	if r == nil {
		return struct{ ns, name string }{}
	}
	return struct{ ns, name string }{r.Namespace, r.Name}
}
