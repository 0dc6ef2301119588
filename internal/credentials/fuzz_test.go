package credentials

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// rot13 maps letters and digits to others of the same kind and leaves every other byte
// alone: emptiness, whitespace, UTF-8 validity and JSON validity are kept. A problem
// message that does not quote a value is the same for a value and its rot13; one that
// quotes it differs, whatever its length.
func rot13(b []byte) []byte {
	out := bytes.Clone(b)
	for i, c := range out {
		switch {
		case c >= 'a' && c <= 'z':
			out[i] = 'a' + (c-'a'+13)%26
		case c >= 'A' && c <= 'Z':
			out[i] = 'A' + (c-'A'+13)%26
		case c >= '0' && c <= '9':
			out[i] = '0' + (c-'0'+5)%10
		}
	}
	return out
}

// consoleJSON is the console's download (form "web" or "installed") with these values.
func consoleJSON(form string, id, secret []byte) []byte {
	b, _ := json.Marshal(map[string]map[string]string{form: {"client_id": string(id), "client_secret": string(secret)}})
	return b
}

// FuzzParseClient: any Secret content parses to a usable client or to a problem that names
// the Secret and never quotes the client secret, in either form.
func FuzzParseClient(f *testing.F) {
	f.Add([]byte(`{"web":{"client_id":"id.apps","client_secret":"GOCSPX-x"}}`), []byte("id"), []byte("secret"))
	f.Add([]byte(`{"installed":{"client_id":"id.apps","client_secret":"GOCSPX-x","redirect_uris":["http://localhost"]}}`), []byte(""), []byte(""))
	f.Add([]byte(`{"installed":{"client_id":1}}`), []byte(" \n"), []byte{0xff})
	f.Add([]byte(`not json`), []byte("id\n"), []byte("s e"))
	f.Add([]byte(`{"web":{"client_id":"id.apps","client_secret":"a b"}}`), []byte(""), []byte("x1 y2"))
	f.Add([]byte(`{"installed":{"client_secret":"s"}}`), []byte("id"), []byte("s"))
	f.Fuzz(func(t *testing.T, js, id, secret []byte) {
		forms := map[string]func(secret []byte) map[string][]byte{
			"keys": func(s []byte) map[string][]byte { return map[string][]byte{"client_id": id, "client_secret": s} },
			"web": func(s []byte) map[string][]byte {
				return map[string][]byte{"client_secret.json": consoleJSON("web", id, s)}
			},
			"installed": func(s []byte) map[string][]byte {
				return map[string][]byte{"client_secret.json": consoleJSON("installed", id, s)}
			},
		}
		for form, data := range forms {
			c, p := ParseClient("client", data(secret))
			_, p2 := ParseClient("client", data(rot13(secret)))
			if (p == nil) != (p2 == nil) || (p != nil && p.Message != p2.Message) {
				t.Fatalf("%s form: the problem depends on the client secret's value (it quotes it): %+v vs %+v", form, p, p2)
			}
			if p != nil {
				if !strings.Contains(p.Message, `"client"`) || p.Reason == "" {
					t.Fatalf("problem does not name the Secret: %+v", p)
				}
				continue
			}
			if c.ID == "" || c.Secret == "" || c.ID != strings.TrimSpace(c.ID) || c.Secret != strings.TrimSpace(c.Secret) {
				t.Fatalf("unusable client accepted: %q", c.ID)
			}
		}
		// Arbitrary JSON: no panic, and a problem names the Secret.
		if _, p := ParseClient("client", map[string][]byte{"client_secret.json": js}); p != nil && !strings.Contains(p.Message, `"client"`) {
			t.Fatalf("problem does not name the Secret: %+v", p)
		}
	})
}

// authorizedUserJSON is gcloud's file with these fields (and one of its optional ones).
func authorizedUserJSON(typ, id, secret, rt []byte) []byte {
	b, _ := json.Marshal(map[string]string{"type": string(typ), "client_id": string(id), "client_secret": string(secret),
		"refresh_token": string(rt), "quota_project_id": "reports-prod"})
	return b
}

// decodeFields decodes a JSON object's fields to comparable values (numbers kept as written).
func decodeFields(t *testing.T, js []byte) map[string]any {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(js, &raw); err != nil {
		t.Fatalf("not a JSON object: %v", err)
	}
	out := map[string]any{}
	for k, v := range raw {
		d := json.NewDecoder(bytes.NewReader(v))
		d.UseNumber()
		var x any
		if err := d.Decode(&x); err != nil {
			t.Fatalf("field %q: %v", k, err)
		}
		out[k] = x
	}
	return out
}

