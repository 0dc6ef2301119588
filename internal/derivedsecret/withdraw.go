package derivedsecret

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// WithdrawnMessageAnnotation carries, beside WithdrawnReasonAnnotation, the security event's
// explanation (Google's words, sanitized by internal/risc), which the grant's Ready message
// quotes. Writing a token drops it.
const WithdrawnMessageAnnotation = "oauth.grantkeeper.dev/withdrawn-message"

// ReadAnnotations are the annotations of a derived Secret that decisions read (a cache
// trimming a Secret's annotations keeps these).
var ReadAnnotations = []string{RefreshedAtAnnotation, WithdrawnReasonAnnotation, WithdrawnMessageAnnotation}

// maxMessage bounds the message annotation (the receiver's messages are far shorter).
const maxMessage = 512

// Withdrawal is what a security event recorded in a grant's derived Secret: the access token
// withdrawn (empty, expiring at the event's time) and why. It is the receiver's only record
// of an event: the grant reconciler, which alone writes the grant's status, derives
// Ready=False and Revoked=True from it (internal/plan).
type Withdrawal struct {
	// Reason is a security reason (oauthv1alpha1.SecurityReasons), or ReasonAccountEnabled
	// once account-enabled lifted an AccountDisabled withdrawal.
	Reason  string
	Message string
	// At is the event's time (the Secret's expiry); Recorded is when the receiver wrote it.
	At, Recorded time.Time
}

// Withdrawn returns the withdrawal a derived Secret records, nil when it holds a token (a
// cached Secret holding one is a summary without the token, Summarize, so a missing key
// means "not withdrawn").
func Withdrawn(s *corev1.Secret) *Withdrawal {
	if s == nil {
		return nil
	}
	if v, ok := s.Data[oauthv1alpha1.AccessTokenKey]; !ok || len(v) != 0 {
		return nil
	}
	reason, when, _ := strings.Cut(s.Annotations[WithdrawnReasonAnnotation], " ")
	if reason == "" {
		return nil
	}
	w := &Withdrawal{Reason: reason, Message: s.Annotations[WithdrawnMessageAnnotation]}
	w.Recorded, _ = time.Parse(time.RFC3339, when)
	w.At, _ = time.Parse(time.RFC3339, string(s.Data[oauthv1alpha1.ExpiryKey]))
	return w
}

// Withdraw records a revoking security event in g's derived Secret: the access token is
// replaced by an empty one expiring at the event's time at, marked with reason and message,
// so pods reading it fail clearly instead of using a token Google may accept for minutes
// more. A grant that has no derived Secret yet gets one in that withdrawn shape (controlled
// by the grant, like any derived Secret): that is its record of the event, and a token
// request for it is refused until its Secrets or spec change. A Secret of that name that is
// not the grant's is never written. It reports whether it wrote; a Secret that already
// records this reason is left as it is (a redelivery, or another replica was first).
// c reads from the cache first; live re-reads after a conflict.
func Withdraw(ctx context.Context, c client.Client, live client.Reader, g oauthv1alpha1.Grant, at, now time.Time, reason, message string) (bool, error) {
	return change(ctx, c, live, g, func(s *corev1.Secret) bool {
		if w := Withdrawn(s); w != nil && w.Reason == reason {
			return false
		}
		refreshed := at.Add(-time.Second)
		if t, ok := Read(s, g.GetName()); ok && t.RefreshedAt.Before(at) {
			refreshed = t.RefreshedAt
		}
		Apply(s, g.GetName(), Token{AccessToken: "", Expiry: at, RefreshedAt: refreshed})
		mark(s, reason, message, now)
		return true
	}, true)
}

// Enable records account-enabled: a Secret withdrawn for AccountDisabled is marked
// ReasonAccountEnabled (still without a token), which tells the reconciler to request one.
// Other Secrets are left as they are; it reports whether it wrote.
func Enable(ctx context.Context, c client.Client, live client.Reader, g oauthv1alpha1.Grant, now time.Time, message string) (bool, error) {
	return change(ctx, c, live, g, func(s *corev1.Secret) bool {
		if w := Withdrawn(s); w == nil || w.Reason != oauthv1alpha1.ReasonAccountDisabled {
			return false
		}
		mark(s, oauthv1alpha1.ReasonAccountEnabled, message, now)
		return true
	}, false)
}

func mark(s *corev1.Secret, reason, message string, now time.Time) {
	if len(message) > maxMessage {
		message = message[:maxMessage]
	}
	s.Annotations[WithdrawnReasonAnnotation] = reason + " " + now.UTC().Format(time.RFC3339)
	s.Annotations[WithdrawnMessageAnnotation] = message
}

// change applies edit to g's derived Secret with retry.RetryOnConflict, creating the
// Secret when create is set and there is none.
func change(ctx context.Context, c client.Client, live client.Reader, g oauthv1alpha1.Grant, edit func(*corev1.Secret) bool, create bool) (bool, error) {
	key := types.NamespacedName{Namespace: g.GetNamespace(), Name: g.TargetSecretName()}
	var rd client.Reader = c
	wrote := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s := &corev1.Secret{}
		err := rd.Get(ctx, key, s)
		rd = live // after a conflict, or once the cache was found lacking, read live
		switch {
		case apierrors.IsNotFound(err):
			if !create || g.GetUID() == "" {
				return nil
			}
			s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(g, oauthv1alpha1.GroupVersion.WithKind(g.GrantKind()))}}}
			edit(s)
			if err := c.Create(ctx, s); err != nil {
				if apierrors.IsAlreadyExists(err) {
					// Created meanwhile (by the reconciler or another replica): look again.
					return apierrors.NewConflict(corev1.Resource("secrets"), key.Name, err)
				}
				return fmt.Errorf("creating access-token Secret %q: %w", key.Name, err)
			}
			wrote = true
			return nil
		case err != nil:
			return err
		}
		if !OwnedBy(s, string(g.GetUID())) {
			return nil // never write into someone else's Secret
		}
		if _, ok := readSummary(s); ok {
			// A compact cached summary lacks the data: read the Secret itself.
			s = &corev1.Secret{}
			if err := live.Get(ctx, key, s); err != nil {
				return client.IgnoreNotFound(err)
			}
		}
		if !edit(s) {
			return nil
		}
		if err := c.Update(ctx, s); err != nil {
			return err
		}
		wrote = true
		return nil
	})
	return wrote, err
}
