package controllers

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	toolscache "k8s.io/client-go/tools/cache"
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
	"github.com/grantkeeper/grantkeeper/internal/grantinputs"
	"github.com/grantkeeper/grantkeeper/internal/secretwatch"
)

// secretNameIndex indexes grants by the Secrets they read (client, refresh token, and a
// derived Secret's name set in spec.accessTokenSecretName), to map a Secret event to the
// grants that care. client-go keeps a set of objects per indexed value, and a set costs
// about 400 bytes however few it holds, so the Secrets a grant usually has to itself (its
// refresh token, authorized-user or key Secret, an explicit derived name) are filed under
// one of secretNameBuckets buckets of their name, and a lookup keeps the bucket's grants
// that do name the Secret; the client Secret, which many grants often share, is filed under
// its name, so a bucket never holds those thousands. A default derived name
// (defaultTargetSuffix) is not indexed: the grant is found from the name itself
// (grantOfDefaultTarget).
const secretNameIndex = "grantkeeper.secretNames"

// secretNameBuckets: a few grants per bucket at 10,000 grants in a namespace; at most this
// many sets per namespace.
const secretNameBuckets = 1024

// defaultTargetSuffix ends a derived Secret's default name: the grant's name and this.
var defaultTargetSuffix = (&oauthv1alpha1.GoogleOAuthGrant{}).TargetSecretName()

// secretIndexValues are a grant's secretNameIndex values.
func secretIndexValues(g *oauthv1alpha1.GoogleOAuthGrant) []string {
	var out []string
	shared := grantinputs.Of(g).Shared()
	for _, name := range readSecretNames(g) {
		v := bucketValue(name)
		if shared != "" && name == shared {
			v = nameValue(name)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// readSecretNames are the Secrets a grant reads or writes by a name it gives.
func readSecretNames(g *oauthv1alpha1.GoogleOAuthGrant) []string {
	names := grantinputs.Of(g).Secrets()
	if g.Spec.AccessTokenSecretName != "" {
		names = append(names, g.Spec.AccessTokenSecretName)
	}
	return names
}

func nameValue(secret string) string { return "name:" + secret }

func bucketValue(secret string) string {
	h := fnv.New32a()
	h.Write([]byte(secret))
	return "bucket:" + strconv.FormatUint(uint64(h.Sum32()%secretNameBuckets), 10)
}

// grantsReadingSecret lists the cached grants that name Secret s.
func grantsReadingSecret(ctx context.Context, c client.Reader, s *metav1.PartialObjectMetadata) ([]reconcile.Request, error) {
	var reqs []reconcile.Request
	for _, v := range []string{nameValue(s.Name), bucketValue(s.Name)} {
		var grants oauthv1alpha1.GoogleOAuthGrantList
		// Only names are read: no copies (a Secret many grants share, the client's, would
		// otherwise copy each of them).
		if err := c.List(ctx, &grants, client.InNamespace(s.Namespace), client.MatchingFields{secretNameIndex: v}, client.UnsafeDisableDeepCopy); err != nil {
			return nil, err
		}
		for i := range grants.Items {
			g := &grants.Items[i]
			if slices.Contains(readSecretNames(g), s.Name) {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: g.Namespace, Name: g.Name}})
			}
		}
	}
	return reqs, nil
}

// grantOfDefaultTarget is the cached grant whose derived Secret is s by the default name.
func grantOfDefaultTarget(ctx context.Context, c client.Reader, s *metav1.PartialObjectMetadata) []reconcile.Request {
	name, ok := strings.CutSuffix(s.Name, defaultTargetSuffix)
	if !ok || name == "" {
		return nil
	}
	g := &oauthv1alpha1.GoogleOAuthGrant{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: name}, g, client.UnsafeDisableDeepCopy); err != nil || g.TargetSecretName() != s.Name {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: s.Namespace, Name: name}}}
}

// Options tune the controller.
type Options struct {
	MaxConcurrentReconciles int
	// SkipNameValidation allows several managers in one process (tests).
	SkipNameValidation bool
	// NamespacesOnly: the manager may read only the namespaces it manages (--namespaces),
	// so it neither watches ClusterGoogleOAuthClients nor Namespaces; grants naming a
	// cluster client report ClientNotAllowed.
	NamespacesOnly bool
}

// clientRefIndex indexes grants by the client object they name: "GoogleOAuthClient/NAME"
// (within the grant's namespace), "ClusterGoogleOAuthClient/NAME", and
// "ClusterGoogleOAuthClient" for any cluster client (a namespace's labels matter to those).
const clientRefIndex = "grantkeeper.clientRef"

// clientSecretIndex indexes client objects by their Secret, "NAMESPACE/NAME", and by the
// Secret's namespace alone, "NAMESPACE".
const clientSecretIndex = "grantkeeper.clientSecret"

