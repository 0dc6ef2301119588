package derivedsecret

import (
	"encoding/json"
	"testing"
	"time"

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
	if _, ok := s.Annotations[summaryAnnotation]; ok || string(s.Data["access_token"]) != tok.AccessToken {
		t.Errorf("Apply over a summary left %v / %v", s.Annotations, s.Data)
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
	for _, marker := range []string{"verified", summaryMAC(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{UID: "uid-1", ResourceVersion: "41"}})} {
		f := forged.DeepCopy()
		f.Annotations[summaryAnnotation] = marker // set by hand, or left from an earlier version
		f.Data = map[string][]byte{"expiry": f.Data["expiry"]}
		Summarize(f)
		if _, ok := Read(f, "analytics"); ok {
			t.Errorf("a Secret stripped by hand with the cache marker %q from outside was trusted", marker)
		}
	}
}
