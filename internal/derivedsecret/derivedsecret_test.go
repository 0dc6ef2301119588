package derivedsecret

import (
	"bytes"
	"encoding/json"
	"maps"
	"testing"
	"time"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"golang.org/x/oauth2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var tok = Token{AccessToken: "ya29.abc", Expiry: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), RefreshedAt: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}

func TestDataIsLoadableByOAuth2(t *testing.T) {
	d := Data(tok)
	var got oauth2.Token
	if err := json.Unmarshal(d["token.json"], &got); err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != tok.AccessToken || got.TokenType != "Bearer" || !got.Expiry.Equal(tok.Expiry) || got.RefreshToken != "" {
		t.Errorf("token.json = %s", d["token.json"])
	}
	if string(d["expiry"]) != "2026-11-21T10:00:00Z" || string(d["token_type"]) != "Bearer" || string(d["access_token"]) != "ya29.abc" {
		t.Errorf("data = %v", d)
	}
	var keys map[string]any
	_ = json.Unmarshal(d["token.json"], &keys)
	if len(keys) != 3 {
		t.Errorf("token.json has keys %v, want exactly access_token, token_type, expiry", keys)
	}
}

func TestApplyAndRead(t *testing.T) {
	s := &corev1.Secret{}
	s.Labels = map[string]string{"team": "reports"}
	if !Apply(s, "analytics", tok) {
		t.Fatal("Apply on an empty Secret reported no change")
	}
	if Apply(s, "analytics", tok) {
		t.Error("second Apply reported a change")
	}
	if s.Labels["team"] != "reports" {
		t.Error("user label dropped")
	}
	got, ok := Read(s, "analytics")
	if !ok || got != tok {
		t.Fatalf("Read = %+v, %v", got, ok)
	}
	for name, edit := range map[string]func(*corev1.Secret){
		"token edited":        func(s *corev1.Secret) { s.Data["access_token"] = []byte("x") },
		"expiry edited":       func(s *corev1.Secret) { s.Data["expiry"] = []byte("2030-01-01T00:00:00Z") },
		"key removed":         func(s *corev1.Secret) { delete(s.Data, "token.json") },
		"key added":           func(s *corev1.Secret) { s.Data["refresh_token"] = []byte("1//x") },
		"label removed":       func(s *corev1.Secret) { delete(s.Labels, "app.kubernetes.io/managed-by") },
		"other grant":         func(s *corev1.Secret) { s.Labels["oauth.grantkeeper.dev/grant"] = "other" },
		"annotation removed":  func(s *corev1.Secret) { delete(s.Annotations, RefreshedAtAnnotation) },
		"type changed":        func(s *corev1.Secret) { s.Type = corev1.SecretTypeDockerConfigJson },
		"refreshed at expiry": func(s *corev1.Secret) { s.Annotations[RefreshedAtAnnotation] = "2026-11-21T10:00:00Z" },
	} {
		c := s.DeepCopy()
		edit(c)
		if _, ok := Read(c, "analytics"); ok {
			t.Errorf("%s: Read accepted a Secret not in our shape", name)
		}
	}
}

func TestSummarize(t *testing.T) {
	s := &corev1.Secret{}
	Apply(s, "analytics", tok)
	s.UID, s.ResourceVersion = "uid-1", "41"
	Summarize(s)
	Summarize(s) // informers may transform an object twice
	if _, ok := s.Data["access_token"]; ok || len(s.Data) != 0 {
		t.Fatalf("a verified Secret keeps data %v in the cache", s.Data)
	}
	Summarize(s) // informers may transform an object twice
	got, ok := Read(s, "analytics")
	if !ok || !got.Expiry.Equal(tok.Expiry) || !got.RefreshedAt.Equal(tok.RefreshedAt) {
		t.Fatalf("Read(summary) = %+v, %v", got, ok)
	}
	if _, ok := Read(s, "other"); ok {
		t.Error("a summary read as another grant's")
	}
	// Publishing over the cached summary writes the whole Secret and no cache marker.
	Apply(s, "analytics", tok)
	if s.GenerateName != "" || string(s.Data["access_token"]) != tok.AccessToken {
		t.Errorf("Apply over a summary left %q / %v", s.GenerateName, s.Data)
	}

	edited := &corev1.Secret{}
	Apply(edited, "analytics", tok)
	edited.Data["access_token"] = []byte("edited by hand")
	Summarize(edited)
	if _, ok := Read(edited, "analytics"); ok || string(edited.Data["access_token"]) != "edited by hand" {
		t.Error("a Secret edited by hand was summarized as ours: it would never be repaired")
	}
	forged := &corev1.Secret{}
	Apply(forged, "analytics", tok)
	forged.UID, forged.ResourceVersion = "uid-1", "42"
	older := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{UID: "uid-1", ResourceVersion: "41"}}
	expiry := string(forged.Data["expiry"])
	refreshed := forged.Annotations[RefreshedAtAnnotation]
	for _, marker := range []string{"verified", summaryValue(older, expiry), summaryValue(older, expiry, refreshed, "analytics"),
		"0000 " + expiry + " " + refreshed + " analytics"} {
		f := forged.DeepCopy()
		f.GenerateName = marker // set by hand, or left from an earlier process
		f.Data = map[string][]byte{"expiry": f.Data["expiry"]}
		Summarize(f)
		if _, ok := Read(f, "analytics"); ok {
			t.Errorf("a Secret stripped by hand with the cache marker %q from outside was trusted", marker)
		}
	}
}

