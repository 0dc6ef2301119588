package grantinputs

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/plan"
)

// Credential is what one token request needs, and the versions of the Secrets it came from.
type Credential struct {
	// Client and RefreshToken, for a refresh.
	Client       credentials.Client
	RefreshToken string
	// ServiceAccount is set instead, for a service account's signed assertion.
	ServiceAccount *credentials.ServiceAccountKey
	// Provider is set for a provider grant (OAuthGrant): its client, endpoints and what to
	// ask for; Client then holds the client's id and secret (for redaction and the status).
	Provider *ProviderRequest
	// RefreshTokenMissing: the problem is an absent refresh-token Secret or key (a consent
	// link can fix that).
	RefreshTokenMissing bool

	// versions are the metadata of the form's Secrets as used (nil: absent), and
	// clientVersion the client object's Secret's, for the fingerprint.
	versions      map[string]*metav1.ObjectMeta
	clientVersion *metav1.ObjectMeta
	// refreshSecret is the refresh token's Secret when read live (nil when the token came
	// from the record).
	refreshSecret *corev1.Secret
}

// Fingerprint is the inputs fingerprint of the versions the credential was read from (the
// grant's status records it with the token request's outcome).
func (c *Credential) Fingerprint(g oauthv1alpha1.Grant, res *Resolved) string {
	own := fingerprint(g.GetGeneration(), res.Form, c.versions)
	if res.Form.ClientRef() == nil {
		return own
	}
	return plan.JoinFingerprint(own, clientFingerprint(res.Client, c.clientVersion))
}

// Account is the email the token acts for when the inputs tell it ("" for user grants).
func (c *Credential) Account(g oauthv1alpha1.Grant) string {
	if c.ServiceAccount == nil {
		return ""
	}
	if gg, ok := g.(*oauthv1alpha1.GoogleOAuthGrant); ok && gg.Spec.Subject != "" {
		return gg.Spec.Subject
	}
	return c.ServiceAccount.Email
}

// Reader reads credentials at act time: a refresh token and a client from their records when
// the metadata watch shows their Secrets at the versions recorded, else from the API server
// (never from a cache of Secrets' data). One Reader serves the manager's grants.
type Reader struct {
	// Meta is a Secret's metadata from the caches, nil when absent.
	Meta func(ctx context.Context, ns, name string) (*metav1.ObjectMeta, error)
	// Live reads from the API server; Writer writes a rotated refresh token back.
	Live   client.Reader
	Writer client.Writer

	tokens  refreshTokenRecord
	clients clientRecord
}

// Read is the credential for a grant's token request, or what is wrong with its inputs.
func (r *Reader) Read(ctx context.Context, g oauthv1alpha1.Grant, res *Resolved) (*Credential, *credentials.Problem, error) {
	c := &Credential{versions: map[string]*metav1.ObjectMeta{}}
	p, err := res.Form.read(ctx, r, g.GetNamespace(), res.Client, c)
	return c, p, err
}

// ForgetNamespace drops what the records hold of a namespace that no longer holds grants.
func (r *Reader) ForgetNamespace(ns string) {
	r.tokens.forgetNamespace(ns)
	r.clients.forgetNamespace(ns)
}

// secretGetter is the one method of client.Reader the live reads use.
type secretGetter interface {
	Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error
}

// liveSecret reads a Secret from the API server; nil when it does not exist.
func liveSecret(ctx context.Context, live secretGetter, key types.NamespacedName) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	if err := live.Get(ctx, key, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return s, nil
}

// readLiveSecret reads one of the form's Secrets live and records its version in c.
func (r *Reader) readLiveSecret(ctx context.Context, key types.NamespacedName, c *Credential) (*corev1.Secret, error) {
	s, err := liveSecret(ctx, r.Live, key)
	if err == nil && s != nil {
		c.versions[key.Name] = &s.ObjectMeta
	}
	return s, err
}

