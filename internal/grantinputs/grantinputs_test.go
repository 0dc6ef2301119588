package grantinputs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/plan"
)

func grant(spec oauthv1alpha1.GoogleOAuthGrantSpec) *oauthv1alpha1.GoogleOAuthGrant {
	return &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: "ns", Generation: 3}, Spec: spec}
}

var (
	withSecret = oauthv1alpha1.GoogleOAuthGrantSpec{
		ClientSecretRef:       &oauthv1alpha1.ClientSecretReference{Name: "client"},
		RefreshTokenSecretRef: &oauthv1alpha1.RefreshTokenSecretReference{Name: "rt", Key: "token"},
	}
	withClient = oauthv1alpha1.GoogleOAuthGrantSpec{
		ClientRef:             &oauthv1alpha1.ClientReference{Name: "shared"},
		RefreshTokenSecretRef: &oauthv1alpha1.RefreshTokenSecretReference{Name: "rt"},
	}
	withCluster = oauthv1alpha1.GoogleOAuthGrantSpec{
		ClientRef:             &oauthv1alpha1.ClientReference{Kind: oauthv1alpha1.KindClusterGoogleOAuthClient, Name: "org"},
		RefreshTokenSecretRef: &oauthv1alpha1.RefreshTokenSecretReference{Name: "rt"},
	}
	adc = oauthv1alpha1.GoogleOAuthGrantSpec{AuthorizedUserSecretRef: &oauthv1alpha1.AuthorizedUserSecretReference{Name: "adc"}}
	sa  = oauthv1alpha1.GoogleOAuthGrantSpec{ServiceAccountKeySecretRef: &oauthv1alpha1.ServiceAccountKeySecretReference{Name: "key", Key: "k.json"}, Scopes: []string{"s"}}
)

// Each form answers the questions the rest of the operator used to answer by looking at
// which spec field is set.
func TestOf(t *testing.T) {
	for _, tc := range []struct {
		name             string
		spec             oauthv1alpha1.GoogleOAuthGrantSpec
		kind             string
		secrets          []string
		shared           string
		token            string // "secret/key", "" for none
		recordable       bool
		client           *ClientRef
		labelKind, label string
	}{
		{"client Secret", withSecret, FormRefreshToken, []string{"client", "rt"}, "client", "rt/token", true, nil, "Secret", "client"},
		{"client object", withClient, FormRefreshToken, []string{"rt"}, "", "rt/refresh_token", true,
			&ClientRef{Kind: oauthv1alpha1.KindGoogleOAuthClient, Name: "shared"}, oauthv1alpha1.KindGoogleOAuthClient, "shared"},
		{"cluster client", withCluster, FormRefreshToken, []string{"rt"}, "", "rt/refresh_token", true,
			&ClientRef{Kind: oauthv1alpha1.KindClusterGoogleOAuthClient, Name: "org"}, oauthv1alpha1.KindClusterGoogleOAuthClient, "org"},
		{"authorized user", adc, FormAuthorizedUser, []string{"adc"}, "", "adc/credentials.json", false, nil, "AuthorizedUser", "adc"},
		{"service account", sa, FormServiceAccountKey, []string{"key"}, "", "", false, nil, "Secret", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := Of(grant(tc.spec))
			if f.Kind() != tc.kind {
				t.Errorf("Kind = %q, want %q", f.Kind(), tc.kind)
			}
			if !slices.Equal(f.Secrets(), tc.secrets) {
				t.Errorf("Secrets = %v, want %v", f.Secrets(), tc.secrets)
			}
			if f.Shared() != tc.shared {
				t.Errorf("Shared = %q, want %q", f.Shared(), tc.shared)
			}
			var token string
			if l := f.RefreshToken(); l != nil {
				token = l.Secret + "/" + l.Key
				if l.Recordable != tc.recordable {
					t.Errorf("Recordable = %v, want %v", l.Recordable, tc.recordable)
				}
			}
			if token != tc.token {
				t.Errorf("RefreshToken = %q, want %q", token, tc.token)
			}
			if got := f.ClientRef(); (got == nil) != (tc.client == nil) || (got != nil && (got.Kind != tc.client.Kind || got.Name != tc.client.Name)) {
				t.Errorf("ClientRef = %v, want %v", got, tc.client)
			}
			if k, n := f.ClientLabel(); k != tc.labelKind || n != tc.label {
				t.Errorf("ClientLabel = %q %q, want %q %q", k, n, tc.labelKind, tc.label)
			}
		})
	}
}

