// Package consent serves consent links: a person opens a link (kept in the grant's link
// Secret, readable only by those who may read Secrets), authorizes at Google, and the callback stores the refresh token in the
// cluster. Link state lives in one Secret per grant (Record), so every replica serves every
// link; docs/architecture.md explains the design. This file is the pure part: ids, states,
// the record and its checks.
package consent

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Record is what the link Secret holds (key RecordKey, JSON). Link ids and states are
// stored only as hashes; the current link itself is kept beside it (key URLKey, URL), for
// those who may read Secrets in the namespace.
type Record struct {
	// URL is the current link (URLKey, not part of the JSON); "" when there is none.
	URL      string `json:"-"`
	GrantUID string `json:"grantUID"`
	// LinkHash is the SHA-256 (hex) of the current link id.
	LinkHash string `json:"linkHash"`
	// Scopes the link asks for. Incremental was set by versions before issue 28 (missing
	// scopes only, with include_granted_scopes); new links never are, and Keeps replaces one.
	Scopes      []string  `json:"scopes"`
	Incremental bool      `json:"incremental,omitempty"`
	Why         string    `json:"why,omitempty"`
	MintedAt    time.Time `json:"mintedAt"`
	ExpiresAt   time.Time `json:"expiresAt"`
	// UsedAt is when the link was claimed by a callback; zero while usable.
	UsedAt time.Time `json:"usedAt,omitzero"`
	// UsedStateHash is the hash of the state that claimed the link, so that state (and only
	// it) answers "used" afterwards.
	UsedStateHash string `json:"usedStateHash,omitempty"`
	// UsedFingerprint is the grant's status.inputsFingerprint when the link was claimed:
	// while the status still answers those inputs, the consent's outcome is not in it yet
	// (Pending).
	UsedFingerprint string `json:"usedFingerprint,omitempty"`
	// Replaced are hashes of earlier links (newest last), so they answer 410, not 404.
	Replaced []string `json:"replaced,omitempty"`
	// Attempt is the sign-in under way, from the last time the link was opened.
	Attempt *Attempt `json:"attempt,omitempty"`
}

// Attempt is one opening of a link: the state's hash and the PKCE verifier, which never
// leaves the server side. It is bound to the link that was opened (LinkHash) and lasts
// AttemptTTL.
type Attempt struct {
	StateHash string    `json:"stateHash"`
	Verifier  string    `json:"verifier"`
	Started   time.Time `json:"started"`
	LinkHash  string    `json:"linkHash"`
}

// AttemptTTL is how long a sign-in may take from opening the link to the callback: Google's
// codes live minutes, and a state found later (a browser history, a log) must not work.
const AttemptTTL = 15 * time.Minute

// maxReplaced bounds the history of replaced links kept for 410 answers.
const maxReplaced = 16

// NewID returns a link id or state nonce: 130 bits from crypto/rand, base32 (URL-safe).
func NewID() string { return rand.Text() }

// Hash is the stored form of a link id or state nonce.
func Hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func sameHash(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// idPattern is rand.Text's alphabet and length: anything else is not a link id we made.
var idPattern = regexp.MustCompile(`^[A-Z2-7]{26}$`)

// ValidID reports whether s has the shape of an id from NewID.
func ValidID(s string) bool { return idPattern.MatchString(s) }

// namePattern is a Kubernetes object name (DNS subdomain) or namespace.
var namePattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)

// Mint replaces r's link with a new one for scopes, returning the new link id. The old
// link's hash moves to Replaced.
func (r *Record) Mint(grantUID string, scopes []string, incremental bool, why string, now time.Time, ttl time.Duration) string {
	id := NewID()
	switch {
	case r.GrantUID != grantUID:
		r.Replaced = nil
	case r.LinkHash != "":
		r.Replaced = append(r.Replaced, r.LinkHash)
		if len(r.Replaced) > maxReplaced {
			r.Replaced = r.Replaced[len(r.Replaced)-maxReplaced:]
		}
	}
	*r = Record{GrantUID: grantUID, LinkHash: Hash(id), Scopes: slices.Clone(scopes), Incremental: incremental, Why: why,
		MintedAt: now.UTC(), ExpiresAt: now.Add(ttl).UTC().Truncate(time.Second), Replaced: r.Replaced}
	return id
}

// LinkState is what a link id is, for a record and a grant.
type LinkState int

const (
	// LinkUnknown: no such link (forged, mistyped, or from a grant since deleted): 404.
	LinkUnknown LinkState = iota
	// LinkLive can be opened.
	LinkLive
	// LinkUsed: it served a consent already, or a newer link replaced it: 410.
	LinkUsed
	// LinkExpired: 410.
	LinkExpired
)