// refreshToken is the refresh token at l: from the record when the metadata watch shows the
// Secret at the recorded version, else read live (and recorded). absent: the Secret does not
// exist.
func (r *Reader) refreshToken(ctx context.Context, ns string, l *TokenLocation, c *Credential) (token string, p *credentials.Problem, absent bool, err error) {
	key := types.NamespacedName{Namespace: ns, Name: l.Secret}
	meta, err := r.Meta(ctx, ns, l.Secret)
	if err != nil {
		return "", nil, false, err
	}
	if t, ok := r.tokens.get(key, meta); ok && l.Recordable {
		c.versions[l.Secret] = meta
		return t, nil, false, nil
	}
	s, err := r.readLiveSecret(ctx, key, c)
	if err != nil || s == nil {
		return "", nil, s == nil && err == nil, err
	}
	c.refreshSecret = s
	t, p := l.get(s.Data)
	if p == nil && l.Recordable {
		r.tokens.put(key, s.ResourceVersion, t)
	} else {
		r.tokens.forget(key)
	}
	return t, p, false, nil
}

// client is the OAuth client in the Secret key: from the record when the metadata watch
// shows the Secret at the recorded version, else read live (parsed and recorded). setVersion
// records the version used. A nil Secret and no error: it does not exist.
func (r *Reader) client(ctx context.Context, key types.NamespacedName, setVersion func(*metav1.ObjectMeta)) (cl credentials.Client, s *corev1.Secret, recorded bool, err error) {
	meta, err := r.Meta(ctx, key.Namespace, key.Name)
	if err != nil {
		return cl, nil, false, err
	}
	if cl, ok := r.clients.get(key, meta); ok {
		setVersion(meta)
		return cl, nil, true, nil
	}
	if s, err = liveSecret(ctx, r.Live, key); err != nil || s == nil {
		return cl, nil, false, err
	}
	setVersion(&s.ObjectMeta)
	return cl, s, false, nil
}

// WriteBack stores a rotated refresh token where the grant's form keeps it, with
// retry.RetryOnConflict. If the Secret changed meanwhile and no longer holds the token c
// used, the user put a new one there: theirs wins, ours is dropped (it would be the older
// grant), and kept reports it. The credential then names the version the write made, so the
// write-back is not a change of input.
func (r *Reader) WriteBack(ctx context.Context, g oauthv1alpha1.Grant, f Form, c *Credential, rotated string) (kept bool, err error) {
	l := f.RefreshToken()
	if l == nil {
		return false, nil
	}
	key := types.NamespacedName{Namespace: g.GetNamespace(), Name: l.Secret}
	// When the token came from the record there is no Secret at hand yet: read it to write
	// it, as after a conflict.
	s := c.refreshSecret.DeepCopy()
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		kept = false
		if s == nil {
			var err error
			if s, err = liveSecret(ctx, r.Live, key); err != nil || s == nil {
				return fmt.Errorf("reading Secret %q to store the rotated refresh token: %v", key.Name, err)
			}
		}
		if l.Stored(s.Data) != c.RefreshToken {
			kept = true
			return nil
		}
		// No writable.RefreshToken check here, unlike a consent's write: the rotated token
		// replaces, in the same key, the very token it was traded for (the check above), so
		// it can only go where a refresh token of this client already was, and refusing it
		// would lose the grant (the provider has retired the old one). A consent, which picks
		// a new value for a Secret, needs the grant to own or be allowed the Secret.
		if err := l.Put(s.Data, rotated); err != nil {
			return fmt.Errorf("writing the rotated refresh token back to Secret %q: %w", s.Name, err)
		}
		if err := r.Writer.Update(ctx, s); err != nil {
			s = nil // read it again (a conflict is retried)
			return fmt.Errorf("writing the rotated refresh token back to Secret %q: %w", key.Name, err)
		}
		c.refreshSecret, c.versions[s.Name] = s, &s.ObjectMeta
		if l.Recordable {
			r.tokens.put(key, s.ResourceVersion, rotated)
		}
		return nil
	})
	return kept, err
}

// Live is a grant's refresh token as the API server has it now.
type Live struct {
	// Secret is where the refresh token is ("" for a form without one); Found: it exists.
	Secret string
	Found  bool
	// RefreshToken is "" when the Secret holds no usable one.
	RefreshToken string
	// ClientID is the OAuth client's id when the form's own Secrets name it ("" when a
	// client object supplies the client, or it cannot be read).
	ClientID string
}

// ReadLive reads a grant's refresh token (and client id) from the API server, for a
// revocation or the security-event index.
func ReadLive(ctx context.Context, live client.Reader, g oauthv1alpha1.Grant) (Live, error) {
	return Of(g).readLive(ctx, live, g.GetNamespace())
}
