package credentials

import (
	"strings"
	"testing"
)

// FuzzParseClient: any Secret content parses to a usable client or to a problem that names
// the Secret and never quotes the input.
func FuzzParseClient(f *testing.F) {
	f.Add([]byte(`{"web":{"client_id":"id.apps","client_secret":"GOCSPX-x"}}`), []byte("id"), []byte("secret"))
	f.Add([]byte(`{"installed":{"client_id":"id.apps","client_secret":"GOCSPX-x","redirect_uris":["http://localhost"]}}`), []byte(""), []byte(""))
	f.Add([]byte(`{"installed":{"client_id":1}}`), []byte(" \n"), []byte{0xff})
	f.Add([]byte(`not json`), []byte("id\n"), []byte("s e"))
	f.Fuzz(func(t *testing.T, js, id, secret []byte) {
		for _, data := range []map[string][]byte{
			{"client_secret.json": js},
			{"client_id": id, "client_secret": secret},
		} {
			c, p := ParseClient("client", data)
			if p != nil {
				if !strings.Contains(p.Message, `"client"`) || p.Reason == "" {
					t.Fatalf("problem does not name the Secret: %+v", p)
				}
				if len(secret) >= 8 && strings.Contains(p.Message, string(secret)) {
					t.Fatalf("problem quotes the client secret: %s", p.Message)
				}
				continue
			}
			if c.ID == "" || c.Secret == "" || c.ID != strings.TrimSpace(c.ID) || c.Secret != strings.TrimSpace(c.Secret) {
				t.Fatalf("unusable client accepted: %q", c.ID)
			}
		}
	})
}

// FuzzParseAuthorizedUser: the same for gcloud's authorized_user JSON, and a rotated token
// written back parses again with every other field kept.
func FuzzParseAuthorizedUser(f *testing.F) {
	f.Add([]byte(`{"type":"authorized_user","client_id":"id","client_secret":"s","refresh_token":"1//rt","quota_project_id":"p"}`))
	f.Add([]byte(`{"type":"service_account"}`))
	f.Add([]byte(`{"type":"authorized_user","refresh_token":""}`))
	f.Fuzz(func(t *testing.T, js []byte) {
		c, rt, p := ParseAuthorizedUser("adc", map[string][]byte{"k": js}, "k")
		if p != nil {
			if !strings.Contains(p.Message, `"adc"`) {
				t.Fatalf("problem does not name the Secret: %+v", p)
			}
			return
		}
		if c.ID == "" || c.Secret == "" || rt == "" {
			t.Fatal("unusable credentials accepted")
		}
		out, err := ReplaceAuthorizedUserRefreshToken(js, "1//rotated")
		if err != nil {
			t.Fatalf("cannot write back into JSON that parsed: %v", err)
		}
		c2, rt2, p := ParseAuthorizedUser("adc", map[string][]byte{"k": out}, "k")
		if p != nil || rt2 != "1//rotated" || c2 != c {
			t.Fatalf("write-back broke the credentials: %v %q", p, rt2)
		}
	})
}
