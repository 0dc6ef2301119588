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
func secretIndexValues(g oauthv1alpha1.Grant) []string {
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
func readSecretNames(g oauthv1alpha1.Grant) []string {
	names := grantinputs.Of(g).Secrets()
	if n := g.TargetSecretName(); n != g.GetName()+defaultTargetSuffix {
		names = append(names, n)
	}
	return names
}

func nameValue(secret string) string { return "name:" + secret }

func bucketValue(secret string) string {
	h := fnv.New32a()
	h.Write([]byte(secret))
	return "bucket:" + strconv.FormatUint(uint64(h.Sum32()%secretNameBuckets), 10)
}

// grantsReadingSecret lists the cached grants of kind that name Secret s.
func grantsReadingSecret(ctx context.Context, c client.Reader, kind grantKind, s *metav1.PartialObjectMetadata) ([]reconcile.Request, error) {
	var reqs []reconcile.Request
	for _, v := range []string{nameValue(s.Name), bucketValue(s.Name)} {
		grants := kind.newList()
		// Only names are read: no copies (a Secret many grants share, the client's, would
		// otherwise copy each of them).
		if err := c.List(ctx, grants, client.InNamespace(s.Namespace), client.MatchingFields{secretNameIndex: v}, client.UnsafeDisableDeepCopy); err != nil {
			return nil, err
		}
		for _, g := range kind.items(grants) {
			if slices.Contains(readSecretNames(g), s.Name) {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: g.GetNamespace(), Name: g.GetName()}})
			}
		}
	}
	return reqs, nil
}

// grantOfDefaultTarget is the cached grant whose derived Secret is s by the default name.
func grantOfDefaultTarget(ctx context.Context, c client.Reader, kind grantKind, s *metav1.PartialObjectMetadata) []reconcile.Request {
	name, ok := strings.CutSuffix(s.Name, defaultTargetSuffix)
	if !ok || name == "" {
		return nil
	}
	g := kind.newObject()
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

func clientRefKeys(g oauthv1alpha1.Grant) []string {
	ref := grantinputs.Of(g).ClientRef()
	switch {
	case ref == nil:
		return nil
	case oauthv1alpha1.ClusterScopedClient(ref.Kind):
		return []string{ref.Kind + "/" + ref.Name, ref.Kind}
	}
	return []string{ref.Kind + "/" + ref.Name}
}

// SetupWithManager registers the controller of r's grant kind (GoogleOAuthGrant unless
// set up by setupProviderGrants) with the Google client kinds' controllers. Besides the
// manager's cache (grants, and the Secrets grantkeeper labels) it watches the metadata of the
// other Secrets, only in namespaces that hold grants: enough to notice that a referenced
// Secret appeared or changed (and to spot a name collision) without holding Secret data, or
// anything about Secrets in namespaces without grants, in memory.
func (r *GrantReconciler) SetupWithManager(mgr ctrl.Manager, opts Options) error {
	mdClient, err := metadata.NewForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return err
	}
	// Secret events from the metadata watches reach the controllers through channels: the
	// grant controllers' and the client objects' (set up below, before the watcher starts).
	fan := &secretFanout{}
	watcher := secretwatch.New(mdClient, managedSelector(selection.NotEquals).String(), keepReferenceFields, fan.send)
	if err := mgr.Add(watcher); err != nil {
		return err
	}
	if r.SecretMeta == nil {
		r.SecretMeta = watcher
	}
	r.fanout = fan
	if err := r.setupGrants(mgr, opts); err != nil {
		return err
	}

	// The Google client objects' own controllers: their Ready condition and client id.
	c := mgr.GetClient()
	for _, kind := range googleClientKinds(opts) {
		cr := &clientReconciler{Client: c, APIReader: r.APIReader, SecretMeta: r.SecretMeta, Recorder: r.Recorder,
			kind: grantinputs.KindOf(kind), managerNamespace: r.ManagerNamespace}
		mapSecretToClients := func(ctx context.Context, s *metav1.PartialObjectMetadata) []reconcile.Request {
			var reqs []reconcile.Request
			for _, co := range clientsOfSecret(ctx, c, types.NamespacedName{Namespace: s.Namespace, Name: s.Name}, opts.NamespacesOnly, r.ManagerNamespace) {
				if grantinputs.KindOf(co) == cr.kind {
					reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(co)})
				}
			}
			return reqs
		}
		if err := ctrl.NewControllerManagedBy(mgr).
			Named(strings.ToLower(cr.kind)).
			For(kind, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
			WatchesRawSource(source.Channel(fan.channel(), handler.TypedEnqueueRequestsFromMapFunc(mapSecretToClients))).
			WithOptions(controller.Options{MaxConcurrentReconciles: 2, SkipNameValidation: &opts.SkipNameValidation}).
			Complete(cr); err != nil {
			return err
		}
	}
	return nil
}

