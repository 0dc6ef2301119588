package consent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/grantinputs"
	"github.com/grantkeeper/grantkeeper/internal/plan"
	"github.com/grantkeeper/grantkeeper/internal/writable"
)

const (
	// RecordKey is the link Secret's record (JSON).
	RecordKey = "consent.json"
	// URLKey is the link Secret's current consent link, for those who may read Secrets in
	// the namespace (kubectl grantkeeper consent-link); the grant's status says only that
	// consent is required.
	URLKey = "consentURL"
	// ForLabel on a link Secret names its grant (when the name fits in a label).
	ForLabel = "oauth.grantkeeper.dev/consent-for"
)

// linkPrefix starts every link Secret's name.
const linkPrefix = "grantkeeper-consent-"

// SecretName is the link Secret of a grant: grantkeeper-consent-<grant>, or, when that
// would be longer than a Secret name may be, grantkeeper-consent.<hash of the grant's name>.
// The second form does not start with linkPrefix, so no grant's name maps to another's.
func SecretName(grant string) string {
	n := linkPrefix + grant
	if len(n) <= 253 {
		return n
	}
	sum := sha256.Sum256([]byte(grant))
	return "grantkeeper-consent." + hex.EncodeToString(sum[:16])
}

// Store reads and writes link Secrets. Reads go to Reader (the API server, not a cache:
// single use rests on resourceVersion preconditions of the version read).
type Store struct {
	Reader client.Reader
	Writer client.Writer
}

// Load returns the grant's link Secret and its record; both nil when there is none. A
// record that cannot be parsed is treated as absent (the next mint replaces it). A Secret
// of that name that is not the grant's is a *writable.Error: it is neither read nor written.
func (s *Store) Load(ctx context.Context, namespace, grant string) (*corev1.Secret, *Record, error) {
	sec := &corev1.Secret{}
	if err := s.Reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: SecretName(grant)}, sec); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	if err := writable.LinkSecret(sec, grant); err != nil {
		return nil, nil, err
	}
	rec := &Record{}
	if json.Unmarshal(sec.Data[RecordKey], rec) != nil {
		return sec, nil, nil
	}
	rec.URL = string(sec.Data[URLKey])
	return sec, rec, nil
}

// Save writes rec to the grant's link Secret: a create when sec is nil, else an update
// preconditioned on sec's resourceVersion (a conflict means another replica or tab won).
// sec is what Load returned: a Secret of the grant's.
func (s *Store) Save(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant, sec *corev1.Secret, rec *Record) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	data := map[string][]byte{RecordKey: raw}
	if rec.URL != "" {
		data[URLKey] = []byte(rec.URL)
	}
	owner := metav1.OwnerReference{APIVersion: oauthv1alpha1.GroupVersion.String(), Kind: "GoogleOAuthGrant", Name: g.Name, UID: g.UID, Controller: ptr.To(true)}
	if sec == nil {
		labels := map[string]string{oauthv1alpha1.ManagedByLabel: oauthv1alpha1.ManagedByValue}
		if len(g.Name) <= validation.LabelValueMaxLength {
			labels[ForLabel] = g.Name
		}
		sec = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: g.Namespace, Name: SecretName(g.Name), Labels: labels},
			Type:       corev1.SecretTypeOpaque,
			Data:       data,
		}
		sec.OwnerReferences = []metav1.OwnerReference{owner}
		return s.Writer.Create(ctx, sec)
	}
	if err := writable.LinkSecret(sec, g.Name); err != nil {
		return err
	}
	sec = sec.DeepCopy()
	// A grant recreated under the same name takes the Secret over (the old owner is gone).
	sec.OwnerReferences = []metav1.OwnerReference{owner}
	sec.Data = data
	return s.Writer.Update(ctx, sec)
}

// ErrClientNotAllowed: the grant's ClusterGoogleOAuthClient does not admit its namespace.
var ErrClientNotAllowed = errors.New("the ClusterGoogleOAuthClient does not admit the grant's namespace (spec.namespaces, spec.namespaceSelector)")

