package controllers

import (
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// The cache transforms intern the strings that thousands of cached objects repeat: kinds,
// namespaces, label and annotation keys, condition types, statuses and reasons. Decoding
// gives each object its own copy of each (16 to 48 bytes apiece, about twenty of them per
// grant and its Secrets); interned, all share one. Strings unique to one object (names,
// UIDs, resourceVersions, messages with times in them) are left alone: interning them
// would only add an entry to the intern table.

func intern(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}

// internKeys interns a map's keys, and its values too when values is set.
func internKeys(m map[string]string, values bool) map[string]string {
	if len(m) == 0 {
		return m
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if values {
			v = intern(v)
		}
		out[intern(k)] = v
	}
	return out
}

func internMeta(m *metav1.ObjectMeta) {
	m.Labels = internKeys(m.Labels, false)
	m.Annotations = internKeys(m.Annotations, false)
	internMetaStrings(m)
}

// internMetaStrings interns what internMeta does but the label and annotation maps.
func internMetaStrings(m *metav1.ObjectMeta) {
	m.Namespace = intern(m.Namespace)
	for i := range m.Finalizers {
		m.Finalizers[i] = intern(m.Finalizers[i])
	}
	for i := range m.OwnerReferences {
		ref := &m.OwnerReferences[i]
		ref.APIVersion, ref.Kind = intern(ref.APIVersion), intern(ref.Kind)
	}
}

func internTypeMeta(t *metav1.TypeMeta) {
	t.APIVersion, t.Kind = intern(t.APIVersion), intern(t.Kind)
}

func internGrant(g *oauthv1alpha1.GoogleOAuthGrant) {
	internTypeMeta(&g.TypeMeta)
	internMeta(&g.ObjectMeta)
	// Many grants share one client Secret and the same scopes.
	if r := g.Spec.ClientSecretRef; r != nil {
		r.Name = intern(r.Name)
	}
	for i := range g.Spec.Scopes {
		g.Spec.Scopes[i] = intern(g.Spec.Scopes[i])
	}
	g.Status.ClientID = intern(g.Status.ClientID)
	for i := range g.Status.GrantedScopes {
		g.Status.GrantedScopes[i] = intern(g.Status.GrantedScopes[i])
	}
	for i := range g.Status.Conditions {
		c := &g.Status.Conditions[i]
		c.Type, c.Status, c.Reason = intern(c.Type), metav1.ConditionStatus(intern(string(c.Status))), intern(c.Reason)
		// Only Ready's message carries times; the others repeat from grant to grant.
		if c.Type != oauthv1alpha1.ConditionReady {
			c.Message = intern(c.Message)
		}
	}
}

func internSecret(s *corev1.Secret) {
	s.Labels = internKeys(s.Labels, false)
	s.Annotations = internKeys(s.Annotations, false)
	// The managed-by label's value is the same on every derived Secret.
	if v, ok := s.Labels[oauthv1alpha1.ManagedByLabel]; ok {
		s.Labels[oauthv1alpha1.ManagedByLabel] = intern(v)
	}
	internSecretStrings(s)
}

// internSecretStrings interns what internSecret does but the label and annotation maps.
func internSecretStrings(s *corev1.Secret) {
	internTypeMeta(&s.TypeMeta)
	internMetaStrings(&s.ObjectMeta)
	s.Type = corev1.SecretType(intern(string(s.Type)))
}
