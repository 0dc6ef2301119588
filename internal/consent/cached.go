package consent

import (
	corev1 "k8s.io/api/core/v1"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// MaxRecordSize bounds a link Secret's record (a real one, with 64 scopes and 16 replaced
// link hashes, is a few KiB). The manager's cache keeps the data of a Secret only when it
// has a link Secret's shape (IsLinkSecret), so a tenant's labelled Secrets cost metadata.
const MaxRecordSize = 16 << 10

// IsLinkSecret reports whether s has the shape of a link Secret grantkeeper writes: named
// for the grant its ForLabel names, owned by that GoogleOAuthGrant, holding only RecordKey
// (and the current link, URLKey), each no more than MaxRecordSize bytes.
func IsLinkSecret(s *corev1.Secret) bool {
	grant := s.Labels[ForLabel]
	if grant == "" || s.Name != SecretName(grant) || s.Labels[oauthv1alpha1.ManagedByLabel] != oauthv1alpha1.ManagedByValue {
		return false
	}
	if len(s.Data[RecordKey]) == 0 {
		return false
	}
	for k, v := range s.Data {
		if (k != RecordKey && k != URLKey) || len(v) > MaxRecordSize {
			return false
		}
	}
	if len(s.OwnerReferences) != 1 {
		return false
	}
	o := s.OwnerReferences[0]
	return o.APIVersion == oauthv1alpha1.GroupVersion.String() && o.Kind == "GoogleOAuthGrant" && o.Name == grant
}
