// Package metadataserver emulates the parts of the GCE metadata server that Google's client
// libraries use to get credentials, backed by a grant's derived Secret mounted as a volume.
// Libraries in every language then use the grant's token unmodified (Application Default
// Credentials), with refreshes, the way GKE Workload Identity serves service accounts.
//
// Answer is the whole protocol as a pure function of the request, the mounted Secret and
// the configuration; Handler and Server add the I/O and the limits.
package metadataserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Protocol constants of the metadata server.
const (
	FlavorHeader = "Metadata-Flavor"
	FlavorValue  = "Google"
	// UniverseDomain is the only universe a Google user grant belongs to.
	UniverseDomain = "googleapis.com"

	// The real server answers text values as application/text. JSON must be exactly
	// application/json: Python's google-auth compares the header verbatim before parsing.
	contentText  = "application/text"
	contentJSON  = "application/json"
	contentError = "text/plain; charset=utf-8"

	root = "/computeMetadata/v1/"
)

// Config is what the sidecar knows beyond the mounted Secret.
type Config struct {
	ProjectID        string
	NumericProjectID string
	// Email and Scopes describe the grant when the Secret does not (its optional "email" and
	// "scope" keys win when present).
	Email  string
	Scopes []string
	// TokenDir names the mounted Secret in messages.
	TokenDir string
}

// Request is the part of an HTTP request that decides the answer.
type Request struct {
	Method    string
	Path      string
	Query     url.Values
	Flavor    string // the Metadata-Flavor header
	Forwarded bool   // an X-Forwarded-For header was present
	Body      bool   // the request has a body (none of the metadata server's requests do)
}

// Response is what to send. Every response also carries Metadata-Flavor: Google.
type Response struct {
	Status      int
	ContentType string
	Body        string
}

// The mounted Secret as of this request: a snapshot, or why there is none.
type Mounted struct {
	Snapshot Snapshot
	Err      error
}

// Answer decides the response to req. now is compared with the token's expiry.
func Answer(req Request, m Mounted, cfg Config, now time.Time) Response {
	if req.Method != http.MethodGet {
		return errorf(http.StatusMethodNotAllowed, "method %s is not allowed: the metadata server answers GET only", req.Method)
	}
	if req.Body {
		return errorf(http.StatusBadRequest, "requests to the metadata server carry no body")
	}
	// The real server answers its root without the header (Go's detection probe sends
	// none and only checks the response's header); the root reveals nothing.
	if req.Path == "/" {
		return text("computeMetadata/\n")
	}
	if req.Forwarded {
		// As the real server: a request relayed by a proxy may come from anywhere.
		return errorf(http.StatusForbidden, "request has an X-Forwarded-For header: the metadata server refuses requests relayed by proxies")
	}
	if req.Flavor != FlavorValue {
		return errorf(http.StatusForbidden, "missing %s:%s header: every request to the metadata server must carry it", FlavorHeader, FlavorValue)
	}
	if req.Query.Get("wait_for_change") == "true" {
		return errorf(http.StatusBadRequest, "wait_for_change is not supported by grantkeeper's metadata server")
	}
	recursive := req.Query.Get("recursive") == "true"
	info := accountInfo(m, cfg)

	switch p := req.Path; p {
	case "/computeMetadata", "/computeMetadata/":
		return text("v1/\n")
	case "/computeMetadata/v1", root:
		return text("instance/\nproject/\nuniverse/\n")
	// Node's gcp-metadata probes .../instance without the slash.
	case root + "instance", root + "instance/":
		if recursive {
			return jsonOf(map[string]any{"serviceAccounts": info.byAlias()})
		}
		return text("service-accounts/\n")
	case root + "instance/service-accounts", root + "instance/service-accounts/":
		if recursive {
			return jsonOf(info.byAlias())
		}
		return text(strings.Join(info.aliasesWithSlash(), "\n") + "\n")
	case root + "project", root + "project/":
		return text("numeric-project-id\nproject-id\n")
	case root + "project/project-id":
		return projectValue(cfg.ProjectID, "project-id", "--project-id")
	case root + "project/numeric-project-id":
		return projectValue(cfg.NumericProjectID, "numeric-project-id", "--numeric-project-id")
	case root + "universe", root + "universe/":
		return text("universe-domain\n")
	case root + "universe/universe-domain":
		return text(UniverseDomain)
	}

	rest, ok := strings.CutPrefix(req.Path, root+"instance/service-accounts/")
	if !ok {
		return notFound(req.Path)
	}
	acct, leaf, _ := strings.Cut(rest, "/")
	if !info.known(acct) {
		return errorf(http.StatusNotFound, "unknown service account %q: this metadata server serves one account, %s", acct, strings.Join(quoteAll(info.aliases()), " or "))
	}
	switch leaf {
	case "":
		if recursive {
			return jsonOf(info.recursive())
		}
		return text("aliases\nemail\nidentity\nscopes\ntoken\n")
	case "aliases":
		return text("default\n")
	case "email":
		if info.Email == "" {
			return errorf(http.StatusNotFound, "the grant's account email is unknown: pass --email to the metadata server (or add an %q key to the derived Secret)", EmailKey)
		}
		return text(info.Email)
	case "scopes":
		if info.Scopes == nil {
			return errorf(http.StatusNotFound, "the grant's scopes are unknown: pass --scopes to the metadata server (or add a %q key to the derived Secret)", ScopeKey)
		}
		return text(strings.Join(info.Scopes, "\n") + "\n")
	case "identity":
		return errorf(http.StatusNotFound, "identity tokens are not available: this metadata server serves a Google user's OAuth grant, and user credentials cannot mint ID tokens; use a service account (e.g. Workload Identity) for ID tokens")
	case "token":
		return tokenAnswer(req.Query, m, info, cfg, now)
	}
	return notFound(req.Path)
}

