package consent_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

const (
	gmail     = "https://www.googleapis.com/auth/gmail.readonly"
	driveFile = "https://www.googleapis.com/auth/drive.file"
)

// Issue 28, item 1: scopes do not leak between namespaces that share an OAuth client. A
// ClusterGoogleOAuthClient admits team-a and team-b; the owner consents to gmail.readonly
// through team-a's link; team-b's grant asks for drive.file only and the same owner consents
// through its link. Google unions what an account granted one client (the fake does too), yet
// team-b's derived Secret carries only drive.file (and openid and email), after the consent
// and after a refresh; no link asks for include_granted_scopes, and the refresh asks for
// spec.scopes.
func TestScopesDoNotLeakBetweenNamespaces(t *testing.T) {
	h := newHarness(t, harnessOptions{otherNamespaces: 1})
	teamA, teamB := h.NS, h.others[0]
	h.clientSecretObj("shared-client")
	cc := &oauthv1alpha1.ClusterGoogleOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "shared-" + rand.String(6)},
		Spec: oauthv1alpha1.ClusterGoogleOAuthClientSpec{
			SecretRef:  oauthv1alpha1.ClusterClientSecretReference{Name: "shared-client", Namespace: teamA.Name},
			Namespaces: []string{teamA.Name, teamB.Name},
		}}
	if err := h.C.Create(h.Ctx, cc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.C.Delete(h.Ctx, cc) })
	shared := func(s *oauthv1alpha1.GoogleOAuthGrantSpec) {
		s.ClientSecretRef = nil
		s.ClientRef = &oauthv1alpha1.ClientReference{Kind: oauthv1alpha1.KindClusterGoogleOAuthClient, Name: cc.Name}
	}
	consent := func(name string) {
		t.Helper()
		f := h.consentOverHTTP(h.waitLink(name, ""))
		if q := f.authURL.Query(); q.Has("include_granted_scopes") {
			t.Errorf("%s/%s: the link sent include_granted_scopes=%q", h.Name, name, q.Get("include_granted_scopes"))
		}
		if f.page.status != http.StatusOK || !strings.Contains(f.page.body, "Access granted") {
			t.Fatalf("%s/%s consent page: HTTP %d %s", h.Name, name, f.page.status, f.page.body)
		}
	}

	h.grant("mail", []string{gmail}, shared)
	consent("mail")
	h.waitCondition("mail", oauthv1alpha1.ConditionReady, metav1.ConditionTrue, oauthv1alpha1.ReasonTokenValid)
	owner := h.GetGrant("mail").Status.Account

	h.in(teamB, func() {
		h.grant("files", []string{driveFile}, shared)
		consent("files")
		g := h.waitCondition("files", oauthv1alpha1.ConditionReady, metav1.ConditionTrue, oauthv1alpha1.ReasonTokenValid)
		if g.Status.Account == nil || owner == nil || g.Status.Account.Sub != owner.Sub {
			t.Fatalf("both consents must come from one account for the scenario: %+v and %+v", owner, g.Status.Account)
		}
		if union := h.google.GrantedScopes(owner.Email, clientID); !slices.Contains(union, gmail) || !slices.Contains(union, driveFile) {
			t.Fatalf("the fake's union for the account and client is %v: the scenario needs both scopes there", union)
		}
		checkOnly := func(when string) {
			t.Helper()
			g := h.GetGrant("files")
			var s corev1.Secret
			if err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: teamB.Name, Name: g.TargetSecretName()}, &s); err != nil {
				t.Fatal(err)
			}
			carried := h.google.AccessTokenScopes(string(s.Data[oauthv1alpha1.AccessTokenKey]))
			if len(carried) == 0 || slices.Contains(carried, gmail) || !slices.Contains(carried, driveFile) {
				t.Errorf("%s: team-b's access token carries %v, want drive.file (and openid, email) only", when, carried)
			}
			for _, sc := range carried {
				if sc != driveFile && sc != "openid" && sc != "email" {
					t.Errorf("%s: team-b's access token carries %s, outside spec.scopes", when, sc)
				}
			}
			if slices.Contains(g.Status.GrantedScopes, gmail) {
				t.Errorf("%s: team-b's status.grantedScopes %v lists team-a's scope", when, g.Status.GrantedScopes)
			}
		}
		checkOnly("after the consent")

		rt := string(h.refreshTokenSecret("files").Data["refresh_token"])
		before := len(h.google.AccessTokensFor(rt))
		g = h.GetGrant("files")
		g.Annotations = map[string]string{oauthv1alpha1.RefreshRequestedAtAnnotation: time.Now().UTC().Add(time.Second).Format(time.RFC3339)}
		if err := h.C.Update(h.Ctx, g); err != nil {
			t.Fatal(err)
		}
		h.Eventually(20*time.Second, "a manual refresh of team-b's grant", func() (bool, string) {
			g := h.GetGrant("files")
			return len(h.google.AccessTokensFor(rt)) > before && g.Status.LastHandledRefreshRequest != "", ""
		})
		h.waitCondition("files", oauthv1alpha1.ConditionReady, metav1.ConditionTrue, oauthv1alpha1.ReasonTokenValid)
		checkOnly("after a refresh")
		for _, ex := range h.google.Exchanges() {
			if ex.RefreshToken == rt && !slices.Equal(strings.Fields(ex.Scope), []string{driveFile, "openid", "email"}) {
				t.Errorf("team-b's refresh sent scope %q, want spec.scopes with openid and email", ex.Scope)
			}
		}
	})
}
