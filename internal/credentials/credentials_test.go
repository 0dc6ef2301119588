package credentials

import (
	"strings"
	"testing"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

const secretValue = "GOCSPX-very-secret"

func TestParseClient(t *testing.T) {
	for _, tc := range []struct {
		name   string
		data   map[string][]byte
		want   Client
		reason string
	}{
		{"id and secret", map[string][]byte{"client_id": []byte("id.apps"), "client_secret": []byte(secretValue)}, Client{"id.apps", secretValue}, ""},
		{"trailing newlines from --from-file", map[string][]byte{"client_id": []byte("id.apps\n"), "client_secret": []byte(secretValue + "\r\n")}, Client{"id.apps", secretValue}, ""},
		{"web JSON", map[string][]byte{"client_secret.json": []byte(`{"web":{"client_id":"id.apps","client_secret":"` + secretValue + `","token_uri":"https://oauth2.googleapis.com/token"}}`)}, Client{"id.apps", secretValue}, ""},
		{"installed JSON", map[string][]byte{"client_secret.json": []byte(`{"installed":{"client_id":"id.apps","client_secret":"` + secretValue + `"}}`)}, Client{"id.apps", secretValue}, ""},
		{"JSON wins over loose keys", map[string][]byte{"client_id": []byte("other"), "client_secret.json": []byte(`{"installed":{"client_id":"id.apps","client_secret":"` + secretValue + `"}}`)}, Client{"id.apps", secretValue}, ""},
		{"empty Secret", map[string][]byte{}, Client{}, oauthv1alpha1.ReasonSecretKeyMissing},
		{"only id", map[string][]byte{"client_id": []byte("id")}, Client{}, oauthv1alpha1.ReasonSecretKeyMissing},
		{"only secret", map[string][]byte{"client_secret": []byte(secretValue)}, Client{}, oauthv1alpha1.ReasonSecretKeyMissing},
		{"whitespace-only id", map[string][]byte{"client_id": []byte(" \n"), "client_secret": []byte(secretValue)}, Client{}, oauthv1alpha1.ReasonSecretKeyMissing},
		{"non-UTF-8 secret", map[string][]byte{"client_id": []byte("id"), "client_secret": {0xff, 0xfe}}, Client{}, oauthv1alpha1.ReasonSecretKeyMissing},
		{"JSON not JSON", map[string][]byte{"client_secret.json": []byte("client_secret: " + secretValue)}, Client{}, oauthv1alpha1.ReasonInvalidClientSecret},
		{"JSON neither web nor installed", map[string][]byte{"client_secret.json": []byte(`{"type":"authorized_user","client_secret":"` + secretValue + `"}`)}, Client{}, oauthv1alpha1.ReasonInvalidClientSecret},
		{"JSON lacks client_secret", map[string][]byte{"client_secret.json": []byte(`{"web":{"client_id":"id"}}`)}, Client{}, oauthv1alpha1.ReasonInvalidClientSecret},
		{"JSON lacks client_id", map[string][]byte{"client_secret.json": []byte(`{"web":{"client_secret":"` + secretValue + `"}}`)}, Client{}, oauthv1alpha1.ReasonInvalidClientSecret},
		{"JSON empty", map[string][]byte{"client_secret.json": []byte(``)}, Client{}, oauthv1alpha1.ReasonInvalidClientSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, p := ParseClient("oauth-client", tc.data)
			if tc.reason == "" {
				if p != nil {
					t.Fatalf("unexpected problem: %v", p)
				}
				if got != tc.want {
					t.Errorf("got %+v, want %+v", got, tc.want)
				}
				return
			}
			if p == nil {
				t.Fatalf("want reason %s, got client %+v", tc.reason, got)
			}
			if p.Reason != tc.reason {
				t.Errorf("reason = %s, want %s (%s)", p.Reason, tc.reason, p.Message)
			}
			if !strings.Contains(p.Message, `"oauth-client"`) {
				t.Errorf("message does not name the Secret: %s", p.Message)
			}
			if strings.Contains(p.Message, secretValue) {
				t.Errorf("message leaks the client secret: %s", p.Message)
			}
		})
	}
}

func TestRefreshToken(t *testing.T) {
	for _, tc := range []struct {
		name string
		data map[string][]byte
		want string
		ok   bool
	}{
		{"plain", map[string][]byte{"refresh_token": []byte("1//rt")}, "1//rt", true},
		{"trailing newline from --from-file", map[string][]byte{"refresh_token": []byte("1//rt\n")}, "1//rt", true},
		{"absent", map[string][]byte{"other": []byte("1//rt")}, "", false},
		{"empty", map[string][]byte{"refresh_token": {}}, "", false},
		{"whitespace only", map[string][]byte{"refresh_token": []byte("  \n")}, "", false},
		{"not UTF-8", map[string][]byte{"refresh_token": {0xc3, 0x28}}, "", false},
		{"two tokens pasted", map[string][]byte{"refresh_token": []byte("1//a\n1//b")}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, p := RefreshToken("rt", tc.data, "refresh_token")
			if tc.ok != (p == nil) || got != tc.want {
				t.Fatalf("got %q, %v; want %q ok=%v", got, p, tc.want, tc.ok)
			}
			if p != nil && (p.Reason != oauthv1alpha1.ReasonSecretKeyMissing || !strings.Contains(p.Message, `"refresh_token"`)) {
				t.Errorf("problem = %+v", p)
			}
		})
	}
}

func TestParseAuthorizedUser(t *testing.T) {
	good := `{"account": "", "client_id": "id.apps", "client_secret": "` + secretValue + `", "quota_project_id": "p", "refresh_token": "1//rt", "type": "authorized_user", "universe_domain": "googleapis.com"}`
	c, rt, p := ParseAuthorizedUser("adc", map[string][]byte{"credentials.json": []byte(good)}, "credentials.json")
	if p != nil || c != (Client{"id.apps", secretValue}) || rt != "1//rt" {
		t.Fatalf("got %+v %q %v", c, rt, p)
	}
	for name, data := range map[string]string{
		"not JSON":         `type: authorized_user`,
		"service account":  `{"type": "service_account", "client_id": "x", "client_secret": "y", "refresh_token": "z"}`,
		"no refresh token": `{"type": "authorized_user", "client_id": "x", "client_secret": "` + secretValue + `"}`,
		"no client secret": `{"type": "authorized_user", "client_id": "x", "refresh_token": "z"}`,
		"no client id":     `{"type": "authorized_user", "client_secret": "` + secretValue + `", "refresh_token": "z"}`,
		"empty":            ``,
		"whitespace only":  " \n",
	} {
		_, _, p := ParseAuthorizedUser("adc", map[string][]byte{"credentials.json": []byte(data)}, "credentials.json")
		if p == nil || strings.Contains(p.Message, secretValue) || !strings.Contains(p.Message, `"adc"`) {
			t.Errorf("%s: problem = %+v", name, p)
		}
	}

	out, err := ReplaceAuthorizedUserRefreshToken([]byte(good), "1//new")
	if err != nil {
		t.Fatal(err)
	}
	c, rt, p = ParseAuthorizedUser("adc", map[string][]byte{"k": out}, "k")
	if p != nil || rt != "1//new" || c.ID != "id.apps" || !strings.Contains(string(out), `"quota_project_id": "p"`) {
		t.Errorf("after replacing: %s", out)
	}
}
