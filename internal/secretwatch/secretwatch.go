// Package secretwatch keeps metadata-only watches of Secrets for just the namespaces that
// hold grants. A cluster-wide watch would cache every Secret's metadata, and most Secrets
// live in namespaces no grant uses; here the memory cost follows the grants.
package secretwatch

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Watcher runs one metadata informer per namespace on demand.
type Watcher struct {
	client    metadata.Interface
	selector  string                // label selector applied to the watches
	transform cache.TransformFunc   // trims cached objects
	onChange  func(ns, name string) // called for every add, update and delete

	mu        sync.Mutex
	ctx       context.Context
	informers map[string]*watch
}

type watch struct {
	informer cache.SharedIndexInformer
	cancel   context.CancelFunc
}

// New returns a Watcher. Add it to the manager (it is a Runnable) so that its watches stop
// with the manager.
func New(client metadata.Interface, selector string, transform cache.TransformFunc, onChange func(ns, name string)) *Watcher {
	return &Watcher{client: client, selector: selector, transform: transform, onChange: onChange, informers: map[string]*watch{}}
}

// Start implements manager.Runnable: it waits for the manager to stop, then stops every watch.
// The watches' last contents stay readable: reconciles still finishing during the manager's
// shutdown read them (the manager stops this and the controllers together), and an emptied
// store would look to them as if every Secret had been deleted.
func (w *Watcher) Start(ctx context.Context) error {
	w.mu.Lock()
	w.ctx = ctx
	w.mu.Unlock()
	<-ctx.Done()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, wt := range w.informers {
		wt.cancel()
	}
	return nil
}

// Synced starts the namespace's watch if needed and reports whether its cache is filled.
func (w *Watcher) Synced(ns string) bool {
	wt := w.ensure(ns)
	return wt != nil && wt.informer.HasSynced()
}

func (w *Watcher) ensure(ns string) *watch {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wt, ok := w.informers[ns]; ok {
		return wt
	}
	if w.ctx == nil || w.ctx.Err() != nil {
		return nil
	}
	gi := metadatainformer.NewFilteredMetadataInformer(w.client, corev1.SchemeGroupVersion.WithResource("secrets"), ns, 0,
		cache.Indexers{}, func(o *metav1.ListOptions) { o.LabelSelector = w.selector })
	inf := gi.Informer()
	if w.transform != nil {
		_ = inf.SetTransform(w.transform)
	}
	notify := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if m, ok := obj.(metav1.Object); ok {
			w.onChange(m.GetNamespace(), m.GetName())
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    notify,
		UpdateFunc: func(_, obj any) { notify(obj) },
		DeleteFunc: notify,
	})
	ctx, cancel := context.WithCancel(w.ctx)
	go inf.RunWithContext(ctx)
	wt := &watch{informer: inf, cancel: cancel}
	w.informers[ns] = wt
	return wt
}

// Release stops the namespace's watch (no grant there needs it any more).
func (w *Watcher) Release(ns string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wt, ok := w.informers[ns]; ok {
		wt.cancel()
		delete(w.informers, ns)
	}
}

// Get returns a copy of a Secret's cached metadata, or nil when it does not exist. Call
// Synced first.
func (w *Watcher) Get(ns, name string) (*metav1.ObjectMeta, error) {
	m, err := w.get(ns, name)
	if m == nil || err != nil {
		return nil, err
	}
	return m.DeepCopy(), nil
}

// get returns the cache's own metadata of a Secret, or nil when it does not exist.
func (w *Watcher) get(ns, name string) (*metav1.ObjectMeta, error) {
	w.mu.Lock()
	wt := w.informers[ns]
	w.mu.Unlock()
	if wt == nil {
		return nil, nil
	}
	obj, ok, err := wt.informer.GetStore().GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return nil, err
	}
	m, _ := obj.(*metav1.PartialObjectMetadata)
	if m == nil {
		return nil, nil
	}
	return &m.ObjectMeta, nil
}

// Reader returns a client.Reader that answers Get for *metav1.PartialObjectMetadata Secrets
// from the watches (NotFound when absent or not watched). It does not List.
func (w *Watcher) Reader() client.Reader { return reader{w} }

type reader struct{ w *Watcher }

func (r reader) Get(_ context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	out, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return fmt.Errorf("secretwatch: Get of %T is not supported; pass *metav1.PartialObjectMetadata", obj)
	}
	var o client.GetOptions
	o.ApplyOptions(opts)
	m, err := r.w.get(key.Namespace, key.Name)
	if err != nil {
		return err
	}
	if m == nil {
		return apierrors.NewNotFound(corev1.Resource("secrets"), key.Name)
	}
	if o.UnsafeDisableDeepCopy != nil && *o.UnsafeDisableDeepCopy {
		out.ObjectMeta = *m // shares the cache's maps and slices: read only
		return nil
	}
	m.DeepCopyInto(&out.ObjectMeta)
	return nil
}

func (r reader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return fmt.Errorf("secretwatch: List is not supported")
}