// ClientFor reads the OAuth client a grant uses: its clientSecretRef's Secret, or the
// Secret of the client object its clientRef names. A ClusterGoogleOAuthClient is used only
// for namespaces it admits (ErrClientNotAllowed), as the controller does.
func ClientFor(ctx context.Context, r client.Reader, g *oauthv1alpha1.GoogleOAuthGrant, managerNamespace string) (credentials.Client, error) {
	key := types.NamespacedName{Namespace: g.Namespace, Name: grantinputs.Of(g).Shared()}
	if ref := grantinputs.Of(g).ClientRef(); ref != nil {
		co, err := grantinputs.GetClient(ctx, r, ref.Kind, types.NamespacedName{Namespace: g.Namespace, Name: ref.Name}, managerNamespace)
		switch {
		case err != nil:
			return credentials.Client{}, fmt.Errorf("reading %s %q: %w", ref.Kind, ref.Name, err)
		case co == nil:
			return credentials.Client{}, fmt.Errorf("%s %q not found", ref.Kind, ref.Name)
		}
		if co.Cluster != nil {
			var nsLabels map[string]string
			if sel := co.Cluster.Selector; sel != nil && (len(sel.MatchLabels) > 0 || len(sel.MatchExpressions) > 0) {
				ns := &corev1.Namespace{}
				if err := r.Get(ctx, types.NamespacedName{Name: g.Namespace}, ns); err != nil {
					return credentials.Client{}, fmt.Errorf("reading namespace %q for ClusterGoogleOAuthClient %q's namespaceSelector: %w", g.Namespace, ref.Name, err)
				}
				nsLabels = ns.Labels
			}
			if !plan.NamespaceAllowed(*co.Cluster, g.Namespace, nsLabels) {
				return credentials.Client{}, fmt.Errorf("ClusterGoogleOAuthClient %q: %w", ref.Name, ErrClientNotAllowed)
			}
		}
		key = co.Secret
	}
	sec := &corev1.Secret{}
	if err := r.Get(ctx, key, sec); err != nil {
		return credentials.Client{}, fmt.Errorf("reading the OAuth client's Secret %s: %w", key, err)
	}
	c, p := credentials.ParseClient(sec.Name, sec.Data)
	if p != nil {
		return credentials.Client{}, p
	}
	return c, nil
}

// RefreshTokenWritable reads the grant's refresh-token Secret and says whether a consent may
// store the token there (absent: it will be created): nil, or a *writable.Error.
func RefreshTokenWritable(ctx context.Context, r client.Reader, g *oauthv1alpha1.GoogleOAuthGrant) error {
	sec := &corev1.Secret{}
	err := r.Get(ctx, types.NamespacedName{Namespace: g.Namespace, Name: g.RefreshTokenSecretName()}, sec)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	}
	return writable.RefreshToken(sec, g)
}

// StoreRefreshToken puts a refresh token where the grant reads it: it creates the Secret
// (labelled managed-by grantkeeper, annotated as writable for this grant, without an owner
// reference: it is the user's data and outlives the grant) or updates only its key, in a
// Secret this grant may write (writable.RefreshToken; else a *writable.Error, nothing written).
func StoreRefreshToken(ctx context.Context, r client.Reader, w client.Writer, g *oauthv1alpha1.GoogleOAuthGrant, token string) error {
	key := types.NamespacedName{Namespace: g.Namespace, Name: g.RefreshTokenSecretName()}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		sec := &corev1.Secret{}
		err := r.Get(ctx, key, sec)
		switch {
		case apierrors.IsNotFound(err):
			sec = &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
					Labels:      map[string]string{oauthv1alpha1.ManagedByLabel: oauthv1alpha1.ManagedByValue},
					Annotations: map[string]string{oauthv1alpha1.RefreshTokenForAnnotation: g.Name}},
				Type: corev1.SecretTypeOpaque,
				Data: map[string][]byte{g.RefreshTokenKey(): []byte(token)},
			}
			err := w.Create(ctx, sec)
			if apierrors.IsAlreadyExists(err) {
				// Created meanwhile: read it and update it instead.
				return apierrors.NewConflict(corev1.Resource("secrets"), key.Name, err)
			}
			return err
		case err != nil:
			return err
		}
		if err := writable.RefreshToken(sec, g); err != nil {
			return err
		}
		if sec.Data == nil {
			sec.Data = map[string][]byte{}
		}
		sec.Data[g.RefreshTokenKey()] = []byte(token)
		return w.Update(ctx, sec)
	})
	var werr *writable.Error
	if err != nil && !errors.As(err, &werr) {
		return fmt.Errorf("storing the refresh token in Secret %q: %w", key.Name, err)
	}
	return err
}
