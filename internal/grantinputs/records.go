package grantinputs

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// refreshTokenRecord remembers, per refresh-token Secret, the refresh token read from it and
// the Secret's resourceVersion when read. The metadata watch tells the version the
// Secret is at now: when it is the recorded one, the recorded token is the Secret's token and
// a refresh needs no live read of the Secret (two API requests per refresh instead of three).
//
// Never a stale token: a resourceVersion is the etcd revision of the object's last write,
// unique across the cluster's objects, so the same version is the same content, and any
// write to the Secret (a user's new token, a consent, our own write-back of a rotated token,
// a delete and re-create) gives it a new one. A version the cache shows that is not the
// recorded one (newer, or older while the cache lags our own write-back) is read live and
// recorded again. The token a request used is tagged, in status.inputsFingerprint, with the
// version it came from, so when the watch shows a newer version the inputs differ and the
// grant is refreshed again with the new token: the same guarantee as a live read, whose own
// window (a write between the read and the token request) is no shorter than the watch's
// lag. An absent or unwatched Secret is read live, as before.
//
// It is keyed by the Secret, not the grant: when grants share a Secret and one of them writes
// back a rotated token, the others find the new version recorded and never use the retired
// token while the watch lags. It holds one token a Secret, as the manager holds every Secret
// it reads: never logged, never written anywhere but where it came from. Entries go with
// their namespace's Secret watch (forgetNamespace); forgetting is always safe (the next
// refresh reads live).
type refreshTokenRecord struct {
	mu sync.Mutex
	m  map[types.NamespacedName]recordedToken
}

type recordedToken struct {
	version string // the Secret's resourceVersion
	token   string
}

// get returns the refresh token recorded from the Secret at meta's version, if any.
func (r *refreshTokenRecord) get(secret types.NamespacedName, meta *metav1.ObjectMeta) (string, bool) {
	if meta == nil || meta.ResourceVersion == "" {
		return "", false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.m[secret]
	if !ok || e.version != meta.ResourceVersion {
		return "", false
	}
	return e.token, true
}

// maxRecordedToken bounds what the record keeps per Secret. The Secret's content is the
// tenant's: without a bound, grants naming Secrets that hold megabytes as a "refresh token"
// would grow the manager's memory by their size (issue 28 item 4). Real refresh tokens are
// well under it (Google's about 100 bytes, JWT-shaped ones a few KiB); a larger one is read
// live at each refresh, as before the record.
const maxRecordedToken = 8 << 10

// put records that the Secret held token at version (just read or written).
func (r *refreshTokenRecord) put(secret types.NamespacedName, version, token string) {
	if version == "" || token == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(token) > maxRecordedToken {
		delete(r.m, secret)
		return
	}
	if r.m == nil {
		r.m = map[types.NamespacedName]recordedToken{}
	}
	r.m[secret] = recordedToken{version: version, token: token}
}

// forget drops a Secret's entry (its token is not usable).
func (r *refreshTokenRecord) forget(secret types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, secret)
}

// forgetNamespace drops the entries of a namespace that no longer holds grants.
func (r *refreshTokenRecord) forgetNamespace(ns string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.m {
		if k.Namespace == ns {
			delete(r.m, k)
		}
	}
}
