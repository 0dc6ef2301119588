package controllers_test

import (
	"bytes"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/controllers"
	"github.com/grantkeeper/grantkeeper/internal/consent"
)

// What the cache keeps of each kind of labelled Secret: data only where grantkeeper controls
// it (bounded), a link record only in its exact shape, metadata otherwise.
func TestTrimCachedSecret(t *testing.T) {
	big := bytes.Repeat([]byte{'x'}, 1<<20)
	managed := map[string]string{oauthv1alpha1.ManagedByLabel: oauthv1alpha1.ManagedByValue}
	grantOwner := func(controller bool) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: oauthv1alpha1.GroupVersion.String(), Kind: "GoogleOAuthGrant", Name: "g", UID: "u1", Controller: ptr.To(controller)}}
	}
	record := []byte(`{"grantUID":"u1","linkHash":"ab"}`)
	linkLabels := map[string]string{oauthv1alpha1.ManagedByLabel: oauthv1alpha1.ManagedByValue, consent.ForLabel: "g"}
	manyRefs := make([]metav1.OwnerReference, 1000)
	for i := range manyRefs {
		manyRefs[i] = metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: "u"}
	}
	for _, tc := range []struct {
		name     string
		s        corev1.Secret
		keepData bool
		check    func(t *testing.T, s *corev1.Secret)
	}{
		{name: "foreign, labelled, 1 MiB: metadata only",
			s: corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "f", Labels: map[string]string{oauthv1alpha1.ManagedByLabel: oauthv1alpha1.ManagedByValue, "huge": strings.Repeat("v", 63)},
				Annotations: map[string]string{corev1.LastAppliedConfigAnnotation: string(big)}, OwnerReferences: manyRefs}, Data: map[string][]byte{"blob": big}},
			check: func(t *testing.T, s *corev1.Secret) {
				if len(s.Annotations) != 0 || len(s.Labels) != 1 || len(s.OwnerReferences) != 1 {
					t.Errorf("kept annotations %d, labels %v, owner references %d", len(s.Annotations), s.Labels, len(s.OwnerReferences))
				}
			}},
		{name: "claims a grant as controller, 1 MiB not in our shape: data dropped",
			s: corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "c", Labels: managed, OwnerReferences: grantOwner(true),
				Annotations: map[string]string{"note": string(big)}}, Data: map[string][]byte{"blob": big}},
			check: func(t *testing.T, s *corev1.Secret) {
				if len(s.Annotations) != 0 {
					t.Errorf("kept %d annotations over the bound", len(s.Annotations))
				}
			}},
		{name: "a withdrawn derived Secret (a few bytes): kept", keepData: true,
			s: corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "g-access-token", Labels: managed, OwnerReferences: grantOwner(true)},
				Data: map[string][]byte{oauthv1alpha1.AccessTokenKey: {}, oauthv1alpha1.ExpiryKey: []byte("2026-01-01T00:00:00Z")}}},
		{name: "link record in its exact shape: kept", keepData: true,
			s: corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: consent.SecretName("g"), Labels: linkLabels, OwnerReferences: grantOwner(false)},
				Data: map[string][]byte{consent.RecordKey: record}}},
		{name: "link record with another key: metadata only",
			s: corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: consent.SecretName("g"), Labels: linkLabels, OwnerReferences: grantOwner(false)},
				Data: map[string][]byte{consent.RecordKey: record, "blob": big}}},
		{name: "link record under another grant's name: metadata only",
			s: corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: consent.SecretName("other"), Labels: linkLabels, OwnerReferences: grantOwner(false)},
				Data: map[string][]byte{consent.RecordKey: record}}},
		{name: "link record over the size bound: metadata only",
			s: corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: consent.SecretName("g"), Labels: linkLabels, OwnerReferences: grantOwner(false)},
				Data: map[string][]byte{consent.RecordKey: big}}},
		{name: "refresh-token Secret a consent created (no owner): metadata only",
			s: corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "g-refresh-token", Labels: managed}, Data: map[string][]byte{"refresh_token": []byte("1//0abc")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s.DeepCopy()
			s.Namespace, s.UID, s.ResourceVersion = "ns", "uid-1", "7"
			out, err := controllers.TrimCachedSecret(s)
			if err != nil {
				t.Fatal(err)
			}
			got := out.(*corev1.Secret)
			if got.Name != tc.s.Name || got.UID != "uid-1" || got.ResourceVersion != "7" || got.Labels[oauthv1alpha1.ManagedByLabel] != oauthv1alpha1.ManagedByValue {
				t.Errorf("identity or our label lost: %+v", got.ObjectMeta)
			}
			if has := len(got.Data) > 0; has != tc.keepData {
				t.Errorf("data kept: %v, want %v (%d keys)", has, tc.keepData, len(got.Data))
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}
