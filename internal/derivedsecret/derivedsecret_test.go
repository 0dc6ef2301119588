package derivedsecret

import (
	"encoding/json"
	"testing"
	"time"

	"golang.org/x/oauth2"
	corev1 "k8s.io/api/core/v1"
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