func clientRefKeys(g *oauthv1alpha1.GoogleOAuthGrant) []string {
	ref := grantinputs.Of(g).ClientRef()
	switch {
	case ref == nil:
		return nil
	case ref.Kind == oauthv1alpha1.KindClusterGoogleOAuthClient:
		return []string{ref.Kind + "/" + ref.Name, ref.Kind}
	}
	return []string{ref.Kind + "/" + ref.Name}
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
	// They go to the grant controller and to the client objects' controllers (set up below,
	// before the watcher starts).
	secretEvents := make(chan event.TypedGenericEvent[*metav1.PartialObjectMetadata], 1024)
	var clientSecretEvents []chan event.TypedGenericEvent[*metav1.PartialObjectMetadata]
	watcher := secretwatch.New(mdClient, managedSelector(selection.NotEquals).String(), keepReferenceFields, func(ns, name string) {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		m.Namespace, m.Name = ns, name
		secretEvents <- event.TypedGenericEvent[*metav1.PartialObjectMetadata]{Object: m}
		for _, ch := range clientSecretEvents {
			ch <- event.TypedGenericEvent[*metav1.PartialObjectMetadata]{Object: m}
		}
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

	r.namespacesOnly = opts.NamespacesOnly
	ctx := context.Background()
	indexer := mgr.GetFieldIndexer()
	if err := namespacedIndex(ctx, mgr.GetCache(), &oauthv1alpha1.GoogleOAuthGrant{}, secretNameIndex, func(o client.Object) []string {
		return secretIndexValues(o.(*oauthv1alpha1.GoogleOAuthGrant))
	}); err != nil {
		return err
	}
	if err := indexer.IndexField(ctx, &oauthv1alpha1.GoogleOAuthGrant{}, clientRefIndex, func(o client.Object) []string {
		return clientRefKeys(o.(*oauthv1alpha1.GoogleOAuthGrant))
	}); err != nil {
		return err
	}
	clientKinds := []client.Object{&oauthv1alpha1.GoogleOAuthClient{}}
	if !opts.NamespacesOnly {
		clientKinds = append(clientKinds, &oauthv1alpha1.ClusterGoogleOAuthClient{})
	}
	for _, kind := range clientKinds {
		if err := indexer.IndexField(ctx, kind, clientSecretIndex, func(o client.Object) []string {
			key := grantinputs.SecretOf(o, r.ManagerNamespace)
			return []string{key.String(), key.Namespace}
		}); err != nil {
			return err
		}
	}

	c := mgr.GetClient()
	mapSecret := func(ctx context.Context, s *metav1.PartialObjectMetadata) []reconcile.Request {
		reqs, err := grantsReadingSecret(ctx, c, s)
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing grants for Secret", "secret", s.Name)
			return nil
		}
		reqs = append(reqs, grantOfDefaultTarget(ctx, c, s)...)
		// A client object's Secret concerns the grants naming that client.
		for _, co := range clientsOfSecret(ctx, c, types.NamespacedName{Namespace: s.Namespace, Name: s.Name}, opts.NamespacesOnly) {
			reqs = append(reqs, grantsOfClient(ctx, c, co)...)
		}
		return reqs
	}
	mapClient := func(ctx context.Context, o client.Object) []reconcile.Request { return grantsOfClient(ctx, c, o) }
	// A namespace's labels decide which cluster clients its grants may use.
	mapNamespace := func(ctx context.Context, o client.Object) []reconcile.Request {
		var grants oauthv1alpha1.GoogleOAuthGrantList
		if err := c.List(ctx, &grants, client.InNamespace(o.GetName()), client.MatchingFields{clientRefIndex: oauthv1alpha1.KindClusterGoogleOAuthClient}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing grants for namespace", "namespace", o.GetName())
			return nil
		}
		return grantRequests(grants.Items)
	}

	b := ctrl.NewControllerManagedBy(mgr).
		Named("googleoauthgrant").
		// Status writes are ours; react to spec changes and to the manual-refresh annotation.
		For(&oauthv1alpha1.GoogleOAuthGrant{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&corev1.Secret{}).
		// A refresh-token Secret a consent link created carries our label (so only this
		// cache sees it) but no owner reference.
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(mapLabelledInput(mapSecret))).
		WatchesRawSource(source.Channel(secretEvents, handler.TypedEnqueueRequestsFromMapFunc(mapSecret))).
		Watches(&oauthv1alpha1.GoogleOAuthClient{}, handler.EnqueueRequestsFromMapFunc(mapClient))
	if !opts.NamespacesOnly {
		b = b.Watches(&oauthv1alpha1.ClusterGoogleOAuthClient{}, handler.EnqueueRequestsFromMapFunc(mapClient)).
			WatchesMetadata(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(mapNamespace), builder.WithPredicates(predicate.LabelChangedPredicate{}))
	}
	if err := b.WithOptions(controller.Options{MaxConcurrentReconciles: max(opts.MaxConcurrentReconciles, 1), SkipNameValidation: &opts.SkipNameValidation,
		NewQueue: newGrantQueue}).
		Complete(r); err != nil {
		return err
	}

	// The client objects' own controllers: their Ready condition and client id.
	for _, kind := range clientKinds {
		cr := &clientReconciler{Client: c, APIReader: r.APIReader, SecretMeta: r.SecretMeta, Recorder: r.Recorder,
			kind: grantinputs.KindOf(kind), managerNamespace: r.ManagerNamespace}
		mapSecretToClients := func(ctx context.Context, s *metav1.PartialObjectMetadata) []reconcile.Request {
			var reqs []reconcile.Request
			for _, co := range clientsOfSecret(ctx, c, types.NamespacedName{Namespace: s.Namespace, Name: s.Name}, opts.NamespacesOnly) {
				if grantinputs.KindOf(co) == cr.kind {
					reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(co)})
				}
			}
			return reqs
		}
		events := make(chan event.TypedGenericEvent[*metav1.PartialObjectMetadata], 1024)
		clientSecretEvents = append(clientSecretEvents, events)
		if err := ctrl.NewControllerManagedBy(mgr).
			Named(strings.ToLower(cr.kind)).
			For(kind, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
			WatchesRawSource(source.Channel(events, handler.TypedEnqueueRequestsFromMapFunc(mapSecretToClients))).
			WithOptions(controller.Options{MaxConcurrentReconciles: 2, SkipNameValidation: &opts.SkipNameValidation}).
			Complete(cr); err != nil {
			return err
		}
	}
	return nil
}

