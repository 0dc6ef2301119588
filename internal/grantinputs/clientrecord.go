package grantinputs

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/grantkeeper/grantkeeper/internal/credentials"
)

// clientRecord remembers OAuth clients parsed from Secrets, by the Secret's UID and
// resourceVersion. The metadata watch tells which version a client Secret is at now, so a
// token request reads only the refresh-token Secret from the API server: one live read per
// refresh instead of two. A Secret edited since it was parsed has a new version and is read
// again. The process holds these client secrets in memory, as it does every Secret it reads;
// they are never logged.
type clientRecord struct {
	mu sync.Mutex
	m  map[types.NamespacedName]parsedClient
}

type parsedClient struct {
	uid, version string
	client       credentials.Client
}

// get returns the client parsed from the Secret at meta's version, if recorded.
func (c *clientRecord) get(key types.NamespacedName, meta *metav1.ObjectMeta) (credentials.Client, bool) {
	if meta == nil {
		return credentials.Client{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[key]
	if !ok || p.uid != string(meta.UID) || p.version != meta.ResourceVersion {
		return credentials.Client{}, false
	}
	return p.client, true
}

func (c *clientRecord) put(s *corev1.Secret, cl credentials.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[types.NamespacedName]parsedClient{}
	}
	c.m[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}] = parsedClient{uid: string(s.UID), version: s.ResourceVersion, client: cl}
}

// forgetNamespace drops the clients of a namespace that no longer holds grants.
func (c *clientRecord) forgetNamespace(ns string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if k.Namespace == ns {
			delete(c.m, k)
		}
	}
}