// A rotated token goes where the form keeps it, and reads back; the authorized-user JSON
// keeps its other fields.
func TestTokenLocationRoundTrip(t *testing.T) {
	plain := Of(grant(withSecret)).RefreshToken()
	data := map[string][]byte{"token": []byte("old\n"), "other": []byte("x")}
	if got := plain.Stored(data); got != "old" {
		t.Fatalf("Stored = %q, want old (trimmed)", got)
	}
	if err := plain.Put(data, "new"); err != nil {
		t.Fatal(err)
	}
	if got := plain.Stored(data); got != "new" || string(data["other"]) != "x" {
		t.Errorf("after Put: %q, other %q", got, data["other"])
	}

	au := Of(grant(adc)).RefreshToken()
	data = map[string][]byte{"credentials.json": []byte(`{"type":"authorized_user","client_id":"id","client_secret":"sec","refresh_token":"old","quota_project_id":"p"}`)}
	if got := au.Stored(data); got != "old" {
		t.Fatalf("Stored = %q, want old", got)
	}
	if err := au.Put(data, "new"); err != nil {
		t.Fatal(err)
	}
	if got := au.Stored(data); got != "new" || !strings.Contains(string(data["credentials.json"]), `"quota_project_id": "p"`) {
		t.Errorf("after Put: %q, %s", got, data["credentials.json"])
	}
	if got := au.Stored(map[string][]byte{"credentials.json": []byte("{}")}); got != "" {
		t.Errorf("Stored of a JSON without a token = %q, want empty", got)
	}
	if StoredRefreshToken(Of(grant(sa)), data) != "" {
		t.Error("a service-account grant has a stored refresh token")
	}
}

// caches is an in-memory Caches.
type caches struct {
	secrets  map[types.NamespacedName]*metav1.ObjectMeta
	unsynced map[string]bool
	clients  map[string]*ClientObject // "Kind/namespace/name" (no namespace for a cluster client)
	labels   map[string]map[string]string
}

func (c caches) SecretMeta(_ context.Context, ns, name string) (*metav1.ObjectMeta, error) {
	return c.secrets[types.NamespacedName{Namespace: ns, Name: name}], nil
}
func (c caches) SecretsSynced(ns string) bool { return !c.unsynced[ns] }
func (c caches) Client(_ context.Context, kind string, key types.NamespacedName) (*ClientObject, error) {
	if kind == oauthv1alpha1.KindClusterGoogleOAuthClient {
		key.Namespace = ""
	}
	return c.clients[kind+"/"+key.String()], nil
}
func (c caches) NamespaceLabels(_ context.Context, ns string) (map[string]string, error) {
	return c.labels[ns], nil
}

func meta(uid, rv string) *metav1.ObjectMeta {
	return &metav1.ObjectMeta{UID: types.UID(uid), ResourceVersion: rv}
}

// hash16 is the fingerprint's format, spelled out: status.inputsFingerprint stores it, so a
// change would make every grant refresh once after an upgrade.
func hash16(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:16]
}

func readyClient(kind, name string, secret types.NamespacedName, cluster *plan.Admission) *ClientObject {
	o := &oauthv1alpha1.GoogleOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name, UID: "cu", Generation: 2}}
	ready := &metav1.Condition{Type: oauthv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: oauthv1alpha1.ReasonClientValid}
	return &ClientObject{Obj: o, Kind: kind, Ready: ready, Secret: secret, Cluster: cluster}
}

