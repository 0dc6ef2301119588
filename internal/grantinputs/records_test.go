package grantinputs

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// A token larger than maxRecordedToken is not kept (a tenant's megabyte "token" must not grow
// the manager's memory) and replaces no stale entry; a normal one is served at its version only.
func TestRefreshTokenRecordBoundsWhatItKeeps(t *testing.T) {
	var r refreshTokenRecord
	key := types.NamespacedName{Namespace: "a", Name: "rt"}
	r.put(key, "1", "small")
	if tok, ok := r.get(key, &metav1.ObjectMeta{ResourceVersion: "1"}); !ok || tok != "small" {
		t.Fatalf("at the recorded version: %q %v, want the token", tok, ok)
	}
	if _, ok := r.get(key, &metav1.ObjectMeta{ResourceVersion: "2"}); ok {
		t.Fatal("served the token recorded at version 1 for version 2")
	}
	r.put(key, "2", strings.Repeat("x", maxRecordedToken+1))
	if _, ok := r.get(key, &metav1.ObjectMeta{ResourceVersion: "2"}); ok {
		t.Fatal("kept a token larger than maxRecordedToken")
	}
	if _, ok := r.get(key, &metav1.ObjectMeta{ResourceVersion: "1"}); ok {
		t.Fatal("the oversized write left the older entry in place")
	}
	if n := len(r.m); n != 0 {
		t.Fatalf("%d entries kept, want 0", n)
	}
}
