package main

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

func TestParseKind(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    grantKind
		wantErr bool
	}{
		{in: "", want: kindGoogle},
		{in: "GoogleOAuthGrant", want: kindGoogle},
		{in: " OAuthGrant ", want: kindProvider},
		{in: "oauthgrant", wantErr: true}, // kinds are spelled as the API spells them
		{in: "ClusterOAuthClient", wantErr: true},
	} {
		got, err := parseKind(tc.in)
		if tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), "BENCH_KIND") {
				t.Errorf("parseKind(%q) = %q, %v; want an error naming BENCH_KIND", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseKind(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// Each mode creates grants of its own kind, reading the refresh token from <name>-rt and the
// client from the namespace's client objects; OAuthGrant mode gives the OAuthClient the
// fake's endpoints and the auth method the fake takes, and only it lets the manager reach
// loopback providers.
func TestKindObjects(t *testing.T) {
	const tokenURL, revokeURL = "http://127.0.0.1:4242/token", "http://127.0.0.1:4242/revoke"
	for _, k := range []grantKind{kindGoogle, kindProvider} {
		t.Run(string(k), func(t *testing.T) {
			g := k.grant("bench", "g00007")
			if g.GrantKind() != string(k) || g.GetName() != "g00007" || g.GetNamespace() != "bench" {
				t.Fatalf("grant = %s %s/%s, want %s bench/g00007", g.GrantKind(), g.GetNamespace(), g.GetName(), k)
			}
			if g.RefreshTokenSecretName() != "g00007-rt" || g.RefreshTokenKey() != oauthv1alpha1.DefaultRefreshTokenKey {
				t.Errorf("refresh token from %s[%s], want g00007-rt[%s]", g.RefreshTokenSecretName(), g.RefreshTokenKey(), oauthv1alpha1.DefaultRefreshTokenKey)
			}
			if e := k.empty(); e.GrantKind() != string(k) {
				t.Errorf("empty() is a %s, want a %s", e.GrantKind(), k)
			}
			if got := k.resource(); got != strings.ToLower(string(k))+"s" {
				t.Errorf("resource() = %q, want %q", got, strings.ToLower(string(k))+"s")
			}

			objs := k.clientObjects("bench", tokenURL, revokeURL)
			sec, ok := objs[0].(*corev1.Secret)
			if !ok || sec.Name != clientName || sec.Namespace != "bench" || sec.StringData[oauthv1alpha1.ClientSecretKey] != clientSecret || sec.StringData["client_id"] != clientID {
				t.Fatalf("first client object = %#v, want the client Secret", objs[0])
			}
			loopback := slices.Contains(k.managerArgs(), "--allow-loopback-providers")
			switch k {
			case kindGoogle:
				gg := g.(*oauthv1alpha1.GoogleOAuthGrant)
				if gg.Spec.ClientSecretRef == nil || gg.Spec.ClientSecretRef.Name != clientName {
					t.Errorf("clientSecretRef = %v, want %s", gg.Spec.ClientSecretRef, clientName)
				}
				if len(objs) != 1 || loopback {
					t.Errorf("Google mode: %d client objects, loopback flag %v; want 1, false (the Google path unchanged)", len(objs), loopback)
				}
			case kindProvider:
				og := g.(*oauthv1alpha1.OAuthGrant)
				if og.Spec.ClientRef.Name != clientName || og.Spec.ClientRef.Kind != "" || og.Spec.GrantType != "" {
					t.Errorf("clientRef = %+v, grantType %q; want the namespace's OAuthClient %s, a refresh-token grant", og.Spec.ClientRef, og.Spec.GrantType, clientName)
				}
				if len(objs) != 2 || !loopback {
					t.Fatalf("OAuthGrant mode: %d client objects, loopback flag %v; want 2, true", len(objs), loopback)
				}
				oc, ok := objs[1].(*oauthv1alpha1.OAuthClient)
				if !ok || oc.Name != clientName || oc.Namespace != "bench" {
					t.Fatalf("second client object = %#v, want OAuthClient bench/%s", objs[1], clientName)
				}
				if oc.Spec.ClientID != clientID || oc.Spec.TokenEndpointAuthMethod != oauthv1alpha1.AuthClientSecretPost || oc.Spec.IssuerURL != "" {
					t.Errorf("OAuthClient provider = %+v, want client %s, client_secret_post, no discovery", oc.Spec.OAuthProvider, clientID)
				}
				if e := oc.Spec.Endpoints; e == nil || e.TokenURL != tokenURL || e.RevocationURL != revokeURL {
					t.Errorf("OAuthClient endpoints = %+v, want %s and %s", e, tokenURL, revokeURL)
				}
				// The secret is read from the Secret's default key (client_secret).
				if r := oc.Spec.ClientSecretRef; r == nil || r.Name != sec.Name || (r.Key != "" && sec.StringData[r.Key] == "") {
					t.Errorf("OAuthClient clientSecretRef = %+v, want the client Secret %s", r, sec.Name)
				}
			}
		})
	}
}