// Check says what id is for a grant with uid, at now; offered is whether the grant still
// asks for a person (status.consent is Required): a link it no longer asks for is withdrawn.
func (r *Record) Check(id, uid string, offered bool, now time.Time) LinkState {
	if r == nil || !ValidID(id) || r.GrantUID != uid {
		return LinkUnknown
	}
	h := Hash(id)
	if !sameHash(h, r.LinkHash) {
		for _, old := range r.Replaced {
			if sameHash(h, old) {
				return LinkUsed
			}
		}
		return LinkUnknown
	}
	switch {
	case !r.UsedAt.IsZero():
		return LinkUsed
	case !now.Before(r.ExpiresAt):
		return LinkExpired
	case !offered:
		// The grant no longer asks for a person: the link is withdrawn.
		return LinkUsed
	}
	return LinkLive
}

// Keeps reports whether the record's link can stay for a need of scopes: the grant offers
// it (offered), it is live and asks for exactly those scopes. A reconcile then writes nothing.
func (r *Record) Keeps(offered bool, uid string, scopes []string, incremental bool, now time.Time) bool {
	if r == nil {
		return false
	}
	id := LinkID(r.URL)
	if id == "" || r.Check(id, uid, offered, now) != LinkLive || r.Incremental != incremental {
		return false
	}
	return sameScopes(r.Scopes, scopes)
}

// Pending reports whether a callback claimed the record's link for the inputs the grant's
// status still answers (fingerprint): its refresh token is on its way (the Secret's watch
// brings the controller a token request, whose status answers newer inputs) or the callback
// releases the link (a failed exchange, another account). Either is a fact the controller
// sees; until then it does not replace the link. No timer: a callback cut short between
// claim and store (the process stopped) leaves the link pending until it expires, a change
// of the grant's inputs, or the link Secret is deleted (a new link is then minted).
func (r *Record) Pending(uid, fingerprint string, now time.Time) bool {
	return r != nil && r.GrantUID == uid && !r.UsedAt.IsZero() && r.UsedFingerprint != "" &&
		r.UsedFingerprint == fingerprint && now.Before(r.ExpiresAt)
}

func sameScopes(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// LinkPath is a link's path under the base URL; token is Key.LinkToken's.
func LinkPath(namespace, name, token string) string {
	return "/c/" + namespace + "/" + name + "/" + token
}

// ParseLinkPath splits a link path into namespace, name and link token (Key.OpenLink checks
// it); ok is false for anything that is not the shape of a link.
func ParseLinkPath(p string) (namespace, name, token string, ok bool) {
	rest, found := strings.CutPrefix(p, "/c/")
	if !found {
		return "", "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || !namePattern.MatchString(parts[0]) || len(parts[0]) > 63 || !namePattern.MatchString(parts[1]) {
		return "", "", "", false
	}
	if _, _, _, ok := splitLinkToken(parts[2]); !ok {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// LinkID is the id of the link at the end of a consent URL, whose hash the record keeps
// ("" when there is none, or it is not a signed link's).
func LinkID(consentURL string) string {
	i := strings.LastIndexByte(consentURL, '/')
	if i < 0 {
		return ""
	}
	id, _, _, ok := splitLinkToken(consentURL[i+1:])
	if !ok {
		return ""
	}
	return id
}

// StateState is what a returning state is for a record.
type StateState int

const (
	// StateUnknown: forged, tampered, or superseded by a newer opening of the link: 400.
	// Every state whose secret part does not match gets this, whatever the grant's link did,
	// so the callback tells a guesser nothing about grants or links.
	StateUnknown StateState = iota
	// StateLive: the callback may claim the link.
	StateLive
	// StateUsed: this state claimed the link already, or its link was withdrawn or
	// replaced since it was opened: 410.
	StateUsed
	// StateExpired: the link expired, or the attempt is older than AttemptTTL: 410.
	StateExpired
)

// CheckState says what nonce is for r (the grant's current uid) at now; offered is whether
// the grant still asks for a person (status.consent is Required).
func (r *Record) CheckState(nonce, uid string, offered bool, now time.Time) StateState {
	if r == nil || r.GrantUID != uid || !ValidID(nonce) {
		return StateUnknown
	}
	h := Hash(nonce)
	if !r.UsedAt.IsZero() {
		if r.UsedStateHash != "" && sameHash(h, r.UsedStateHash) {
			return StateUsed
		}
		return StateUnknown
	}
	if r.Attempt == nil || !sameHash(h, r.Attempt.StateHash) {
		return StateUnknown
	}
	switch {
	case r.Attempt.LinkHash == "" || !sameHash(r.Attempt.LinkHash, r.LinkHash) || !offered:
		// The link this attempt opened was replaced or withdrawn.
		return StateUsed
	case !now.Before(r.ExpiresAt), now.Sub(r.Attempt.Started) >= AttemptTTL:
		return StateExpired
	}
	return StateLive
}