// setupProviderGrants registers p as the OAuthGrant controller, sharing google's Secret
// watch (one metadata watch per namespace, whichever kind's grants are in it).
func setupProviderGrants(mgr ctrl.Manager, google, p *GrantReconciler, opts Options) error {
	p.kind, p.SecretMeta, p.fanout = providerGrants, google.SecretMeta, google.fanout
	return p.setupGrants(mgr, opts)
}

// secretFanout sends each Secret event of the metadata watch to every controller that
// registered a channel (all register before the manager starts the watcher).
type secretFanout struct {
	channels []chan event.TypedGenericEvent[*metav1.PartialObjectMetadata]
}

func (f *secretFanout) channel() chan event.TypedGenericEvent[*metav1.PartialObjectMetadata] {
	ch := make(chan event.TypedGenericEvent[*metav1.PartialObjectMetadata], 1024)
	f.channels = append(f.channels, ch)
	return ch
}

func (f *secretFanout) send(ns, name string) {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	m.Namespace, m.Name = ns, name
	for _, ch := range f.channels {
		ch <- event.TypedGenericEvent[*metav1.PartialObjectMetadata]{Object: m}
	}
}

// googleClientKinds are the Google client kinds the manager watches.
func googleClientKinds(opts Options) []client.Object {
	kinds := []client.Object{&oauthv1alpha1.GoogleOAuthClient{}}
	if !opts.NamespacesOnly {
		kinds = append(kinds, &oauthv1alpha1.ClusterGoogleOAuthClient{})
	}
	return kinds
}

// clientKindsOf are the client kinds a grant kind's clientRef may name.
func clientKindsOf(kind grantKind, opts Options) []client.Object {
	if kind.name == oauthv1alpha1.KindGoogleOAuthGrant {
		return googleClientKinds(opts)
	}
	kinds := []client.Object{&oauthv1alpha1.OAuthClient{}}
	if !opts.NamespacesOnly {
		kinds = append(kinds, &oauthv1alpha1.ClusterOAuthClient{})
	}
	return kinds
}

// setupGrants registers the controller of r's grant kind: its indexes and watches.
func (r *GrantReconciler) setupGrants(mgr ctrl.Manager, opts Options) error {
	r.kind = r.grantKind()
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	r.namespacesOnly = opts.NamespacesOnly
	ctx := context.Background()
	indexer := mgr.GetFieldIndexer()
	obj := r.kind.newObject()
	if err := namespacedIndex(ctx, mgr.GetCache(), obj, secretNameIndex, func(o client.Object) []string {
		return secretIndexValues(o.(oauthv1alpha1.Grant))
	}); err != nil {
		return err
	}
	if err := indexer.IndexField(ctx, obj, clientRefIndex, func(o client.Object) []string {
		return clientRefKeys(o.(oauthv1alpha1.Grant))
	}); err != nil {
		return err
	}
	clientKinds := clientKindsOf(r.kind, opts)
	if r.kind.name == oauthv1alpha1.KindGoogleOAuthGrant {
		for _, kind := range clientKinds {
			if err := indexer.IndexField(ctx, kind, clientSecretIndex, func(o client.Object) []string {
				key := grantinputs.SecretOf(o, r.ManagerNamespace)
				return []string{key.String(), key.Namespace}
			}); err != nil {
				return err
			}
		}
	}

	c := mgr.GetClient()
	kind := r.kind
	mapSecret := func(ctx context.Context, s *metav1.PartialObjectMetadata) []reconcile.Request {
		reqs, err := grantsReadingSecret(ctx, c, kind, s)
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing grants for Secret", "secret", s.Name)
			return nil
		}
		reqs = append(reqs, grantOfDefaultTarget(ctx, c, kind, s)...)
		// A client object's Secret concerns the grants naming that client.
		for _, co := range clientsOfSecret(ctx, c, types.NamespacedName{Namespace: s.Namespace, Name: s.Name}, opts.NamespacesOnly, r.ManagerNamespace) {
			reqs = append(reqs, grantsOfClient(ctx, c, kind, co)...)
		}
		return reqs
	}
	mapClient := func(ctx context.Context, o client.Object) []reconcile.Request { return grantsOfClient(ctx, c, kind, o) }
	// A namespace's labels decide which cluster clients its grants may use.
	clusterKind := oauthv1alpha1.KindClusterGoogleOAuthClient
	if kind.name == oauthv1alpha1.KindOAuthGrant {
		clusterKind = oauthv1alpha1.KindClusterOAuthClient
	}
	mapNamespace := func(ctx context.Context, o client.Object) []reconcile.Request {
		grants := kind.newList()
		if err := c.List(ctx, grants, client.InNamespace(o.GetName()), client.MatchingFields{clientRefIndex: clusterKind}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing grants for namespace", "namespace", o.GetName())
			return nil
		}
		return grantRequests(kind.items(grants))
	}

	b := ctrl.NewControllerManagedBy(mgr).
		Named(strings.ToLower(kind.name)).
		// Status writes are ours; react to spec changes and to the manual-refresh annotation.
		For(obj, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&corev1.Secret{}).
		// A refresh-token Secret a consent link created carries our label (so only this
		// cache sees it) but no owner reference.
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(mapLabelledInput(mapSecret))).
		WatchesRawSource(source.Channel(r.fanout.channel(), handler.TypedEnqueueRequestsFromMapFunc(mapSecret)))
	for _, ck := range clientKinds {
		b = b.Watches(ck, handler.EnqueueRequestsFromMapFunc(mapClient))
	}
	if !opts.NamespacesOnly {
		b = b.WatchesMetadata(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(mapNamespace), builder.WithPredicates(predicate.LabelChangedPredicate{}))
	}
	return b.WithOptions(controller.Options{MaxConcurrentReconciles: max(opts.MaxConcurrentReconciles, 1), SkipNameValidation: &opts.SkipNameValidation,
		NewQueue: newGrantQueue}).
		Complete(r)
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

