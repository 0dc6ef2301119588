package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/derivedsecret"
	"github.com/grantkeeper/grantkeeper/internal/secretwatch"
)

// secretNameIndex indexes grants by every Secret name they refer to (client, refresh token,
// and the derived Secret's name), to map a Secret event to the grants that care.
const secretNameIndex = "grantkeeper.secretNames"

func managedSelector(op selection.Operator) labels.Selector {
	req, err := labels.NewRequirement(oauthv1alpha1.ManagedByLabel, op, []string{oauthv1alpha1.ManagedByValue})
	if err != nil {
		panic(err)
	}
	return labels.NewSelector().Add(*req)
}

// CacheOptions are the manager's cache options: of all Secrets it caches only those
// grantkeeper writes (labelled managed-by=grantkeeper). Caching every Secret in a large
// cluster costs gigabytes (cert-manager #4722). No namespaces means all of them.
func CacheOptions(namespaces ...string) cache.Options {
	return cache.Options{
		DefaultNamespaces: namespaceConfig(namespaces),
		// managedFields are never read here and are often the largest part of an object.
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}:                  {Label: managedSelector(selection.Equals), Transform: trimDerivedSecret},
			&oauthv1alpha1.GoogleOAuthGrant{}: {Transform: trimGrant},
		},
	}
}

// trimDerivedSecret keeps of a derived Secret what decisions read (derivedsecret.Summarize).
// Publishing replaces a derived Secret's data wholesale, so nothing dropped is written back.
func trimDerivedSecret(obj any) (any, error) {
	if s, ok := obj.(*corev1.Secret); ok {
		s.ManagedFields = nil
		derivedsecret.Summarize(s)
	}
	return obj, nil
}

// trimGrant drops what no decision reads and can be large: managedFields and kubectl's
// last-applied-configuration (a copy of the whole object). Grants are written only with
// patches of the fields we own (status, finalizers), so nothing dropped is written back.
func trimGrant(obj any) (any, error) {
	if g, ok := obj.(*oauthv1alpha1.GoogleOAuthGrant); ok {
		g.ManagedFields = nil
		delete(g.Annotations, corev1.LastAppliedConfigAnnotation)
	}
	return obj, nil
}

func namespaceConfig(namespaces []string) map[string]cache.Config {
	if len(namespaces) == 0 {
		return nil
	}
	m := make(map[string]cache.Config, len(namespaces))
	for _, ns := range namespaces {
		m[ns] = cache.Config{}
	}
	return m
}

// keepReferenceFields trims a cached Secret's metadata to what the controller reads: identity,
// version (for the inputs fingerprint) and owner references (to spot name collisions).
// Annotations such as kubectl's last-applied-configuration and managedFields can hold the
// whole Secret, data included; dropping them keeps tens of thousands of Secrets cheap.
func keepReferenceFields(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	m.ObjectMeta = metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		OwnerReferences: m.OwnerReferences, DeletionTimestamp: m.DeletionTimestamp,
	}
	return m, nil
}

// Options tune the controller.
type Options struct {
	MaxConcurrentReconciles int
	// SkipNameValidation allows several managers in one process (tests).
	SkipNameValidation bool
}

// SetupWithManager registers the controller. Besides the manager's cache (grants, and the
// Secrets grantkeeper labels) it watches the metadata of the other Secrets, only in
// namespaces that hold grants: enough to notice that a referenced Secret appeared or changed
// (and to spot a name collision) without holding Secret data, or anything about Secrets in
// namespaces without grants, in memory.
func (r *GoogleOAuthGrantReconciler) SetupWithManager(mgr ctrl.Manager, opts Options) error {
	mdClient, err := metadata.NewForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return err
	}
	// Secret events from the metadata watches reach the controller through a channel.
	secretEvents := make(chan event.TypedGenericEvent[*metav1.PartialObjectMetadata], 1024)
	watcher := secretwatch.New(mdClient, managedSelector(selection.NotEquals).String(), keepReferenceFields, func(ns, name string) {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		m.Namespace, m.Name = ns, name
		secretEvents <- event.TypedGenericEvent[*metav1.PartialObjectMetadata]{Object: m}
	})
	if err := mgr.Add(watcher); err != nil {
		return err
	}
	if r.SecretMeta == nil {
		r.SecretMeta = watcher
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}

	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &oauthv1alpha1.GoogleOAuthGrant{}, secretNameIndex, func(o client.Object) []string {
		g := o.(*oauthv1alpha1.GoogleOAuthGrant)
		return append(userSecretNames(g), g.TargetSecretName())
	}); err != nil {
		return err
	}

	mapSecret := func(ctx context.Context, s *metav1.PartialObjectMetadata) []reconcile.Request {
		var grants oauthv1alpha1.GoogleOAuthGrantList
		if err := mgr.GetClient().List(ctx, &grants, client.InNamespace(s.Namespace), client.MatchingFields{secretNameIndex: s.Name}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing grants for Secret", "secret", s.Name)
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(grants.Items))
		for _, g := range grants.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: g.Namespace, Name: g.Name}})
		}
		return reqs
	}

	return ctrl.NewControllerManagedBy(mgr).
		Named("googleoauthgrant").
		// Status writes are ours; react to spec changes and to the manual-refresh annotation.
		For(&oauthv1alpha1.GoogleOAuthGrant{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&corev1.Secret{}).
		WatchesRawSource(source.Channel(secretEvents, handler.TypedEnqueueRequestsFromMapFunc(mapSecret))).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(opts.MaxConcurrentReconciles, 1), SkipNameValidation: &opts.SkipNameValidation}).
		Complete(r)
}
