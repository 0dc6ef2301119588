// Package derivedsecret builds and reads the access-token Secret a grant publishes. It is
// pure: callers do the API calls. The Secret carries the access token and nothing that
// could mint another one (never the refresh token, never the client secret).
package derivedsecret

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"golang.org/x/oauth2"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// RefreshedAtAnnotation records when the token in the Secret was obtained, so the refresh
// schedule can be recomputed from the Secret alone after a restart.
const RefreshedAtAnnotation = "oauth.grantkeeper.dev/refreshed-at"

// WithdrawnReasonAnnotation marks a Secret whose access token a Google security event
// withdrew (the value is the grant's reason); writing a token drops it.
const WithdrawnReasonAnnotation = "oauth.grantkeeper.dev/withdrawn-reason"

// Token is what the Secret holds.
type Token struct {
	AccessToken string
	Expiry      time.Time
	RefreshedAt time.Time
}

// Data is the Secret's data for a token: access_token, token_type, expiry (RFC 3339) and
// token.json, the JSON form of golang.org/x/oauth2's Token so Go programs can load it as is.
func Data(t Token) map[string][]byte {
	expiry := t.Expiry.UTC().Truncate(time.Second)
	js, _ := json.Marshal(&oauth2.Token{AccessToken: t.AccessToken, TokenType: "Bearer", Expiry: expiry})
	return map[string][]byte{
		oauthv1alpha1.AccessTokenKey: []byte(t.AccessToken),
		oauthv1alpha1.TokenTypeKey:   []byte("Bearer"),
		oauthv1alpha1.ExpiryKey:      []byte(expiry.Format(time.RFC3339)),
		oauthv1alpha1.TokenJSONKey:   js,
	}
}

// Labels marks a derived Secret as ours and names its grant.
func Labels(grant string) map[string]string {
	return map[string]string{oauthv1alpha1.ManagedByLabel: oauthv1alpha1.ManagedByValue, oauthv1alpha1.GrantLabel: grant}
}

// Apply sets the token, labels, annotation and type on s, keeping any other labels and
// annotations users added. It reports whether anything changed.
func Apply(s *corev1.Secret, grant string, t Token) bool {
	before := s.DeepCopy()
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	for k, v := range Labels(grant) {
		s.Labels[k] = v
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	if _, ok := readSummary(s); ok {
		s.GenerateName = ""
	}
	delete(s.Annotations, WithdrawnReasonAnnotation)
	delete(s.Annotations, WithdrawnMessageAnnotation)
	s.Annotations[RefreshedAtAnnotation] = t.RefreshedAt.UTC().Truncate(time.Second).Format(time.RFC3339)
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	s.Data = Data(t)
	return !equalSecret(before, s)
}

func equalSecret(a, b *corev1.Secret) bool {
	return a.Type == b.Type && maps.Equal(a.Labels, b.Labels) && maps.Equal(a.Annotations, b.Annotations) &&
		maps.EqualFunc(a.Data, b.Data, bytes.Equal)
}

// Read returns the token a derived Secret holds, and false when the Secret is not in the
// exact shape Data and Apply produce (edited by hand, half written, or from an older
// version): such a Secret is rewritten with a fresh token rather than trusted.
func Read(s *corev1.Secret, grant string) (Token, bool) {
	if s == nil || s.Type != corev1.SecretTypeOpaque {
		return Token{}, false
	}
	if f, ok := readSummary(s); ok {
		// A cached summary was checked in full by Summarize.
		if len(f) == compactFields {
			if f[2] != grant {
				return Token{}, false
			}
			return readTimes(f[0], f[1])
		}
		if !hasLabels(s, grant) {
			return Token{}, false
		}
		return readTimes(f[0], s.Annotations[RefreshedAtAnnotation])
	}
	if !hasLabels(s, grant) {
		return Token{}, false
	}
	t, ok := readTimes(string(s.Data[oauthv1alpha1.ExpiryKey]), s.Annotations[RefreshedAtAnnotation])
	if !ok {
		return t, ok
	}
	t.AccessToken = string(s.Data[oauthv1alpha1.AccessTokenKey])
	if t.AccessToken == "" {
		return Token{}, false
	}
	if !maps.EqualFunc(Data(t), s.Data, bytes.Equal) {
		return Token{}, false
	}
	return t, true
}

func hasLabels(s *corev1.Secret, grant string) bool {
	for k, v := range Labels(grant) {
		if s.Labels[k] != v {
			return false
		}
	}
	return true
}

// readTimes reads the token's times (RFC 3339).
func readTimes(expiryText, refreshedText string) (Token, bool) {
	expiry, err := time.Parse(time.RFC3339, expiryText)
	if err != nil {
		return Token{}, false
	}
	refreshed, err := time.Parse(time.RFC3339, refreshedText)
	if err != nil || !refreshed.Before(expiry) {
		return Token{}, false
	}
	return Token{Expiry: expiry, RefreshedAt: refreshed}, true
}

// OwnedBy reports whether the grant with this UID is s's controller.
func OwnedBy(s metav1.Object, uid string) bool {
	ref := metav1.GetControllerOfNoCopy(s)
	return ref != nil && string(ref.UID) == uid
}

// Orphaned reports whether s looks like this grant's derived Secret (our labels, naming the
// grant) but has no controller at all: someone removed the owner reference. Such a Secret
// is taken back rather than reported as a conflict. A Secret with another controller never is.
func Orphaned(s metav1.Object, grant string) bool {
	l := s.GetLabels()
	return metav1.GetControllerOfNoCopy(s) == nil &&
		l[oauthv1alpha1.ManagedByLabel] == oauthv1alpha1.ManagedByValue && l[oauthv1alpha1.GrantLabel] == grant
}

// A cached Secret that Summarize checked and reduced carries a summary in its GenerateName,
// a field the API server reads only when it creates an object and that grantkeeper never
// sets, so it is empty on every derived Secret we wrote. The summary exists only in the
// manager's cache: Apply clears it before any write. (An annotation held it before; a map
// of its own cost about 340 bytes a Secret.) It is a MAC, under a key this process drew at
// random, of the Secret's UID and resourceVersion and of the fields that follow it: a value
// set on the Secret by anyone else is never trusted, and Summarize can run twice on one
// object (informers may apply transforms more than once). The fields are the token's expiry,
// the one data field decisions read, and for a compact summary also the refresh time and
// the grant's name.

// compactFields is the number of fields of a compact summary: expiry, refresh time, grant.
const compactFields = 3

var summaryKey = func() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	return k
}()

