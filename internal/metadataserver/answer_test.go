package metadataserver

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	now   = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	token = "ya29.test-Sidecar-Token-0123456789abcdef"
	// A mounted Secret as the controller writes it today: no email, no scopes.
	plain = Mounted{Snapshot: Snapshot{AccessToken: token, TokenType: "Bearer", Expiry: now.Add(30*time.Minute + 900*time.Millisecond)}}
	// One that also carries the optional keys.
	full = Mounted{Snapshot: Snapshot{AccessToken: token, TokenType: "Bearer", Expiry: now.Add(time.Hour),
		Email: "ada@example.com", Scopes: []string{"https://www.googleapis.com/auth/userinfo.email", "https://www.googleapis.com/auth/drive.readonly"}}}
	cfg = Config{TokenDir: "/var/run/secrets/grantkeeper"}
)

func get(path string) Request {
	u, err := url.Parse(path)
	if err != nil {
		panic(err)
	}
	return Request{Method: http.MethodGet, Path: u.Path, Query: u.Query(), Flavor: "Google"}
}

// TestRecordedLibraryRequests replays every request the real libraries make (recorded in
// testdata/requests and kept true by test/libraries) and checks each gets what that
// library needs: 200, and JSON declared exactly as application/json where it is JSON.
func TestRecordedLibraryRequests(t *testing.T) {
	files, _ := filepath.Glob("testdata/requests/*.txt")
	if len(files) < 3 {
		t.Fatalf("want recorded requests of Go, Python and Node in testdata/requests, found %v", files)
	}
	c := cfg
	c.ProjectID, c.NumericProjectID = "my-project", "123456789012"
	for _, f := range files {
		reqs, err := ReadRecorded(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reqs {
			t.Run(filepath.Base(f)+" "+r, func(t *testing.T) {
				for _, m := range []Mounted{plain, full} {
					email := m.Snapshot.Email
					if email == "" {
						email = "default"
					}
					path := strings.TrimPrefix(strings.ReplaceAll(r, "{email}", email), "GET ")
					resp := Answer(get(path), m, c, now)
					if resp.Status != http.StatusOK {
						t.Fatalf("email %q: %d %s", m.Snapshot.Email, resp.Status, resp.Body)
					}
					if strings.HasPrefix(resp.Body, "{") && resp.ContentType != "application/json" {
						t.Errorf("JSON served as %q: Python's google-auth would not parse it", resp.ContentType)
					}
				}
			})
		}
	}
}

// ReadRecorded reads a testdata/requests file: one "GET path" per line, # comments.
func ReadRecorded(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

func TestAnswer(t *testing.T) {
	withProject := cfg
	withProject.ProjectID, withProject.NumericProjectID = "my-project", "123456789012"
	flags := cfg
	flags.Email, flags.Scopes = "flag@example.com", []string{"openid", "email"}
	noDir := Mounted{Err: fmt.Errorf("%w: /var/run/secrets/grantkeeper has no \"access_token\" file", ErrNoToken)}
	noHeader := get("/computeMetadata/v1/instance/service-accounts/default/token")
	noHeader.Flavor = ""
	lower := noHeader
	lower.Flavor = "google"
	forwarded := get("/computeMetadata/v1/instance/service-accounts/default/token")
	forwarded.Forwarded = true
	post := get("/computeMetadata/v1/instance/service-accounts/default/token")
	post.Method = http.MethodPost
	withBody := get("/computeMetadata/v1/instance/service-accounts/default/token")
	withBody.Body = true
	rootNoHeader := get("/")
	rootNoHeader.Flavor = ""

	tests := []struct {
		name   string
		req    Request
		m      Mounted
		cfg    Config
		at     time.Time
		status int
		ctype  string
		body   string // exact body for 200, a substring otherwise
	}{
		// The token: expires_in counted from the file's expiry, rounded down.
		{"token", get("/computeMetadata/v1/instance/service-accounts/default/token"), plain, cfg, now, 200, "application/json",
			`{"access_token":"` + token + `","expires_in":1800,"token_type":"Bearer"}`},
		{"token by email alias", get("/computeMetadata/v1/instance/service-accounts/ada@example.com/token"), full, cfg, now, 200, "application/json",
			`{"access_token":"` + token + `","expires_in":3600,"token_type":"Bearer"}`},
		{"token with one second left", get("/computeMetadata/v1/instance/service-accounts/default/token"), plain, cfg, plain.Snapshot.Expiry.Add(-time.Second), 200, "application/json",
			`{"access_token":"` + token + `","expires_in":1,"token_type":"Bearer"}`},
		// Never a token past expiry, nor one with expires_in 0 (clients refuse it).
		{"token under a second left", get("/computeMetadata/v1/instance/service-accounts/default/token"), plain, cfg, plain.Snapshot.Expiry.Add(-999 * time.Millisecond), 503, "", "no newer one has been published"},
		{"token at expiry", get("/computeMetadata/v1/instance/service-accounts/default/token"), plain, cfg, plain.Snapshot.Expiry, 503, "", "no newer one has been published"},
		{"token past expiry", get("/computeMetadata/v1/instance/service-accounts/default/token"), plain, cfg, now.Add(2 * time.Hour), 503, "", "see the grant's Ready condition"},
		{"no Secret mounted", get("/computeMetadata/v1/instance/service-accounts/default/token"), noDir, cfg, now, 503, "", `has no "access_token" file`},

		// scopes=: a subset is served; anything the grant lacks is refused, naming it.
		{"scopes subset", get("/computeMetadata/v1/instance/service-accounts/default/token?scopes=https://www.googleapis.com/auth/drive.readonly"), full, cfg, now, 200, "application/json", ""},
		{"scopes short name", get("/computeMetadata/v1/instance/service-accounts/default/token?scopes=email,https://www.googleapis.com/auth/drive.readonly"), full, cfg, now, 200, "application/json", ""},
		{"scopes superset", get("/computeMetadata/v1/instance/service-accounts/default/token?scopes=https://www.googleapis.com/auth/cloud-platform,email"), full, cfg, now, 400, "",
			"does not carry the requested scopes https://www.googleapis.com/auth/cloud-platform (it has"},
		{"scopes from flags", get("/computeMetadata/v1/instance/service-accounts/default/token?scopes=https://www.googleapis.com/auth/drive"), plain, flags, now, 400, "", "https://www.googleapis.com/auth/drive"},
		{"scopes unknown: not checked", get("/computeMetadata/v1/instance/service-accounts/default/token?scopes=https://www.googleapis.com/auth/drive"), plain, cfg, now, 200, "application/json", ""},

		// The account.
		{"email from Secret", get("/computeMetadata/v1/instance/service-accounts/default/email"), full, flags, now, 200, "application/text", "ada@example.com"},
		{"email from flag", get("/computeMetadata/v1/instance/service-accounts/default/email"), plain, flags, now, 200, "application/text", "flag@example.com"},
		{"email unknown", get("/computeMetadata/v1/instance/service-accounts/default/email"), plain, cfg, now, 404, "", "pass --email"},
		{"scopes from Secret", get("/computeMetadata/v1/instance/service-accounts/default/scopes"), full, flags, now, 200, "application/text",
			"https://www.googleapis.com/auth/userinfo.email\nhttps://www.googleapis.com/auth/drive.readonly\n"},
		{"scopes from flag", get("/computeMetadata/v1/instance/service-accounts/default/scopes"), plain, flags, now, 200, "application/text", "openid\nemail\n"},
		{"scopes unknown", get("/computeMetadata/v1/instance/service-accounts/default/scopes"), plain, cfg, now, 404, "", "pass --scopes"},
		{"recursive", get("/computeMetadata/v1/instance/service-accounts/default/?recursive=true"), full, cfg, now, 200, "application/json",
			`{"aliases":["default"],"email":"ada@example.com","scopes":["https://www.googleapis.com/auth/userinfo.email","https://www.googleapis.com/auth/drive.readonly"]}`},
		// Python needs both keys: an unknown email addresses the account as "default".
		{"recursive unknown", get("/computeMetadata/v1/instance/service-accounts/default/?recursive=true"), plain, cfg, now, 200, "application/json",
			`{"aliases":["default"],"email":"default","scopes":[]}`},
		{"recursive without a Secret", get("/computeMetadata/v1/instance/service-accounts/default/?recursive=true"), noDir, flags, now, 200, "application/json",
			`{"aliases":["default"],"email":"flag@example.com","scopes":["openid","email"]}`},
		{"account directory", get("/computeMetadata/v1/instance/service-accounts/default/"), full, cfg, now, 200, "application/text", "aliases\nemail\nidentity\nscopes\ntoken\n"},
		{"aliases", get("/computeMetadata/v1/instance/service-accounts/default/aliases"), full, cfg, now, 200, "application/text", "default\n"},
		{"accounts listing", get("/computeMetadata/v1/instance/service-accounts/"), full, cfg, now, 200, "application/text", "default/\nada@example.com/\n"},
		{"accounts listing, email unknown", get("/computeMetadata/v1/instance/service-accounts/"), plain, cfg, now, 200, "application/text", "default/\n"},
		{"accounts recursive", get("/computeMetadata/v1/instance/service-accounts/?recursive=true"), plain, cfg, now, 200, "application/json",
			`{"default":{"aliases":["default"],"email":"default","scopes":[]}}`},
		{"unknown account", get("/computeMetadata/v1/instance/service-accounts/mallory@example.com/token"), full, cfg, now, 404, "", `unknown service account "mallory@example.com"`},
		{"identity", get("/computeMetadata/v1/instance/service-accounts/default/identity?audience=https://example.com"), full, cfg, now, 404, "", "user credentials cannot mint ID tokens"},

		// Detection probes and the rest.
		{"root", get("/"), plain, cfg, now, 200, "application/text", "computeMetadata/\n"},
		{"root without the header (Go's probe)", rootNoHeader, plain, cfg, now, 200, "application/text", "computeMetadata/\n"},
		{"v1", get("/computeMetadata/v1/"), plain, cfg, now, 200, "application/text", "instance/\nproject/\nuniverse/\n"},
		{"instance (Node's probe)", get("/computeMetadata/v1/instance"), noDir, cfg, now, 200, "application/text", "service-accounts/\n"},
		{"instance/", get("/computeMetadata/v1/instance/"), noDir, cfg, now, 200, "application/text", "service-accounts/\n"},
		{"project-id", get("/computeMetadata/v1/project/project-id"), plain, withProject, now, 200, "application/text", "my-project"},
		{"numeric-project-id", get("/computeMetadata/v1/project/numeric-project-id"), plain, withProject, now, 200, "application/text", "123456789012"},
		{"project-id unset", get("/computeMetadata/v1/project/project-id"), plain, cfg, now, 404, "", "project-id is not set: pass --project-id"},
		{"numeric-project-id unset", get("/computeMetadata/v1/project/numeric-project-id"), plain, cfg, now, 404, "", "pass --numeric-project-id"},
		{"universe", get("/computeMetadata/v1/universe/universe-domain"), plain, cfg, now, 200, "application/text", "googleapis.com"},
		{"GKE cluster name (Node's environment detection)", get("/computeMetadata/v1/instance/attributes/cluster-name"), plain, cfg, now, 404, "", "is not served"},
		{"unknown path", get("/computeMetadata/v1/instance/zone"), plain, cfg, now, 404, "", "is not served"},
		{"traversal", get("/computeMetadata/v1/instance/service-accounts/default/../../../project/project-id"), plain, withProject, now, 404, "", ""},

		// The header rule and other refusals.
		{"no header", noHeader, plain, cfg, now, 403, "", "missing Metadata-Flavor:Google header"},
		{"header value is case-sensitive", lower, plain, cfg, now, 403, "", "missing Metadata-Flavor:Google header"},
		{"through a proxy", forwarded, plain, cfg, now, 403, "", "X-Forwarded-For"},
		{"POST", post, plain, cfg, now, 405, "", "GET only"},
		{"a body", withBody, plain, cfg, now, 400, "", "no body"},
		{"wait_for_change", get("/computeMetadata/v1/instance/service-accounts/default/token?wait_for_change=true"), plain, cfg, now, 400, "", "not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := Answer(tc.req, tc.m, tc.cfg, tc.at)
			if resp.Status != tc.status {
				t.Fatalf("status %d, want %d; body %q", resp.Status, tc.status, resp.Body)
			}
			if tc.status == 200 {
				if resp.ContentType != tc.ctype {
					t.Errorf("Content-Type %q, want %q", resp.ContentType, tc.ctype)
				}
				if tc.body != "" && resp.Body != tc.body {
					t.Errorf("body\n%s\nwant\n%s", resp.Body, tc.body)
				}
				return
			}
			if !strings.Contains(resp.Body, tc.body) {
				t.Errorf("body %q does not say %q", resp.Body, tc.body)
			}
			if strings.Contains(resp.Body, token) {
				t.Errorf("an error body carries the access token: %q", resp.Body)
			}
		})
	}
}

// The token endpoint's JSON is what x/oauth2/google decodes: a non-zero expires_in and the
// token, or it refuses the answer.
func TestTokenJSONShape(t *testing.T) {
	resp := Answer(get("/computeMetadata/v1/instance/service-accounts/default/token"), full, cfg, now)
	var got struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &got); err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != token || got.ExpiresIn != 3600 || got.TokenType != "Bearer" {
		t.Errorf("got %+v", got)
	}
}

func TestMissingScopes(t *testing.T) {
	granted := []string{"openid", "https://www.googleapis.com/auth/userinfo.email", "profile"}
	for _, tc := range []struct {
		requested []string
		missing   string
	}{
		{nil, ""},
		{[]string{"email", "https://www.googleapis.com/auth/userinfo.profile", "openid"}, ""},
		{[]string{"https://www.googleapis.com/auth/drive", "https://www.googleapis.com/auth/drive", "email"}, "https://www.googleapis.com/auth/drive"},
	} {
		if got := strings.Join(missingScopes(tc.requested, granted), " "); got != tc.missing {
			t.Errorf("missingScopes(%v) = %q, want %q", tc.requested, got, tc.missing)
		}
	}
	if got := splitScopes([]string{"a,b", " c d,", "e"}); strings.Join(got, "|") != "a|b|c|d|e" {
		t.Errorf("splitScopes = %v", got)
	}
}

func TestIsNoToken(t *testing.T) {
	if !IsNoToken(fmt.Errorf("x: %w", ErrNoToken)) || IsNoToken(errors.New("other")) {
		t.Error("IsNoToken")
	}
}