func grantRequests(grants []oauthv1alpha1.Grant) []reconcile.Request {
	reqs := make([]reconcile.Request, 0, len(grants))
	for _, g := range grants {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: g.GetNamespace(), Name: g.GetName()}})
	}
	return reqs
}

// clientsOfSecret lists the client objects (of every kind) whose Secret is key.
func clientsOfSecret(ctx context.Context, c client.Reader, key types.NamespacedName, namespacesOnly bool, managerNamespace string) []client.Object {
	var out []client.Object
	var local oauthv1alpha1.GoogleOAuthClientList
	if err := c.List(ctx, &local, client.InNamespace(key.Namespace), client.MatchingFields{clientSecretIndex: key.String()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing clients for Secret", "secret", key.Name)
	}
	for i := range local.Items {
		out = append(out, &local.Items[i])
	}
	// Provider client objects are few: a list, not an index.
	var providers oauthv1alpha1.OAuthClientList
	if err := c.List(ctx, &providers, client.InNamespace(key.Namespace)); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing provider clients for Secret", "secret", key.Name)
	}
	for i := range providers.Items {
		if grantinputs.SecretOf(&providers.Items[i], managerNamespace) == key {
			out = append(out, &providers.Items[i])
		}
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
	var clusterProviders oauthv1alpha1.ClusterOAuthClientList
	if err := c.List(ctx, &clusterProviders); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing cluster provider clients for Secret", "secret", key.Name)
	}
	for i := range clusterProviders.Items {
		if grantinputs.SecretOf(&clusterProviders.Items[i], managerNamespace) == key {
			out = append(out, &clusterProviders.Items[i])
		}
	}
	return out
}

// grantsOfClient lists the grants of kind naming a client object (none when the client is
// of the other family).
func grantsOfClient(ctx context.Context, c client.Reader, kind grantKind, o client.Object) []reconcile.Request {
	ck := grantinputs.KindOf(o)
	if (oauthv1alpha1.NamespacedClientKind(ck) == oauthv1alpha1.KindOAuthClient) != (kind.name == oauthv1alpha1.KindOAuthGrant) {
		return nil
	}
	opts := []client.ListOption{client.MatchingFields{clientRefIndex: ck + "/" + o.GetName()}}
	if !oauthv1alpha1.ClusterScopedClient(ck) {
		opts = append(opts, client.InNamespace(o.GetNamespace()))
	}
	grants := kind.newList()
	if err := c.List(ctx, grants, opts...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing grants for client", "kind", ck, "client", o.GetName())
		return nil
	}
	return grantRequests(kind.items(grants))
}

// clientsInNamespace lists the provider client objects whose Secret is in namespace ns.
func clientsInNamespace(ctx context.Context, c client.Reader, ns string, namespacesOnly bool, managerNamespace string) []client.Object {
	var out []client.Object
	var local oauthv1alpha1.OAuthClientList
	if err := c.List(ctx, &local, client.InNamespace(ns)); err == nil {
		for i := range local.Items {
			if grantinputs.SecretOf(&local.Items[i], managerNamespace).Namespace == ns {
				out = append(out, &local.Items[i])
			}
		}
	}
	if namespacesOnly {
		return out
	}
	var cluster oauthv1alpha1.ClusterOAuthClientList
	if err := c.List(ctx, &cluster); err == nil {
		for i := range cluster.Items {
			if grantinputs.SecretOf(&cluster.Items[i], managerNamespace).Namespace == ns {
				out = append(out, &cluster.Items[i])
			}
		}
	}
	return out
}
