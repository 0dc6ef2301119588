package consent

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Key signs links and states (HMAC-SHA256), so the consent server turns away a forged or
// altered one before any API request, without a cache of Secrets (issue 28 items 5 and 6: the
// server's identity may not list or watch Secrets). A link signs its grant (namespace, name,
// UID), its id and its expiry; a state signs its grant, its nonce and when the sign-in
// started. The signature proves only that grantkeeper made it: whether the link is still the
// one offered, and the attempt still the link's, is decided from the link record, read live
// right before the preconditioned write that uses it.
type Key []byte

// KeySize is the length of a key grantkeeper makes.
const KeySize = 32

// macPattern is a signature's shape: 16 bytes of HMAC, base32 without padding.
var macPattern = regexp.MustCompile(`^[A-Z2-7]{26}$`)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func (k Key) mac(kind string, parts ...string) string {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(kind))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	return b32.EncodeToString(m.Sum(nil)[:16])
}

func (k Key) verify(mac, kind string, parts ...string) bool {
	return len(k) > 0 && hmac.Equal([]byte(mac), []byte(k.mac(kind, parts...)))
}

// LinkToken is the last path segment of a link: <id>.<expiry, Unix seconds>.<signature>.
func (k Key) LinkToken(namespace, name, uid, id string, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	return id + "." + exp + "." + k.mac("link", namespace, name, uid, id, exp)
}

// OpenLink checks token's signature for the grant namespace/name with uid and returns the
// link id and expiry it signs.
func (k Key) OpenLink(namespace, name, uid, token string) (id string, expires time.Time, ok bool) {
	id, exp, mac, ok := splitLinkToken(token)
	if !ok || !k.verify(mac, "link", namespace, name, uid, id, exp) {
		return "", time.Time{}, false
	}
	n, _ := strconv.ParseInt(exp, 10, 64)
	return id, time.Unix(n, 0), true
}