// FuzzParseAuthorizedUser: the same for gcloud's authorized_user JSON (no problem quotes
// the client secret or the refresh token), and a rotated token written back parses again
// with every other field kept exactly.
func FuzzParseAuthorizedUser(f *testing.F) {
	f.Add([]byte(`{"type":"authorized_user","client_id":"id","client_secret":"s","refresh_token":"1//rt","quota_project_id":"p"}`), []byte("authorized_user"), []byte("id"), []byte("s"), []byte("1//rt"))
	f.Add([]byte(`{"type":"service_account"}`), []byte("service_account"), []byte("id"), []byte("GOCSPX-x"), []byte("1//rt"))
	f.Add([]byte(`{"type":"authorized_user","refresh_token":""}`), []byte("authorized_user"), []byte(""), []byte("s e"), []byte(""))
	f.Add([]byte(`{"type":"authorized_user","client_id":"id","client_secret":"s","refresh_token":"r","account":"","universe_domain":"googleapis.com","n":1.50,"o":{"a":[1,"x"]}}`), []byte("authorized_user"), []byte("id"), []byte(""), []byte("1//rt"))
	f.Add([]byte(`{"type":"authorized_user","client_id":"id","client_secret":"s","refresh_token":"r","Refresh_Token":"other"}`), []byte("authorized_user"), []byte("id"), []byte("GOCSPX-x"), []byte(" "))
	f.Fuzz(func(t *testing.T, js, typ, id, secret, rt []byte) {
		// Built from fields: a problem must not depend on the secret's or the token's value.
		built := authorizedUserJSON(typ, id, secret, rt)
		_, _, p := ParseAuthorizedUser("adc", map[string][]byte{"k": built}, "k")
		_, _, p2 := ParseAuthorizedUser("adc", map[string][]byte{"k": authorizedUserJSON(typ, id, rot13(secret), rot13(rt))}, "k")
		if (p == nil) != (p2 == nil) || (p != nil && p.Message != p2.Message) {
			t.Fatalf("the problem depends on the client secret's or refresh token's value (it quotes it): %+v vs %+v", p, p2)
		}

		for _, in := range [][]byte{js, built} {
			c, rt, p := ParseAuthorizedUser("adc", map[string][]byte{"k": in}, "k")
			if p != nil {
				if !strings.Contains(p.Message, `"adc"`) {
					t.Fatalf("problem does not name the Secret: %+v", p)
				}
				continue
			}
			if c.ID == "" || c.Secret == "" || rt == "" {
				t.Fatal("unusable credentials accepted")
			}
			out, err := ReplaceAuthorizedUserRefreshToken(in, "1//rotated")
			if err != nil {
				t.Fatalf("cannot write back into JSON that parsed: %v", err)
			}
			c2, rt2, p := ParseAuthorizedUser("adc", map[string][]byte{"k": out}, "k")
			if p != nil || rt2 != "1//rotated" || c2 != c {
				t.Fatalf("write-back broke the credentials: %v %q", p, rt2)
			}
			before, after := decodeFields(t, in), decodeFields(t, out)
			before["refresh_token"] = "1//rotated"
			if !reflect.DeepEqual(before, after) {
				t.Fatalf("write-back changed other fields:\n%v\n%v", before, after)
			}
		}
	})
}

// FuzzParseServiceAccountKey: any Secret content parses to a usable key or to a problem that
// names the Secret; a problem never depends on (so never quotes) the private key's body.
func FuzzParseServiceAccountKey(f *testing.F) {
	f.Add(keyJSON(nil), []byte("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ"))
	f.Add([]byte(`{"type":"service_account","client_email":"a@b","private_key":"x"}`), []byte(""))
	f.Add([]byte(`{"type":"authorized_user","client_id":"id","client_secret":"s","refresh_token":"r"}`), []byte("AAAA"))
	f.Add([]byte(`{"type":"service_account","Client_Email":"a@b"}`), []byte("-----BEGIN"))
	f.Add([]byte(`{"type":1,"client_email":["a"]}`), []byte{0xff, 0x00})
	f.Add([]byte(`not json`), []byte("\n"))
	f.Fuzz(func(t *testing.T, raw, body []byte) {
		k, p := ParseServiceAccountKey("sa-key", map[string][]byte{"credentials.json": raw}, "credentials.json")
		if p == nil && (k.PrivateKey == nil || k.Email == "") {
			t.Fatalf("no problem but an unusable key: %+v", k)
		}
		if p != nil && !strings.Contains(p.Message, `"sa-key"`) {
			t.Fatalf("problem does not name the Secret: %q", p.Message)
		}
		withBody := func(b []byte) *Problem {
			pemText := "-----BEGIN PRIVATE KEY-----\n" + string(b) + "\n-----END PRIVATE KEY-----\n"
			_, p := ParseServiceAccountKey("sa-key", map[string][]byte{"credentials.json": keyJSON(func(m map[string]any) { m["private_key"] = pemText })}, "credentials.json")
			return p
		}
		p1, p2 := withBody(body), withBody(rot13(body))
		if p1 != nil && p2 != nil && p1.Message != p2.Message {
			t.Fatalf("the problem depends on the private key's value (it quotes it): %q vs %q", p1.Message, p2.Message)
		}
	})
}