func TestResolve(t *testing.T) {
	ns := func(name string) types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: name} }
	shared := types.NamespacedName{Namespace: "ops", Name: "oauth"}
	secrets := map[types.NamespacedName]*metav1.ObjectMeta{ns("client"): meta("u1", "5"), ns("rt"): meta("u2", "7"), shared: meta("u3", "9")}
	local := readyClient(oauthv1alpha1.KindGoogleOAuthClient, "shared", shared, nil)
	selective := readyClient(oauthv1alpha1.KindClusterGoogleOAuthClient, "org", shared, &plan.Admission{Namespaces: []string{"other"}})
	byLabel := readyClient(oauthv1alpha1.KindClusterGoogleOAuthClient, "org", shared, &plan.Admission{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}})
	clientPart := hash16("GoogleOAuthClient/shared=cu/2;ops/oauth=u3/9;")
	for _, tc := range []struct {
		name        string
		spec        oauthv1alpha1.GoogleOAuthGrantSpec
		c           caches
		opts        Options
		fingerprint string
		absent      bool
		wait        bool
		state       *plan.ClientState // nil: no client object
		usable      bool              // res.Client set
	}{
		{name: "own Secrets", spec: withSecret, c: caches{secrets: secrets},
			fingerprint: hash16("gen=3;client=u1/5;rt=u2/7;")},
		{name: "refresh token absent", spec: withSecret, c: caches{secrets: map[types.NamespacedName]*metav1.ObjectMeta{ns("client"): meta("u1", "5")}},
			fingerprint: hash16("gen=3;client=u1/5;rt=absent;"), absent: true},
		{name: "authorized user absent is no consent case", spec: adc, c: caches{},
			fingerprint: hash16("gen=3;adc=absent;"), absent: true},
		{name: "client object", spec: withClient, c: caches{secrets: secrets, clients: map[string]*ClientObject{"GoogleOAuthClient/ns/shared": local}},
			fingerprint: hash16("gen=3;rt=u2/7;") + "/" + clientPart,
			state:       &plan.ClientState{Kind: oauthv1alpha1.KindGoogleOAuthClient, Name: "shared", Found: true, Allowed: true}, usable: true},
		{name: "client object absent", spec: withClient, c: caches{secrets: secrets},
			fingerprint: hash16("gen=3;rt=u2/7;") + "/" + hash16("absent;"),
			state:       &plan.ClientState{Kind: oauthv1alpha1.KindGoogleOAuthClient, Name: "shared"}},
		{name: "client Secret's namespace not watched yet", spec: withClient,
			c:    caches{secrets: secrets, clients: map[string]*ClientObject{"GoogleOAuthClient/ns/shared": local}, unsynced: map[string]bool{"ops": true}},
			wait: true, fingerprint: hash16("gen=3;rt=u2/7;"),
			state: &plan.ClientState{Kind: oauthv1alpha1.KindGoogleOAuthClient, Name: "shared", Found: true, Allowed: true}, usable: true},
		{name: "cluster client not admitting the namespace", spec: withCluster,
			c:           caches{secrets: secrets, clients: map[string]*ClientObject{"ClusterGoogleOAuthClient//org": selective}},
			fingerprint: hash16("gen=3;rt=u2/7;") + "/" + hash16("ClusterGoogleOAuthClient/org=cu/2;"),
			state:       &plan.ClientState{Kind: oauthv1alpha1.KindClusterGoogleOAuthClient, Name: "org", Found: true}, usable: true},
		{name: "cluster client admitting by label", spec: withCluster,
			c: caches{secrets: secrets, clients: map[string]*ClientObject{"ClusterGoogleOAuthClient//org": byLabel},
				labels: map[string]map[string]string{"ns": {"team": "a"}}},
			fingerprint: hash16("gen=3;rt=u2/7;") + "/" + hash16("ClusterGoogleOAuthClient/org=cu/2;ops/oauth=u3/9;"),
			state:       &plan.ClientState{Kind: oauthv1alpha1.KindClusterGoogleOAuthClient, Name: "org", Found: true, Allowed: true}, usable: true},
		{name: "cluster client with --namespaces", spec: withCluster, opts: Options{NamespacesOnly: true},
			c:           caches{secrets: secrets, clients: map[string]*ClientObject{"ClusterGoogleOAuthClient//org": byLabel}},
			fingerprint: hash16("gen=3;rt=u2/7;") + "/" + hash16("absent;"),
			state:       &plan.ClientState{Kind: oauthv1alpha1.KindClusterGoogleOAuthClient, Name: "org", Found: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Resolve(context.Background(), grant(tc.spec), tc.c, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.Wait != tc.wait {
				t.Fatalf("Wait = %v, want %v", res.Wait, tc.wait)
			}
			if res.Fingerprint != tc.fingerprint {
				t.Errorf("Fingerprint = %q, want %q", res.Fingerprint, tc.fingerprint)
			}
			if res.RefreshTokenAbsent != tc.absent {
				t.Errorf("RefreshTokenAbsent = %v, want %v", res.RefreshTokenAbsent, tc.absent)
			}
			if (res.Client != nil) != tc.usable {
				t.Errorf("Client = %v, want set %v", res.Client, tc.usable)
			}
			got := res.ClientState
			if (got == nil) != (tc.state == nil) {
				t.Fatalf("ClientState = %+v, want %+v", got, tc.state)
			}
			if got == nil {
				return
			}
			if got.Kind != tc.state.Kind || got.Name != tc.state.Name || got.Found != tc.state.Found || got.Allowed != tc.state.Allowed {
				t.Errorf("ClientState = %+v, want %+v", *got, *tc.state)
			}
			if tc.usable && got.Allowed && got.Ready == nil {
				t.Error("a Ready client's condition was not read")
			}
			if tc.state.Kind == oauthv1alpha1.KindClusterGoogleOAuthClient && tc.opts.NamespacesOnly && got.NotAllowedWhy == "" {
				t.Error("no explanation for a cluster client under --namespaces")
			}
		})
	}
}

