// Package grantns holds what every envtest suite of grantkeeper does in its test's own
// namespace: read a grant or a Secret, poll until something holds (with a deadline, never a
// sleep), and collect a manager's log safely while it writes from many goroutines.
package grantns

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// NS is a test's namespace on a real API server, read through C.
type NS struct {
	T    testing.TB
	Ctx  context.Context
	C    client.Client
	Name string
}

// New creates a namespace named prefix-<random> through c.
func New(t testing.TB, c client.Client, prefix string) *NS {
	t.Helper()
	n := &NS{T: t, Ctx: context.Background(), C: c, Name: prefix + "-" + rand.String(8)}
	if err := c.Create(n.Ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n.Name}}); err != nil {
		t.Fatal(err)
	}
	return n
}

// Get reads the object called name in the namespace, failing the test when it cannot.
func (n *NS) Get(name string, obj client.Object) {
	n.T.Helper()
	if err := n.C.Get(n.Ctx, client.ObjectKey{Namespace: n.Name, Name: name}, obj); err != nil {
		n.T.Fatal(err)
	}
}

// GetGrant reads a grant.
func (n *NS) GetGrant(name string) *oauthv1alpha1.GoogleOAuthGrant {
	n.T.Helper()
	g := &oauthv1alpha1.GoogleOAuthGrant{}
	n.Get(name, g)
	return g
}

// GetSecret reads a Secret.
func (n *NS) GetSecret(name string) *corev1.Secret {
	n.T.Helper()
	s := &corev1.Secret{}
	n.Get(name, s)
	return s
}

// pollInterval is how often Eventually looks: short, since the API server is local.
const pollInterval = 20 * time.Millisecond

// Eventually polls cond until it holds or timeout passes, then fails the test with what it
// was waiting for, what cond last said it saw, and every grant's status in the namespace.
func (n *NS) Eventually(timeout time.Duration, what string, cond func() (ok bool, seen string)) {
	n.T.Helper()
	last := ""
	err := wait.PollUntilContextTimeout(n.Ctx, pollInterval, timeout, true, func(context.Context) (bool, error) {
		ok, seen := cond()
		if seen != "" {
			last = seen
		}
		return ok, nil
	})
	if err == nil {
		return
	}
	var grants oauthv1alpha1.GoogleOAuthGrantList
	if n.C.List(n.Ctx, &grants, client.InNamespace(n.Name)) == nil {
		for _, g := range grants.Items {
			n.T.Logf("grant %s status: %+v", g.Name, g.Status)
		}
	}
	n.T.Fatalf("timed out after %s waiting for %s; last seen: %s", timeout, what, last)
}

// SyncBuffer is a log sink a manager's goroutines may write to while a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