// TestCompactSummary: a derived Secret nobody edited is cached without its own label and
// annotation maps, reads as before, and publishing over it writes back exactly what it had;
// one with a user's label or annotation, or without a controller, keeps them.
func TestCompactSummary(t *testing.T) {
	controller := true
	owned := func() *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "analytics-access-token", UID: "uid-1", ResourceVersion: "41",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "oauth.grantkeeper.dev/v1alpha1", Kind: "GoogleOAuthGrant", Name: "analytics", UID: "grant-uid", Controller: &controller}}}}
		Apply(s, "analytics", tok)
		return s
	}
	original := owned()
	s := original.DeepCopy()
	if !Summarize(s) || !Summarize(s) {
		t.Fatal("an unedited, owned derived Secret was not made compact (or not recognised as compact again)")
	}
	if len(s.Labels) != 1 || s.Annotations != nil || s.Data != nil {
		t.Errorf("compact Secret keeps labels %v, annotations %v, data %v", s.Labels, s.Annotations, s.Data)
	}
	got, ok := Read(s, "analytics")
	if !ok || !got.Expiry.Equal(tok.Expiry) || !got.RefreshedAt.Equal(tok.RefreshedAt) {
		t.Fatalf("Read(compact) = %+v, %v", got, ok)
	}
	if _, ok := Read(s, "other"); ok {
		t.Error("a compact summary read as another grant's")
	}
	if !OwnedBy(s, "grant-uid") || Orphaned(s, "analytics") {
		t.Error("a compact Secret lost its owner")
	}
	// Publishing over it (on a copy, as the cache's objects are never written to) restores
	// exactly the labels and annotations it had.
	republished := s.DeepCopy()
	Apply(republished, "analytics", tok)
	if !maps.Equal(republished.Labels, original.Labels) || !maps.Equal(republished.Annotations, original.Annotations) ||
		!maps.EqualFunc(republished.Data, original.Data, bytes.Equal) || republished.GenerateName != "" {
		t.Errorf("publishing over a compact Secret wrote labels %v, annotations %v; it had %v, %v",
			republished.Labels, republished.Annotations, original.Labels, original.Annotations)
	}
	if len(managedOnly) != 1 || managedOnly[oauthv1alpha1.GrantLabel] != "" {
		t.Errorf("publishing wrote into the labels map compact Secrets share: %v", managedOnly)
	}

	for name, edit := range map[string]func(*corev1.Secret){
		"a user's label":        func(s *corev1.Secret) { s.Labels["team"] = "reports" },
		"a user's annotation":   func(s *corev1.Secret) { s.Annotations["note"] = "keep me" },
		"no controller":         func(s *corev1.Secret) { s.OwnerReferences = nil },
		"a user's generateName": func(s *corev1.Secret) { s.GenerateName = "analytics-" },
	} {
		s := owned()
		edit(s)
		want := s.DeepCopy()
		if Summarize(s) {
			t.Errorf("%s: made compact", name)
		}
		if _, ok := Read(s, "analytics"); !ok {
			t.Errorf("%s: the summary does not read", name)
		}
		Apply(s, "analytics", tok)
		if !maps.Equal(s.Labels, want.Labels) || !maps.Equal(s.Annotations, want.Annotations) || s.GenerateName != want.GenerateName {
			t.Errorf("%s: publishing wrote labels %v, annotations %v, generateName %q, want %v, %v, %q", name,
				s.Labels, s.Annotations, s.GenerateName, want.Labels, want.Annotations, want.GenerateName)
		}
	}
}
