package secretwatch

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/metadata"

	"github.com/grantkeeper/grantkeeper/test/framework/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }

// TestReadableDuringShutdown: once the manager stops, the watches stop, but a reconcile still
// finishing must see the Secrets as they were, not as deleted.
func TestReadableDuringShutdown(t *testing.T) {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "secretwatch-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: ns.Name}, StringData: map[string]string{"k": "v"}}
	if err := env.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	md, err := metadata.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	w := New(md, "", nil, func(string, string) {})
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Start(mgrCtx)
	}()
	// Synced starts the watch once Start has run, then reports the first List done.
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return w.Synced(ns.Name), nil
	}); err != nil {
		t.Fatal("the namespace's Secret watch did not sync within 30s")
	}
	if m, err := w.Get(ns.Name, "client"); err != nil || m == nil {
		t.Fatalf("Get before the shutdown: %v, %v", m, err)
	}

	stop()
	<-done
	m, err := w.Get(ns.Name, "client")
	if err != nil || m == nil || m.Name != "client" {
		t.Errorf("Get during the shutdown: %v, %v; want the Secret's metadata as last seen", m, err)
	}
	if !w.Synced(ns.Name) {
		t.Error("Synced turned false during the shutdown: reconciles finishing would requeue instead of deciding")
	}
	if w.Synced("another") {
		t.Error("a watch started after the shutdown")
	}
}
