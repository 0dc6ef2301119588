package consent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
)

const (
	// RecordKey is the link Secret's one key.
	RecordKey = "consent.json"
	// ForLabel on a link Secret names its grant.
	ForLabel = "oauth.grantkeeper.dev/consent-for"
)

// SecretName is the link Secret of a grant: grantkeeper-consent-<grant>, or a hashed
// suffix when that would be longer than a Secret name may be.
func SecretName(grant string) string {
	n := "grantkeeper-consent-" + grant
	if len(n) <= 253 {
		return n
	}
	sum := sha256.Sum256([]byte(grant))
	return "grantkeeper-consent-" + hex.EncodeToString(sum[:16])
}

// Store reads and writes link Secrets. Reads go to Reader (the API server, not a cache:
// single use rests on resourceVersion preconditions of the version read).
type Store struct {
	Reader client.Reader
	Writer client.Writer
}

// Load returns the grant's link Secret and its record; both nil when there is none. A
// record that cannot be parsed is treated as absent (the next mint replaces it).
func (s *Store) Load(ctx context.Context, namespace, grant string) (*corev1.Secret, *Record, error) {
	sec := &corev1.Secret{}
	if err := s.Reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: SecretName(grant)}, sec); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	rec := &Record{}
	if json.Unmarshal(sec.Data[RecordKey], rec) != nil {
		return sec, nil, nil
	}
	return sec, rec, nil
}

// Save writes rec to the grant's link Secret: a create when sec is nil, else an update
// preconditioned on sec's resourceVersion (a conflict means another replica or tab won).
func (s *Store) Save(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant, sec *corev1.Secret, rec *Record) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	owner := metav1.OwnerReference{APIVersion: oauthv1alpha1.GroupVersion.String(), Kind: "GoogleOAuthGrant", Name: g.Name, UID: g.UID}
	if sec == nil {
		sec = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: g.Namespace, Name: SecretName(g.Name),
				Labels: map[string]string{oauthv1alpha1.ManagedByLabel: oauthv1alpha1.ManagedByValue, ForLabel: g.Name}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{RecordKey: raw},
		}
		sec.OwnerReferences = []metav1.OwnerReference{owner}
		return s.Writer.Create(ctx, sec)
	}
	sec = sec.DeepCopy()
	// A grant recreated under the same name takes the Secret over (the old owner is gone).
	sec.OwnerReferences = []metav1.OwnerReference{owner}
	sec.Data = map[string][]byte{RecordKey: raw}
	return s.Writer.Update(ctx, sec)
}

// ClientFor reads the OAuth client a grant uses: its clientSecretRef's Secret, or the
// Secret of the client object its clientRef names.
func ClientFor(ctx context.Context, r client.Reader, g *oauthv1alpha1.GoogleOAuthGrant, managerNamespace string) (credentials.Client, error) {
	key := types.NamespacedName{Namespace: g.Namespace, Name: g.ClientSecretName()}
	switch g.ClientRefKind() {
	case oauthv1alpha1.KindGoogleOAuthClient:
		o := &oauthv1alpha1.GoogleOAuthClient{}
		if err := r.Get(ctx, types.NamespacedName{Namespace: g.Namespace, Name: g.Spec.ClientRef.Name}, o); err != nil {
			return credentials.Client{}, fmt.Errorf("reading GoogleOAuthClient %q: %w", g.Spec.ClientRef.Name, err)
		}
		key.Name = o.Spec.SecretRef.Name
	case oauthv1alpha1.KindClusterGoogleOAuthClient:
		o := &oauthv1alpha1.ClusterGoogleOAuthClient{}
		if err := r.Get(ctx, types.NamespacedName{Name: g.Spec.ClientRef.Name}, o); err != nil {
			return credentials.Client{}, fmt.Errorf("reading ClusterGoogleOAuthClient %q: %w", g.Spec.ClientRef.Name, err)
		}
		key = types.NamespacedName{Namespace: o.Spec.SecretRef.Namespace, Name: o.Spec.SecretRef.Name}
		if key.Namespace == "" {
			key.Namespace = managerNamespace
		}
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

// StoreRefreshToken puts a refresh token where the grant reads it: it creates the Secret
// (labelled managed-by grantkeeper, without an owner reference: it is the user's data and
// outlives the grant) or updates only its key.
func StoreRefreshToken(ctx context.Context, r client.Reader, w client.Writer, g *oauthv1alpha1.GoogleOAuthGrant, token string) error {
	key := types.NamespacedName{Namespace: g.Namespace, Name: g.RefreshTokenSecretName()}
	for range 5 {
		sec := &corev1.Secret{}
		err := r.Get(ctx, key, sec)
		switch {
		case apierrors.IsNotFound(err):
			sec = &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
					Labels: map[string]string{oauthv1alpha1.ManagedByLabel: oauthv1alpha1.ManagedByValue}},
				Type: corev1.SecretTypeOpaque,
				Data: map[string][]byte{g.RefreshTokenKey(): []byte(token)},
			}
			err = w.Create(ctx, sec)
			if apierrors.IsAlreadyExists(err) {
				continue
			}
		case err == nil:
			if sec.Data == nil {
				sec.Data = map[string][]byte{}
			}
			sec.Data[g.RefreshTokenKey()] = []byte(token)
			err = w.Update(ctx, sec)
			if apierrors.IsConflict(err) {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("storing the refresh token in Secret %q: %w", key.Name, err)
		}
		return nil
	}
	return fmt.Errorf("storing the refresh token in Secret %q: too many conflicting updates", key.Name)
}