func tokenAnswer(q url.Values, m Mounted, info account, cfg Config, now time.Time) Response {
	if m.Err != nil {
		return errorf(http.StatusServiceUnavailable, "%v", m.Err)
	}
	if requested := splitScopes(q["scopes"]); len(requested) > 0 && info.Scopes != nil {
		if missing := missingScopes(requested, info.Scopes); len(missing) > 0 {
			return errorf(http.StatusBadRequest, "the grant does not carry the requested scopes %s (it has %s): ask for a subset of the grant's scopes, or get a new consent that includes them",
				strings.Join(missing, " "), strings.Join(info.Scopes, " "))
		}
	}
	s := m.Snapshot
	// Whole seconds left, rounded down: never claim more time than the token has. A token
	// with less than a second left is as good as expired (expires_in 0 is refused by clients).
	left := int64(s.Expiry.Sub(now) / time.Second)
	if left < 1 {
		return errorf(http.StatusServiceUnavailable, "the access token in %s expires at %s (less than a second from now, or already past) and no newer one has been published: see the grant's Ready condition (kubectl describe googleoauthgrant)",
			cfg.TokenDir, s.Expiry.UTC().Format(time.RFC3339))
	}
	return jsonOf(map[string]any{"access_token": s.AccessToken, "expires_in": left, "token_type": s.TokenType})
}

// account is what the service-account endpoints describe: the grant's user.
type account struct {
	Email  string
	Scopes []string // nil: unknown
}

func accountInfo(m Mounted, cfg Config) account {
	a := account{Email: cfg.Email, Scopes: cfg.Scopes}
	if m.Err == nil {
		if m.Snapshot.Email != "" {
			a.Email = m.Snapshot.Email
		}
		if m.Snapshot.Scopes != nil {
			a.Scopes = m.Snapshot.Scopes
		}
	}
	return a
}

func (a account) aliases() []string {
	if a.Email == "" || a.Email == "default" {
		return []string{"default"}
	}
	return []string{"default", a.Email}
}

func (a account) aliasesWithSlash() []string {
	var out []string
	for _, s := range a.aliases() {
		out = append(out, s+"/")
	}
	return out
}

func (a account) known(name string) bool { return slices.Contains(a.aliases(), name) }

// recursive is .../service-accounts/default/?recursive=true. Python's google-auth reads
// email and scopes from it before its first token request and then asks for
// .../service-accounts/<email>/token, so both must be present: an unknown email is given as
// "default" (which addresses the same account) and unknown scopes as an empty list.
func (a account) recursive() map[string]any {
	email := a.Email
	if email == "" {
		email = "default"
	}
	scopes := a.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return map[string]any{"aliases": []string{"default"}, "email": email, "scopes": scopes}
}

func (a account) byAlias() map[string]any {
	out := map[string]any{}
	for _, name := range a.aliases() {
		out[name] = a.recursive()
	}
	return out
}

// canonicalScopes are the short names Google accepts and records in long form.
var canonicalScopes = map[string]string{
	"email":   "https://www.googleapis.com/auth/userinfo.email",
	"profile": "https://www.googleapis.com/auth/userinfo.profile",
}

func canonical(s string) string {
	if c, ok := canonicalScopes[s]; ok {
		return c
	}
	return s
}

// splitScopes splits scopes= values: comma-separated (as the libraries send them), with
// spaces tolerated.
func splitScopes(vals []string) []string {
	var out []string
	for _, v := range vals {
		out = append(out, strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })...)
	}
	return out
}

func missingScopes(requested, granted []string) []string {
	have := map[string]bool{}
	for _, g := range granted {
		have[canonical(g)] = true
	}
	var missing []string
	for _, r := range requested {
		if !have[canonical(r)] && !slices.Contains(missing, r) {
			missing = append(missing, r)
		}
	}
	return missing
}

func projectValue(v, name, flag string) Response {
	if v == "" {
		return errorf(http.StatusNotFound, "%s is not set: pass %s to the metadata server (the oauth.grantkeeper.dev/inject-project-id annotation sets it)", name, flag)
	}
	return text(v)
}

func notFound(path string) Response {
	if len(path) > 200 {
		path = path[:200] + "..."
	}
	return errorf(http.StatusNotFound, "%s is not served: grantkeeper's metadata server serves credentials only (service-accounts, project and universe)", path)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func text(body string) Response {
	return Response{Status: http.StatusOK, ContentType: contentText, Body: body}
}

func jsonOf(v any) Response {
	b, err := json.Marshal(v)
	if err != nil {
		return errorf(http.StatusInternalServerError, "encoding the response: %v", err)
	}
	return Response{Status: http.StatusOK, ContentType: contentJSON, Body: string(b)}
}

func errorf(status int, format string, args ...any) Response {
	return Response{Status: status, ContentType: contentError, Body: fmt.Sprintf(format, args...) + "\n"}
}

// IsNoToken reports whether err says there is no token to serve (for readiness checks).
func IsNoToken(err error) bool { return errors.Is(err, ErrNoToken) }
