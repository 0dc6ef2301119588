package controllers

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// lastWrites remembers, per grant, the resourceVersions our last writes replaced, until the
// cache shows something newer. A cache that still shows the replaced version lags our own
// write, and deciding on it could repeat a token request (the grant's status without the
// manual request we just handled, or the derived Secret's old token). This record replaces
// the live re-reads of the grant and the derived Secret before every token request, at no
// API cost, and holds an entry only from a write until the next reconcile sees past it.
type lastWrites struct {
	mu sync.Mutex
	m  map[types.NamespacedName]replaced
	// swept is when record last dropped entries past maxCacheLag: a grant whose next
	// reconcile is an hour away would otherwise keep its entry, and its memory, that long.
	swept time.Time
}

// maxCacheLag bounds how long an entry is trusted: a cache this far behind is broken, and
// the derived Secret we created may since have been deleted by someone else.
const maxCacheLag = 5 * time.Second

type replaced struct {
	at    time.Time // of the last write
	grant string    // the grant's resourceVersion before our status write ("" if none)
	// secret is the derived Secret's resourceVersion before our write; secretCreated marks a
	// Secret we created, so a cache without it lags.
	secret        string
	secretCreated bool
}

func (w *lastWrites) record(key types.NamespacedName, now time.Time, update func(*replaced)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[types.NamespacedName]replaced{}
	}
	if now.Sub(w.swept) > maxCacheLag {
		// Into a new map: a Go map never shrinks, and a burst (every grant at start) would
		// otherwise keep its size for good.
		kept := make(map[types.NamespacedName]replaced, len(w.m)/2)
		for k, e := range w.m {
			if now.Sub(e.at) <= maxCacheLag {
				kept[k] = e
			}
		}
		w.m, w.swept = kept, now
	}
	e := w.m[key]
	e.at = now
	update(&e)
	w.m[key] = e
}

// stale reports whether the cached grant or derived Secret (nil when absent) still shows a
// version our last write replaced. When both are past it, the entry is dropped.
func (w *lastWrites) stale(key types.NamespacedName, now time.Time, g oauthv1alpha1.Grant, s *corev1.Secret) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.m[key]
	if !ok {
		return false
	}
	switch {
	case now.Sub(e.at) > maxCacheLag:
	case e.grant != "" && g.GetResourceVersion() == e.grant,
		e.secretCreated && s == nil,
		e.secret != "" && s != nil && s.ResourceVersion == e.secret:
		return true
	}
	delete(w.m, key)
	return false
}

func (w *lastWrites) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}