// namespacedIndex is mgr.GetFieldIndexer().IndexField for lookups within one namespace only
// (List with InNamespace and MatchingFields). IndexField also files every value under an
// all-namespaces key, so each distinct value costs two sets; for names unique to one grant
// (its refresh-token and derived Secrets) those single-entry sets were the largest part of
// the index, about 1 KiB a grant. The index name and "namespace/value" keys are the ones
// controller-runtime's cache reader looks up for a MatchingFields in a namespace.
func namespacedIndex(ctx context.Context, c cache.Cache, obj client.Object, field string, values func(client.Object) []string) error {
	inf, err := c.GetInformer(ctx, obj)
	if err != nil {
		return err
	}
	return inf.AddIndexers(toolscache.Indexers{"field:" + field: func(o any) ([]string, error) {
		co, ok := o.(client.Object)
		if !ok {
			return nil, fmt.Errorf("indexing %T: not a client.Object", o)
		}
		vals := values(co)
		keys := make([]string, len(vals))
		for i, v := range vals {
			keys[i] = co.GetNamespace() + "/" + v
		}
		return keys, nil
	}})
}

func grantRequests(grants []oauthv1alpha1.GoogleOAuthGrant) []reconcile.Request {
	reqs := make([]reconcile.Request, 0, len(grants))
	for _, g := range grants {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: g.Namespace, Name: g.Name}})
	}
	return reqs
}

// clientsOfSecret lists the client objects whose Secret is key.
func clientsOfSecret(ctx context.Context, c client.Reader, key types.NamespacedName, namespacesOnly bool) []client.Object {
	var out []client.Object
	var local oauthv1alpha1.GoogleOAuthClientList
	if err := c.List(ctx, &local, client.InNamespace(key.Namespace), client.MatchingFields{clientSecretIndex: key.String()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing clients for Secret", "secret", key.Name)
	}
	for i := range local.Items {
		out = append(out, &local.Items[i])
	}
	if namespacesOnly {
		return out
	}
	var cluster oauthv1alpha1.ClusterGoogleOAuthClientList
	if err := c.List(ctx, &cluster, client.MatchingFields{clientSecretIndex: key.String()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing cluster clients for Secret", "secret", key.Name)
	}
	for i := range cluster.Items {
		out = append(out, &cluster.Items[i])
	}
	return out
}

// grantsOfClient lists the grants naming a client object.
func grantsOfClient(ctx context.Context, c client.Reader, o client.Object) []reconcile.Request {
	kind := grantinputs.KindOf(o)
	opts := []client.ListOption{client.MatchingFields{clientRefIndex: kind + "/" + o.GetName()}}
	if kind == oauthv1alpha1.KindGoogleOAuthClient {
		opts = append(opts, client.InNamespace(o.GetNamespace()))
	}
	var grants oauthv1alpha1.GoogleOAuthGrantList
	if err := c.List(ctx, &grants, opts...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing grants for client", "kind", kind, "client", o.GetName())
		return nil
	}
	return grantRequests(grants.Items)
}