// SecretOf is where each client kind's Secret is: a cluster client's in its spec's
// namespace, else the manager's own.
func TestSecretOf(t *testing.T) {
	local := &oauthv1alpha1.GoogleOAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c"}}
	local.Spec.SecretRef.Name = "s"
	cluster := &oauthv1alpha1.ClusterGoogleOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "c"}}
	cluster.Spec.SecretRef.Name = "s"
	named := cluster.DeepCopy()
	named.Spec.SecretRef.Namespace = "ops"
	for _, tc := range []struct {
		obj  interface{ GetName() string }
		want string
	}{{local, "ns/s"}, {cluster, "grantkeeper-system/s"}, {named, "ops/s"}} {
		var got types.NamespacedName
		switch o := tc.obj.(type) {
		case *oauthv1alpha1.GoogleOAuthClient:
			got = SecretOf(o, "grantkeeper-system")
		case *oauthv1alpha1.ClusterGoogleOAuthClient:
			got = SecretOf(o, "grantkeeper-system")
		}
		if got.String() != tc.want {
			t.Errorf("%T: SecretOf = %s, want %s", tc.obj, got, tc.want)
		}
	}
}

func TestRevocationRefused(t *testing.T) {
	ready := &metav1.Condition{Type: oauthv1alpha1.ConditionReady, Status: metav1.ConditionTrue}
	provider := func(revocation string, ready *metav1.Condition) *ClientObject {
		return &ClientObject{Ready: ready, Provider: &ProviderClient{Endpoints: oauthv1alpha1.OAuthEndpointsStatus{TokenURL: "https://p/token", RevocationURL: revocation}}}
	}
	grant := func(p oauthv1alpha1.DeletionPolicy) oauthv1alpha1.Grant {
		return &oauthv1alpha1.OAuthGrant{Spec: oauthv1alpha1.OAuthGrantSpec{DeletionPolicy: p}}
	}
	for _, tc := range []struct {
		name    string
		g       oauthv1alpha1.Grant
		co      *ClientObject
		refused bool
	}{
		{"Revoke without a revocation endpoint", grant(oauthv1alpha1.DeletionPolicyRevoke), provider("", ready), true},
		{"Revoke with one", grant(oauthv1alpha1.DeletionPolicyRevoke), provider("https://p/revoke", ready), false},
		{"Retain without one", grant(oauthv1alpha1.DeletionPolicyRetain), provider("", ready), false},
		{"client not checked yet: wait, do not refuse", grant(oauthv1alpha1.DeletionPolicyRevoke), provider("", nil), false},
		{"a Google client", grant(oauthv1alpha1.DeletionPolicyRevoke), &ClientObject{Ready: ready}, false},
	} {
		if got := revocationRefused(tc.g, tc.co) != ""; got != tc.refused {
			t.Errorf("%s: refused = %v, want %v", tc.name, got, tc.refused)
		}
	}
}
