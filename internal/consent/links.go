package consent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/plan"
	"github.com/grantkeeper/grantkeeper/internal/writable"
)

// DefaultTTL is --consent-link-ttl's default.
const DefaultTTL = 168 * time.Hour

// Links is what the controller uses to keep a live link for a grant that needs a person:
// the link in the grant's link Secret, status.consent Required.
type Links struct {
	Store   Store
	BaseURL string
	TTL     time.Duration
	// Keys signs links and states; the consent server must check with the same key
	// (SecretKey). Nil: ProcessKey, for a process that mints and serves alone.
	Keys KeySource
}

// KeySource is l.Keys, or ProcessKey.
func (l *Links) KeySource() KeySource {
	if l.Keys == nil {
		return ProcessKey{}
	}
	return l.Keys
}

// URL is the consent URL of a link; token is Key.LinkToken's.
func (l *Links) URL(namespace, name, token string) string {
	return strings.TrimSuffix(l.BaseURL, "/") + LinkPath(namespace, name, token)
}

// Mint replaces rec's link with a new one (Record.Mint), signed with key, and sets rec.URL.
func (l *Links) Mint(key Key, g *oauthv1alpha1.GoogleOAuthGrant, rec *Record, scopes []string, why string, now time.Time) {
	ttl := l.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	id := rec.Mint(string(g.UID), scopes, false, why, now, ttl)
	rec.URL = l.URL(g.Namespace, g.Name, key.LinkToken(g.Namespace, g.Name, string(g.UID), id, rec.ExpiresAt))
}

// signed reports whether the record's link is signed with key for g (a link made before the
// key was replaced, or before links were signed, is not: a new one is minted).
func signed(key Key, g *oauthv1alpha1.GoogleOAuthGrant, rec *Record) bool {
	i := strings.LastIndexByte(rec.URL, '/')
	if i < 0 {
		return false
	}
	_, _, ok := key.OpenLink(g.Namespace, g.Name, string(g.UID), rec.URL[i+1:])
	return ok
}

// Ensure offers a live link asking for need (st.Consent Required, the link in the link
// Secret), minting one only when the link there is not live or asks for other scopes. It
// returns when to look again (the link's expiry, to mint a fresh one) and the events to
// record. When a Secret the consent would write is not the grant's (a *writable.Error) it
// offers no link and writes nothing.
func (l *Links) Ensure(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant, need *plan.ConsentNeed, st *oauthv1alpha1.GrantStatus, now time.Time) (time.Duration, []plan.Event, error) {
	sec, rec, err := l.Store.Load(ctx, g.Namespace, g.Name)
	if err == nil {
		err = RefreshTokenWritable(ctx, l.Store.Reader, g)
	}
	if err != nil {
		var werr *writable.Error
		if errors.As(err, &werr) {
			st.Consent = ""
		}
		return 0, nil, err
	}
	key, err := l.KeySource().Key(ctx)
	if err != nil {
		return 0, nil, err
	}
	uid := string(g.UID)
	if rec != nil && rec.Pending(uid, st.InputsFingerprint, now) {
		return rec.ExpiresAt.Sub(now) + time.Second, nil, nil
	}
	if rec != nil && signed(key, g, rec) && rec.Keeps(st.Consent == oauthv1alpha1.ConsentRequired, uid, need.Scopes, false, now) {
		return rec.ExpiresAt.Sub(now) + time.Second, nil, nil
	}
	if rec == nil {
		rec = &Record{}
	}
	l.Mint(key, g, rec, need.Scopes, need.Why, now)
	if err := l.Store.Save(ctx, g, sec, rec); err != nil {
		return 0, nil, err
	}
	st.Consent = oauthv1alpha1.ConsentRequired
	note := fmt.Sprintf("A person must authorize this grant (%s): the Google account's owner opens the consent link (valid until %s; `kubectl grantkeeper consent-link %s -n %s` prints it for someone who may read Secrets here) and consents to %s",
		need.Why, rec.ExpiresAt.Format(time.RFC3339), g.Name, g.Namespace, strings.Join(need.Scopes, " "))
	return rec.ExpiresAt.Sub(now) + time.Second, []plan.Event{{Type: "Normal", Reason: oauthv1alpha1.ReasonConsentRequired, Action: "Consent", Note: note}}, nil
}
