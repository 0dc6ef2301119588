// Package credentials reads an OAuth client and a refresh token out of Secret data, and says
// precisely what is wrong when it cannot. Messages name Secrets and keys, never values.
package credentials

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// Client is an OAuth client's id and secret.
type Client struct {
	ID     string
	Secret string
}

// Problem is bad input in a user's Secret: a condition reason and a message for humans.
type Problem struct {
	Reason  string
	Message string
}

func (p *Problem) Error() string { return p.Message }

// ProblemReasons are the Ready reasons a Problem can carry (SecretNotFound comes from the
// reconciler, which finds Secrets missing before anything here runs). Bad input never heals
// by retrying: each is permanent until an input changes.
var ProblemReasons = []string{oauthv1alpha1.ReasonSecretNotFound, oauthv1alpha1.ReasonSecretKeyMissing, oauthv1alpha1.ReasonInvalidClientSecret, oauthv1alpha1.ReasonInvalidServiceAccountKey}

func missing(secret, key, how string) *Problem {
	return &Problem{Reason: oauthv1alpha1.ReasonSecretKeyMissing,
		Message: fmt.Sprintf("Secret %q has no usable key %q (%s); %s", secret, key, how, "add it, e.g. kubectl create secret generic ... --from-literal/--from-file")}
}

// value returns data[key] with surrounding whitespace removed (kubectl create secret
// --from-file keeps a file's trailing newline), or why it cannot be used.
func value(secret string, data map[string][]byte, key string) (string, *Problem) {
	raw, ok := data[key]
	if !ok {
		return "", missing(secret, key, "the key is absent")
	}
	if !utf8.Valid(raw) {
		return "", missing(secret, key, "the value is not UTF-8 text")
	}
	v := strings.TrimSpace(string(raw))
	if v == "" {
		return "", missing(secret, key, "the value is empty")
	}
	if strings.ContainsAny(v, " \t\r\n") {
		return "", missing(secret, key, "the value contains whitespace inside it")
	}
	return v, nil
}

// RefreshToken reads the refresh token from data[key] of the Secret named secret.
func RefreshToken(secret string, data map[string][]byte, key string) (string, *Problem) {
	return value(secret, data, key)
}

// ParseClient reads an OAuth client from a Secret: the keys client_id and client_secret, or
// the key client_secret.json holding the JSON the Google Cloud console downloads
// ({"web": {...}} or {"installed": {...}}).
func ParseClient(secret string, data map[string][]byte) (Client, *Problem) {
	if raw, ok := data[oauthv1alpha1.ClientSecretJSONKey]; ok {
		return parseClientJSON(secret, raw)
	}
	_, hasID := data[oauthv1alpha1.ClientIDKey]
	_, hasSecret := data[oauthv1alpha1.ClientSecretKey]
	if !hasID && !hasSecret {
		return Client{}, &Problem{Reason: oauthv1alpha1.ReasonSecretKeyMissing,
			Message: fmt.Sprintf("Secret %q has neither the keys %q and %q nor the key %q; add the OAuth client's credentials in one of those forms",
				secret, oauthv1alpha1.ClientIDKey, oauthv1alpha1.ClientSecretKey, oauthv1alpha1.ClientSecretJSONKey)}
	}
	id, p := value(secret, data, oauthv1alpha1.ClientIDKey)
	if p != nil {
		return Client{}, p
	}
	sec, p := value(secret, data, oauthv1alpha1.ClientSecretKey)
	if p != nil {
		return Client{}, p
	}
	return Client{ID: id, Secret: sec}, nil
}

// clientJSON is the console's download format. Only the fields we use are declared.
type clientJSON struct {
	Web       *clientFields `json:"web"`
	Installed *clientFields `json:"installed"`
}

type clientFields struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

func parseClientJSON(secret string, raw []byte) (Client, *Problem) {
	bad := func(why string) (Client, *Problem) {
		return Client{}, &Problem{Reason: oauthv1alpha1.ReasonInvalidClientSecret,
			Message: fmt.Sprintf("Secret %q key %q %s; store the client JSON exactly as downloaded from the Google Cloud console (APIs & Services > Credentials)",
				secret, oauthv1alpha1.ClientSecretJSONKey, why)}
	}
	var cj clientJSON
	// json.Unmarshal errors can quote input; we report our own words instead.
	if err := json.Unmarshal(raw, &cj); err != nil {
		return bad("is not valid JSON")
	}
	f := cj.Web
	if f == nil {
		f = cj.Installed
	}
	if f == nil {
		return bad(`has neither a "web" nor an "installed" object`)
	}
	id, sec := strings.TrimSpace(f.ClientID), strings.TrimSpace(f.ClientSecret)
	switch {
	case id == "":
		return bad("lacks client_id")
	case sec == "":
		return bad("lacks client_secret")
	}
	return Client{ID: id, Secret: sec}, nil
}

// ParseAuthorizedUser reads the client and refresh token from data[key] holding the JSON
// `gcloud auth application-default login` writes ({"type": "authorized_user", ...}).
func ParseAuthorizedUser(secret string, data map[string][]byte, key string) (Client, string, *Problem) {
	raw, ok := data[key]
	if !ok || len(strings.TrimSpace(string(raw))) == 0 {
		return Client{}, "", missing(secret, key, "the key is absent or empty")
	}
	bad := func(why string) (Client, string, *Problem) {
		return Client{}, "", &Problem{Reason: oauthv1alpha1.ReasonInvalidClientSecret,
			Message: fmt.Sprintf("Secret %q key %q %s; store the file `gcloud auth application-default login --client-id-file=...` writes (application_default_credentials.json)", secret, key, why)}
	}
	// Fields are read by their exact names (encoding/json would also match "Client_ID"),
	// so that parsing and ReplaceAuthorizedUserRefreshToken always agree on which is which.
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return bad("is not valid JSON")
	}
	field := func(k string) string {
		var v string
		_ = json.Unmarshal(m[k], &v)
		return v
	}
	if typ := field("type"); typ != "authorized_user" {
		return bad(fmt.Sprintf(`has type %q, not "authorized_user"`, truncate(typ, 32)))
	}
	c := Client{ID: strings.TrimSpace(field("client_id")), Secret: strings.TrimSpace(field("client_secret"))}
	rt := strings.TrimSpace(field("refresh_token"))
	switch {
	case c.ID == "":
		return bad("lacks client_id")
	case c.Secret == "":
		return bad("lacks client_secret")
	case rt == "":
		return bad("lacks refresh_token")
	}
	return c, rt, nil
}

// ReplaceAuthorizedUserRefreshToken returns the authorized_user JSON with refresh_token
// replaced, every other field kept.
func ReplaceAuthorizedUserRefreshToken(raw []byte, refreshToken string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errors.New("the credentials JSON no longer parses")
	}
	rt, _ := json.Marshal(refreshToken)
	m["refresh_token"] = rt
	return json.MarshalIndent(m, "", "  ")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
