package consent_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/grantkeeper/grantkeeper/internal/consent"
	"github.com/grantkeeper/grantkeeper/test/framework/grantns"
)

// The key links are signed with lives in one Secret: the manager makes it (absent) or fills
// it (shipped empty), the endpoints read the same key, a reader never writes, and a rotated
// key reaches the reader within a minute.
func TestSigningKeySecret(t *testing.T) {
	ns := grantns.New(t, env.Client, "key")
	clk := clocktesting.NewFakePassiveClock(time.Now())
	reader := func(name string) *consent.SecretKey {
		return &consent.SecretKey{Reader: env.Client, Namespace: ns.Name, Name: name, Clock: clk}
	}
	writer := func(name string) *consent.SecretKey {
		return &consent.SecretKey{Reader: env.Client, Writer: env.Client, Namespace: ns.Name, Name: name, Clock: clk}
	}

	// Absent: a reader says so and waits for the manager; the manager creates it.
	if _, err := reader("absent").Key(ns.Ctx); err == nil || !strings.Contains(err.Error(), ns.Name+"/absent") {
		t.Fatalf("a reader without the Secret: %v, want an error naming it", err)
	}
	made, err := writer("absent").Key(ns.Ctx)
	if err != nil || len(made) != consent.KeySize {
		t.Fatalf("the manager creating the key: %d bytes, %v", len(made), err)
	}
	if got, err := reader("absent").Key(ns.Ctx); err != nil || !bytes.Equal(got, made) {
		t.Fatalf("the endpoints read another key (%v)", err)
	}

	// Shipped empty: a reader fails, naming who writes it, and writes nothing; the manager fills it.
	empty := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shipped", Namespace: ns.Name}, Type: corev1.SecretTypeOpaque}
	if err := env.Client.Create(ns.Ctx, empty); err != nil {
		t.Fatal(err)
	}
	r := reader("shipped")
	if _, err := r.Key(ns.Ctx); err == nil || !strings.Contains(err.Error(), "the manager") {
		t.Fatalf("a reader of the empty Secret: %v, want an error saying the manager writes it", err)
	}
	if s := ns.GetSecret("shipped"); len(s.Data) != 0 {
		t.Fatal("a reader wrote the key Secret")
	}
	filled, err := writer("shipped").Key(ns.Ctx)
	if err != nil || len(filled) != consent.KeySize || bytes.Equal(filled, made) {
		t.Fatalf("the manager filling the shipped Secret: %d bytes, %v", len(filled), err)
	}
	// The reader tried less than keyRetry ago: it does not read again yet.
	if _, err := r.Key(ns.Ctx); err == nil {
		t.Fatal("the reader read the key again within 5 s of a failed read")
	}
	clk.SetTime(clk.Now().Add(6 * time.Second))
	if got, err := r.Key(ns.Ctx); err != nil || !bytes.Equal(got, filled) {
		t.Fatalf("the endpoints after the manager filled the Secret: %v", err)
	}

	// Rotation: new data reaches the reader after at most a minute, not before.
	s := ns.GetSecret("shipped")
	rotated := consent.NewKey()
	s.Data[consent.KeyDataKey] = rotated
	if err := env.Client.Update(ns.Ctx, s); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Key(ns.Ctx); !bytes.Equal(got, filled) {
		t.Fatal("the key was read again within a minute")
	}
	clk.SetTime(clk.Now().Add(61 * time.Second))
	if got, err := r.Key(ns.Ctx); err != nil || !bytes.Equal(got, rotated) {
		t.Fatalf("the rotated key did not reach the reader after a minute: %v", err)
	}
	// A failed read keeps the last key.
	if err := env.Client.Delete(ns.Ctx, s); err != nil {
		t.Fatal(err)
	}
	clk.SetTime(clk.Now().Add(61 * time.Second))
	if got, err := r.Key(ns.Ctx); err != nil || !bytes.Equal(got, rotated) {
		t.Fatalf("the key Secret deleted: %v, want the last key kept", err)
	}
}
