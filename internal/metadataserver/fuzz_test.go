package metadataserver

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzAnswer: whatever a client sends, the answer is a well-formed status, refusals never
// carry the token, and the token is only served to requests with the header, within its
// lifetime. (`go test -fuzz FuzzAnswer ./internal/metadataserver`; the seeds run in go test.)
func FuzzAnswer(f *testing.F) {
	for _, seed := range []struct {
		method, target, flavor string
		secs                   int64
	}{
		{"GET", "/computeMetadata/v1/instance/service-accounts/default/token", "Google", 0},
		{"GET", "/computeMetadata/v1/instance/service-accounts/default/token?scopes=email,x", "Google", 10},
		{"GET", "/computeMetadata/v1/instance/service-accounts/default/?recursive=true", "Google", 0},
		{"POST", "/", "", 0},
		{"GET", "/computeMetadata/v1/instance/service-accounts/%2e%2e/token", "Google", 7200},
	} {
		f.Add(seed.method, seed.target, seed.flavor, seed.secs)
	}
	f.Fuzz(func(t *testing.T, method, target, flavor string, secs int64) {
		u, err := url.Parse(target)
		if err != nil {
			return
		}
		at := now.Add(time.Duration(secs%100000) * time.Second)
		resp := Answer(Request{Method: method, Path: u.Path, Query: u.Query(), Flavor: flavor}, full, cfg, at)
		if http.StatusText(resp.Status) == "" || resp.ContentType == "" {
			t.Fatalf("malformed response %+v", resp)
		}
		if strings.Contains(resp.Body, token) {
			if resp.Status != 200 || flavor != FlavorValue || !at.Before(full.Snapshot.Expiry) || method != http.MethodGet {
				t.Fatalf("token served: status %d flavor %q at %v method %q", resp.Status, flavor, at, method)
			}
		}
	})
}