// summaryMAC is HMAC-SHA256 truncated to 128 bits (RFC 2104 allows half the hash's length):
// enough against forgery, and 32 bytes less for each cached Secret to hold.
func summaryMAC(s *corev1.Secret, fields string) string {
	m := hmac.New(sha256.New, summaryKey)
	m.Write([]byte(string(s.UID) + "/" + s.ResourceVersion + "/" + fields))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// summaryValue is the marker for s carrying fields (none may contain a space).
func summaryValue(s *corev1.Secret, fields ...string) string {
	rest := strings.Join(fields, " ")
	return summaryMAC(s, rest) + " " + rest
}

// readSummary returns the fields of s's summary, and false when s is not a summary of ours.
func readSummary(s *corev1.Secret) ([]string, bool) {
	mac, rest, _ := strings.Cut(s.GenerateName, " ")
	if mac == "" || !hmac.Equal([]byte(mac), []byte(summaryMAC(s, rest))) {
		return nil, false
	}
	return strings.Split(rest, " "), true
}

// managedOnly is the labels map every compact summary shares (read only, as everything in
// the cache is): the label the cache selects on. The grant's name is in the summary.
var managedOnly = map[string]string{oauthv1alpha1.ManagedByLabel: oauthv1alpha1.ManagedByValue}

// Summarize reduces a derived Secret for the manager's cache: when it is in our exact shape
// (Read succeeds) its data is dropped, since decisions need only the times (the expiry moves
// into the summary); a Secret edited by hand keeps all its data, so Read still rejects
// it. The full data is never needed again: publishing replaces it wholesale. Access tokens
// are the largest part of a derived Secret in memory (about 200 bytes, twice).
//
// When, besides, its labels and annotations are exactly ours and a controller owns it (every
// derived Secret nobody edited), it becomes compact: the labels map shared by all of them
// and no annotations, the summary carrying the refresh time and grant's name too. The two
// maps were about 650 bytes a Secret. Nothing is lost: publishing over a compact Secret
// writes back exactly the labels and annotation it had (Apply). It reports whether s is
// compact.
func Summarize(s *corev1.Secret) (compact bool) {
	if f, ok := readSummary(s); ok {
		return len(f) == compactFields
	}
	if s.GenerateName != "" {
		return false // not ours (set by hand, or a forged summary): keep the Secret whole
	}
	grant := s.Labels[oauthv1alpha1.GrantLabel]
	if _, ok := Read(s, grant); !ok {
		return false
	}
	expiry := string(s.Data[oauthv1alpha1.ExpiryKey])
	s.Data = nil
	if maps.Equal(s.Labels, Labels(grant)) && len(s.Annotations) == 1 && metav1.GetControllerOfNoCopy(s) != nil {
		refreshed := s.Annotations[RefreshedAtAnnotation]
		s.Labels, s.Annotations = managedOnly, nil
		s.GenerateName = summaryValue(s, expiry, refreshed, grant)
		return true
	}
	s.GenerateName = summaryValue(s, expiry)
	return false
}
