package controllers

import (
	"fmt"
	"runtime"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/grantkeeper/grantkeeper/internal/risc"
)

// TestTokenIndex: every identifier of a token finds the grants holding it, a token two
// grants hold finds both until one lets go, a replaced or removed token finds nothing, and
// the clients are counted per grant.
func TestTokenIndex(t *testing.T) {
	x := NewTokenIndex()
	a, b := types.NamespacedName{Namespace: "ns", Name: "a"}, types.NamespacedName{Namespace: "ns", Name: "b"}
	const shared, other = "1//0shared-refresh-token-of-some-length", "1//0another-refresh-token-of-some-length"
	holders := func(token string) [][]types.NamespacedName {
		var out [][]types.NamespacedName
		for _, id := range risc.Identifiers(token) {
			g := x.Grants(id)
			slices.SortFunc(g, func(p, q types.NamespacedName) int { return compare(p.Name, q.Name) })
			out = append(out, g)
		}
		return out
	}
	want := func(what, token string, grants ...types.NamespacedName) {
		t.Helper()
		for i, got := range holders(token) {
			if !slices.Equal(got, grants) {
				t.Errorf("%s: identifier %d names %v, want %v", what, i, got, grants)
			}
		}
	}
	x.Put(a, shared, "client-1")
	want("one holder", shared, a)
	x.Put(b, shared, "client-1")
	want("two holders", shared, a, b)
	x.Put(a, shared, "client-1") // the same token again
	want("put again", shared, a, b)
	if !x.HasClient("client-1") || x.Len() != 2 {
		t.Errorf("HasClient %v, Len %d; want true, 2", x.HasClient("client-1"), x.Len())
	}
	x.Put(a, other, "client-2")
	want("a's token replaced: the shared one", shared, b)
	want("a's token replaced: its new one", other, a)
	x.Remove(b)
	want("b removed", shared)
	if x.HasClient("client-1") || !x.HasClient("client-2") {
		t.Error("the client count did not follow the grants")
	}
	x.Remove(a)
	want("a removed", other)
	if x.Len() != 0 || len(x.byID) != 0 || len(x.shared) != 0 || len(x.clients) != 0 {
		t.Errorf("an empty index keeps %d, %d, %d, %d entries", x.Len(), len(x.byID), len(x.shared), len(x.clients))
	}
	if g := x.Grants("hash_base64_sha512_sha512:unknown"); len(g) != 0 {
		t.Errorf("an unknown identifier names %v", g)
	}
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// BenchmarkTokenIndexMemory reports what the index keeps per grant (10,000 grants, each its
// own refresh token), after a GC.
func BenchmarkTokenIndexMemory(b *testing.B) {
	const grants = 10000
	keys := make([]types.NamespacedName, grants)
	tokens := make([]string, grants)
	for i := range keys {
		keys[i] = types.NamespacedName{Namespace: "bench", Name: fmt.Sprintf("grant-%05d", i)}
		tokens[i] = fmt.Sprintf("1//0%060d", i)
	}
	var perGrant float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		x := NewTokenIndex()
		for i := range keys {
			x.Put(keys[i], tokens[i], "client")
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perGrant = float64(after.HeapAlloc-before.HeapAlloc) / grants
		runtime.KeepAlive(x)
	}
	b.ReportMetric(perGrant, "bytes/grant")
}