// splitLinkToken splits a link token into its parts, checking only their shape.
func splitLinkToken(token string) (id, exp, mac string, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || !ValidID(parts[0]) || !macPattern.MatchString(parts[2]) || len(parts[1]) == 0 || len(parts[1]) > 12 {
		return "", "", "", false
	}
	if n, err := strconv.ParseInt(parts[1], 10, 64); err != nil || n <= 0 || strconv.FormatInt(n, 10) != parts[1] {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// NewState returns a state for a sign-in on the grant namespace/name (uid) started at
// started, and its nonce (whose hash the record's attempt keeps). The grant part lets the
// callback find the grant; the nonce binds the callback to this opening of the link (CSRF);
// the signature and start time let the callback refuse a forged or stale state unread.
func (k Key) NewState(namespace, name, uid string, started time.Time) (state, nonce string) {
	nonce = NewID()
	grant := base64.RawURLEncoding.EncodeToString([]byte(namespace + "/" + name))
	at := strconv.FormatInt(started.Unix(), 10)
	return grant + "." + nonce + "." + at + "." + k.mac("state", namespace, name, uid, nonce, at), nonce
}

// State is a returning state's parts (ParseState).
type State struct {
	Namespace, Name, Nonce string
	Started                time.Time
	at, mac                string
}

// Signed reports whether s was signed by k for the grant with uid.
func (k Key) Signed(s State, uid string) bool {
	return k.verify(s.mac, "state", s.Namespace, s.Name, uid, s.Nonce, s.at)
}

// ParseSignedState splits a state into its parts, checking only their shape.
func ParseSignedState(state string) (State, bool) {
	if len(state) > 512 {
		return State{}, false
	}
	parts := strings.Split(state, ".")
	if len(parts) != 4 || !ValidID(parts[1]) || !macPattern.MatchString(parts[3]) || len(parts[2]) == 0 || len(parts[2]) > 12 {
		return State{}, false
	}
	at, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || at <= 0 || strconv.FormatInt(at, 10) != parts[2] {
		return State{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return State{}, false
	}
	namespace, name, found := strings.Cut(string(raw), "/")
	if !found || !namePattern.MatchString(namespace) || len(namespace) > 63 || !namePattern.MatchString(name) {
		return State{}, false
	}
	return State{Namespace: namespace, Name: name, Nonce: parts[1], Started: time.Unix(at, 0), at: parts[2], mac: parts[3]}, true
}

// ParseState splits a state into the grant it names and its nonce.
func ParseState(state string) (namespace, name, nonce string, ok bool) {
	s, ok := ParseSignedState(state)
	return s.Namespace, s.Name, s.Nonce, ok
}

// KeySource gives the key links are signed with: the manager mints with it, the consent
// server checks with it, so both must read the same one.
type KeySource interface {
	Key(ctx context.Context) (Key, error)
}

// processKey is the key of a process that both mints and serves links with no Secret to
// keep one in (tests; --components=all without --manager-namespace): links die with it.
var processKey = sync.OnceValue(func() Key { return NewKey() })

// ProcessKey is a KeySource of processKey.
type ProcessKey struct{}

// Key returns this process's key.
func (ProcessKey) Key(context.Context) (Key, error) { return processKey(), nil }

// NewKey returns KeySize random bytes.
func NewKey() Key {
	k := make(Key, KeySize)
	_, _ = rand.Read(k) // never fails (crypto/rand)
	return k
}

// KeySecretName is the Secret in the install namespace that holds the key (key KeyDataKey);
// config/ and the chart ship it empty and the manager fills it.
const KeySecretName = "grantkeeper-consent-key"

// KeyDataKey is the key's entry in that Secret.
const KeyDataKey = "key"

// keyReread is how long a key read from its Secret is used before it is read again (one GET
// a minute; a rotation reaches every replica within it).
const keyReread = time.Minute

// SecretKey reads the key from one named Secret, by name: the endpoints' Role may get that
// Secret and no other in the install namespace. With a Writer (the manager) it fills the
// Secret when it is empty, or creates it when it is absent (local runs and tests; the
// shipped manifests create it empty, so the manager needs no create there).
type SecretKey struct {
	Reader          client.Reader
	Writer          client.Writer
	Namespace, Name string
	Clock           clock.PassiveClock

	mu   sync.Mutex
	key  Key
	read time.Time
	// tried and failed: the last failed read, so that while there is no key yet requests
	// cost at most one read per keyRetry.
	tried  time.Time
	failed error
}

// keyRetry bounds the reads of a key Secret that holds no key yet.
const keyRetry = 5 * time.Second

// Key returns the key, read again at most every keyReread; a failed read keeps the last.
func (s *SecretKey) Key(ctx context.Context) (Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.Clock != nil {
		now = s.Clock.Now()
	}
	if s.key != nil && now.Sub(s.read) < keyReread {
		return s.key, nil
	}
	if s.key == nil && s.failed != nil && now.Sub(s.tried) < keyRetry {
		return nil, s.failed
	}
	k, err := s.load(ctx)
	if err != nil {
		if s.key != nil {
			s.read = now // keep the last key a while longer
			return s.key, nil
		}
		s.tried, s.failed = now, err
		return nil, err
	}
	s.key, s.read = k, now
	return k, nil
}

func (s *SecretKey) load(ctx context.Context) (Key, error) {
	key := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
	sec := &corev1.Secret{}
	err := s.Reader.Get(ctx, key, sec)
	switch {
	case apierrors.IsNotFound(err) && s.Writer != nil:
		sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}, Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{KeyDataKey: NewKey()}}
		if err := s.Writer.Create(ctx, sec); err != nil {
			return nil, fmt.Errorf("creating the consent-link signing key Secret %s: %w", key, err)
		}
		return sec.Data[KeyDataKey], nil
	case err != nil:
		return nil, fmt.Errorf("reading the consent-link signing key Secret %s: %w", key, err)
	}
	if k := sec.Data[KeyDataKey]; len(k) >= KeySize {
		return k, nil
	}
	if s.Writer == nil {
		return nil, fmt.Errorf("the consent-link signing key Secret %s holds no key yet: the manager (--components=manager or all) writes it", key)
	}
	if sec.Data == nil {
		sec.Data = map[string][]byte{}
	}
	sec.Data[KeyDataKey] = NewKey()
	// Preconditioned on the version read: of two replicas filling it, one wins and the
	// other reads the winner's key next time.
	if err := s.Writer.Update(ctx, sec); err != nil {
		return nil, fmt.Errorf("writing the consent-link signing key into Secret %s: %w", key, err)
	}
	return sec.Data[KeyDataKey], nil
}
