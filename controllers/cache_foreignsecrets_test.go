package controllers_test

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A tenant who may create Secrets labels 500 of them as grantkeeper's (some even naming a
// grant as their controller): the manager's cache keeps their metadata only, so its heap
// grows by under 10 MiB, and the grants stay Ready. The incident was 500 Secrets of 1 MiB
// (500 MiB: both replicas OOM-killed at their 512Mi limit); 256 KiB each is enough to judge
// (a cache that kept their data would grow by 125 MiB, or by 42 MiB keeping only those that
// claim the grant) and takes a quarter of the time: the test process decodes every byte with
// -race on. They are created 8 at a time: one by one, the run waited on each round trip.
func TestLabelledForeignSecretsCostNoMemory(t *testing.T) {
	h := newHarness(t)
	h.credentials("before")
	g := h.grant("before")
	h.waitReady("before")
	g = h.GetGrant(g.Name)

	const n = 500
	payload := bytes.Repeat([]byte{'x'}, 256<<10)
	before := heapInUse()
	t.Cleanup(func() {
		// envtest runs no namespace controller: remove the 125 MiB ourselves.
		_ = h.C.DeleteAllOf(h.Ctx, &corev1.Secret{}, client.InNamespace(h.Name), client.MatchingLabels{"test": "foreign"})
	})
	start := time.Now()
	var creates errgroup.Group
	creates.SetLimit(8)
	for i := range n {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("foreign-%03d", i), Namespace: h.Name,
				Labels: map[string]string{oauthv1alpha1.ManagedByLabel: oauthv1alpha1.ManagedByValue, "test": "foreign"}},
			Data: map[string][]byte{"blob": payload},
		}
		if i%3 == 0 { // claims the grant as its controller
			s.OwnerReferences = []metav1.OwnerReference{{APIVersion: oauthv1alpha1.GroupVersion.String(), Kind: "GoogleOAuthGrant",
				Name: g.Name, UID: g.UID, Controller: ptr.To(true)}}
		}
		creates.Go(func() error { return h.C.Create(h.Ctx, s) })
	}
	if err := creates.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("created %d Secrets in %v", n, time.Since(start).Round(time.Millisecond))
	h.Eventually(time.Minute, "the manager's cache holds the 500 labelled Secrets", func() (bool, string) {
		var l corev1.SecretList
		if err := h.cached.List(h.Ctx, &l, client.InNamespace(h.Name), client.MatchingLabels{oauthv1alpha1.ManagedByLabel: oauthv1alpha1.ManagedByValue}, client.UnsafeDisableDeepCopy); err != nil {
			return false, err.Error()
		}
		seen := 0
		for _, s := range l.Items {
			if strings.HasPrefix(s.Name, "foreign-") {
				seen++
			}
		}
		return seen == n, fmt.Sprintf("%d of %d cached", seen, n)
	})
	t.Logf("all %d cached %v after the first create", n, time.Since(start).Round(time.Millisecond))
	grew := int64(heapInUse()) - int64(before)
	t.Logf("heap grew by %.1f MiB with %d labelled 256 KiB Secrets cached", float64(grew)/(1<<20), n)
	if grew > 10<<20 {
		t.Errorf("the heap grew by %.1f MiB, want under 10 MiB: the cache keeps the data of Secrets grantkeeper does not control", float64(grew)/(1<<20))
	}
	h.waitReady("before")
	h.requestRefresh("before")
	h.credentials("after")
	h.grant("after")
	h.waitReady("after")
	h.waitReady("before")
}
