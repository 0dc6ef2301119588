package consent

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"slices"
	"strings"

	"github.com/grantkeeper/grantkeeper/internal/scopes"
)

// Kind is a page a person sees.
type Kind string

const (
	PageGranted  Kind = "granted"
	PagePartial  Kind = "partial"
	PageDenied   Kind = "denied"
	PageMismatch Kind = "mismatch"
	PageExpired  Kind = "expired"
	PageUsed     Kind = "used"
	PageUnknown  Kind = "unknown"
	PageBadState Kind = "badstate"
	PageError    Kind = "error"
)

// Page is one outcome page. Nothing secret goes in: no code, state, token or client secret.
type Page struct {
	Kind      Kind
	Namespace string
	Grant     string
	// Scopes granted (granted, partial), Missing (partial).
	Scopes, Missing []string
	// Actual is the account the person signed in with (mismatch). spec.loginHint is not
	// shown: whoever opens a link would learn whose account the grant expects.
	Actual string
	// NextLink is the follow-up link for the missing scopes (partial).
	NextLink string
	// Detail is a short, non-secret explanation (error).
	Detail string
}

// Status is the HTTP status of a page.
func (p Page) Status() int {
	switch p.Kind {
	case PageExpired, PageUsed:
		return http.StatusGone
	case PageUnknown:
		return http.StatusNotFound
	case PageBadState:
		return http.StatusBadRequest
	case PageMismatch:
		return http.StatusForbidden
	case PageError:
		return http.StatusBadGateway
	}
	return http.StatusOK
}

// Title is the page's heading.
func (p Page) Title() string {
	switch p.Kind {
	case PageGranted:
		return "Access granted"
	case PagePartial:
		return "Some access granted"
	case PageDenied:
		return "Access not granted"
	case PageMismatch:
		return "Wrong Google account"
	case PageExpired:
		return "This link has expired"
	case PageUsed:
		return "This link was already used"
	case PageUnknown:
		return "Unknown link"
	case PageBadState:
		return "This sign-in cannot be completed"
	}
	return "Something went wrong"
}

// Callback is what a callback brought back, for Outcome.
type Callback struct {
	// Error is Google's error parameter ("" on success).
	Error string
	// Requested are the scopes the link asked for; Granted those the token carries.
	Requested, Granted []string
	// LoginHint is spec.loginHint; Email and EmailVerified the ID token's.
	LoginHint, Email string
	EmailVerified    bool
}

// Outcome decides the page for a callback that passed the state check, and whether the
// refresh token is stored.
func Outcome(c Callback) (kind Kind, store bool, missing []string) {
	switch {
	case c.Error == "access_denied":
		return PageDenied, false, nil
	case c.Error != "":
		return PageError, false, nil
	case c.LoginHint != "" && (!strings.EqualFold(c.LoginHint, c.Email) || !c.EmailVerified):
		// An unverified address proves nothing: anyone can put another's on an account.
		return PageMismatch, false, nil
	}
	for _, s := range c.Requested {
		// Google answers with canonical names (`profile` comes back as .../userinfo.profile).
		if !scopes.Contains(c.Granted, s) && !slices.Contains(IdentityScopes, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return PagePartial, true, missing
	}
	return PageGranted, true, nil
}

// pageStyle is the pages' only style; the Content-Security-Policy allows exactly it, by hash.
const pageStyle = `body{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;color:#202124}
h1{font-size:1.5em}.k{font-family:monospace;background:#f1f3f4;padding:0 .2em}li{font-family:monospace}
.ok{color:#188038}.bad{color:#c5221f}`

// ContentSecurityPolicy allows nothing but the pages' style: no scripts, images, frames,
// forms or base URL.
var ContentSecurityPolicy = func() string {
	sum := sha256.Sum256([]byte(pageStyle))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
}()

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>{{.Title}} · grantkeeper</title>
<style>` + pageStyle + `</style></head>
<body><h1 id="title" class="{{if or (eq .Kind "granted") (eq .Kind "partial")}}ok{{else}}bad{{end}}">{{.Title}}</h1>
{{if .Grant}}<p>Grant <span class="k" id="grant">{{.Grant}}</span> in namespace <span class="k" id="namespace">{{.Namespace}}</span>.</p>{{end}}
{{- if eq .Kind "granted"}}
<p>Your consent was stored in the cluster; the grant will be ready in a few seconds. Granted scopes:</p>
<ul id="scopes">{{range .Scopes}}<li>{{.}}</li>{{end}}</ul><p>You can close this page.</p>
{{- else if eq .Kind "partial"}}
<p>Your consent was stored, but not every scope was granted. Granted:</p>
<ul id="scopes">{{range .Scopes}}<li>{{.}}</li>{{end}}</ul>
<p>Not granted:</p><ul id="missing">{{range .Missing}}<li>{{.}}</li>{{end}}</ul>
{{if .NextLink}}<p>To grant the rest, open <a id="next" href="{{.NextLink}}">this new link</a>.</p>{{end}}
{{- else if eq .Kind "denied"}}
<p>You declined at Google's consent screen. Nothing was stored. The link still works if you change your mind.</p>
{{- else if eq .Kind "mismatch"}}
<p>You signed in as <span class="k" id="actual">{{.Actual}}</span>, which is not the Google account this grant expects
(or Google has not verified that address). Nothing was stored. Open the link again and choose the account the grant's owner named.</p>
{{- else if eq .Kind "expired"}}
<p>Consent links are short-lived. Ask the grant's owner for a new one (<span class="k">kubectl grantkeeper consent-link</span>).</p>
{{- else if eq .Kind "used"}}
<p>Consent links work once. Ask the grant's owner for a new one if the grant still needs consent.</p>
{{- else if eq .Kind "unknown"}}
<p>This link does not exist (it may be mistyped, or its grant was deleted).</p>
{{- else if eq .Kind "badstate"}}
<p>The answer from Google does not match a sign-in started here (it may be stale, from another tab, or tampered with). Open the consent link again.</p>
{{- else}}
<p>{{.Detail}}</p>
{{- end}}
</body></html>
`))

// Render writes p as HTML.
func Render(p Page) []byte {
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, p); err != nil {
		// The template is fixed and its data plain strings: this cannot happen.
		panic(err)
	}
	return b.Bytes()
}
