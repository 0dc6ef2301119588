package plan

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

func TestNamespaceAllowed(t *testing.T) {
	team := map[string]string{"team": "analytics"}
	sel := func(ml map[string]string, exprs ...metav1.LabelSelectorRequirement) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: ml, MatchExpressions: exprs}
	}
	for _, tc := range []struct {
		name     string
		selector *metav1.LabelSelector
		names    []string
		ns       string
		labels   map[string]string
		want     bool
	}{
		{"no conditions: every namespace", nil, nil, "anything", nil, true},
		{"empty selector, no names: every namespace", sel(nil), nil, "anything", nil, true},
		{"selector matches", sel(team), nil, "a", team, true},
		{"selector does not match", sel(team), nil, "a", map[string]string{"team": "ads"}, false},
		{"selector, namespace without labels", sel(team), nil, "a", nil, false},
		{"listed by name", nil, []string{"a", "b"}, "b", nil, true},
		{"not listed, no selector", nil, []string{"a"}, "b", team, false},
		{"not listed, empty selector: names alone decide", sel(nil), []string{"a"}, "b", team, false},
		{"either: listed though the selector does not match", sel(team), []string{"b"}, "b", nil, true},
		{"either: selector matches though not listed", sel(team), []string{"a"}, "b", team, true},
		{"neither", sel(team), []string{"a"}, "b", nil, false},
		{"expression In", sel(nil, metav1.LabelSelectorRequirement{Key: "team", Operator: metav1.LabelSelectorOpIn, Values: []string{"ads", "analytics"}}), nil, "a", team, true},
		{"expression DoesNotExist", sel(nil, metav1.LabelSelectorRequirement{Key: "team", Operator: metav1.LabelSelectorOpDoesNotExist}), nil, "a", team, false},
		{"invalid selector admits nothing", sel(nil, metav1.LabelSelectorRequirement{Key: "team", Operator: "Matches"}), nil, "a", team, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := Admission{Selector: tc.selector, Namespaces: tc.names}
			if got := NamespaceAllowed(spec, tc.ns, tc.labels); got != tc.want {
				t.Errorf("NamespaceAllowed = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestClientReady(t *testing.T) {
	st := oauthv1alpha1.GoogleOAuthClientStatus{ObservedGeneration: 1, Conditions: []metav1.Condition{{Type: oauthv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: oauthv1alpha1.ReasonClientValid}}}
	if ClientReady(1, st.ObservedGeneration, st.Conditions) == nil {
		t.Error("a Ready condition for the current generation was ignored")
	}
	if ClientReady(2, st.ObservedGeneration, st.Conditions) != nil {
		t.Error("a Ready condition about an older spec was trusted")
	}
	if ClientReady(0, 0, nil) != nil {
		t.Error("no condition, yet a Ready condition")
	}
}

// clientRef turns the test grant into one naming a client object; state nil means the
// client is usable (found, allowed, Ready).
func clientRef(kind string, state *ClientState) func(*Observation) {
	return func(o *Observation) {
		gg(o).Spec.ClientSecretRef = nil
		gg(o).Spec.ClientRef = &oauthv1alpha1.ClientReference{Kind: kind, Name: "shared"}
		if state == nil {
			state = &ClientState{Found: true, Allowed: true, Ready: &metav1.Condition{Type: oauthv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: oauthv1alpha1.ReasonClientValid}}
		}
		state.Kind, state.Name = kind, "shared"
		o.Client = state
		o.Fingerprint, gg(o).Status.InputsFingerprint = "own/client", "own/client"
	}
}

func manual(o *Observation) {
	gg(o).Annotations = map[string]string{oauthv1alpha1.RefreshRequestedAtAnnotation: issued.Add(time.Minute).Format(time.RFC3339)}
}

func TestDecideClientRef(t *testing.T) {
	const cluster, local = oauthv1alpha1.KindClusterGoogleOAuthClient, oauthv1alpha1.KindGoogleOAuthClient
	notReady := &metav1.Condition{Type: oauthv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: oauthv1alpha1.ReasonSecretKeyMissing, Message: `Secret "s" has no usable key "client_id"`}
	for _, tc := range []struct {
		name        string
		obs         Observation
		refresh     bool
		readyReason string // when not refreshing ("" = unchanged)
		message     string // a part of the Ready message
	}{
		{name: "usable client, fresh token: wait", obs: observe(issued.Add(time.Minute), clientRef(local, nil))},
		{name: "usable client, due: refresh", obs: observe(issued.Add(41*time.Minute), clientRef(local, nil)), refresh: true},
		{name: "client not found: no request even without a token", obs: observe(issued, noToken, clientRef(local, &ClientState{})),
			readyReason: oauthv1alpha1.ReasonClientNotFound, message: `GoogleOAuthClient "shared" (spec.clientRef) not found in namespace "ns"`},
		{name: "cluster client not found", obs: observe(issued, noToken, clientRef(cluster, &ClientState{})),
			readyReason: oauthv1alpha1.ReasonClientNotFound, message: `ClusterGoogleOAuthClient "shared" (spec.clientRef) not found;`},
		{name: "client not Ready: its reason in the message", obs: observe(issued, noToken, clientRef(local, &ClientState{Found: true, Allowed: true, Ready: notReady})),
			readyReason: oauthv1alpha1.ReasonClientNotReady, message: `is not Ready (SecretKeyMissing: Secret "s" has no usable key "client_id")`},
		{name: "not allowed: not even a manual request or changed inputs make a request", obs: observe(issued.Add(41*time.Minute), manual, clientRef(cluster, &ClientState{Found: true, Ready: notReady}), func(o *Observation) { o.Fingerprint = "other/other" }),
			readyReason: oauthv1alpha1.ReasonClientNotAllowed, message: `ClusterGoogleOAuthClient "shared" (spec.clientRef) does not admit namespace "ns"`},
		{name: "Ready grant loses the namespace: Ready False, no request", obs: observe(issued.Add(time.Minute), withReady(metav1.ConditionTrue, oauthv1alpha1.ReasonTokenValid), clientRef(cluster, &ClientState{Found: true})),
			readyReason: oauthv1alpha1.ReasonClientNotAllowed},
		{name: "client status about an older spec: wait for the client controller", obs: observe(issued, noToken, clientRef(local, &ClientState{Found: true, Allowed: true}))},
		{name: "client usable again after ClientNotAllowed, token still valid: refresh", obs: observe(issued.Add(time.Minute), withReady(metav1.ConditionFalse, oauthv1alpha1.ReasonClientNotAllowed), clientRef(cluster, nil)), refresh: true},
		{name: "client usable again after ClientNotFound: refresh", obs: observe(issued, noToken, withReady(metav1.ConditionFalse, oauthv1alpha1.ReasonClientNotFound), clientRef(local, nil)), refresh: true},
		{name: "client secret rotated, grant healthy: no request before the refresh time", obs: observe(issued.Add(time.Minute), withReady(metav1.ConditionTrue, oauthv1alpha1.ReasonTokenValid), clientRef(local, nil), func(o *Observation) { o.Fingerprint = "own/rotated" })},
		{name: "client secret rotated, due anyway: refresh", obs: observe(issued.Add(41*time.Minute), clientRef(local, nil), func(o *Observation) { o.Fingerprint = "own/rotated" }), refresh: true},
		{name: "client secret rotated after InvalidClient: try again", obs: observe(issued, noToken, withReady(metav1.ConditionFalse, oauthv1alpha1.ReasonInvalidClient), clientRef(local, nil), func(o *Observation) { o.Fingerprint = "own/rotated" }), refresh: true},
		{name: "InvalidClient, nothing changed: no request", obs: observe(issued, noToken, withReady(metav1.ConditionFalse, oauthv1alpha1.ReasonInvalidClient), clientRef(local, nil)), readyReason: oauthv1alpha1.ReasonInvalidClient},
		{name: "grant's own input changed: refresh", obs: observe(issued.Add(time.Minute), clientRef(local, nil), func(o *Observation) { o.Fingerprint = "new/client" }), refresh: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Decide(tc.obs)
			if p.Refresh != tc.refresh {
				t.Fatalf("Refresh = %v (%s), want %v", p.Refresh, p.Why, tc.refresh)
			}
			if p.Refresh || tc.readyReason == "" {
				return
			}
			ready := meta.FindStatusCondition(p.Report.Status.Conditions, oauthv1alpha1.ConditionReady)
			if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != tc.readyReason {
				t.Fatalf("Ready = %+v, want False/%s", ready, tc.readyReason)
			}
			if !contains(ready.Message, tc.message) {
				t.Errorf("Ready message %q lacks %q", ready.Message, tc.message)
			}
			if p.Report.RequeueAfter != 0 {
				t.Errorf("RequeueAfter = %v: a client problem waits for a watch event", p.Report.RequeueAfter)
			}
			if p.Report.Status.ExpiresAt != gg(&tc.obs).Status.ExpiresAt {
				t.Error("a client problem changed the record of the token in the derived Secret")
			}
		})
	}
}

func TestFingerprintParts(t *testing.T) {
	for _, tc := range []struct {
		observed, recorded string
		own, client        bool
	}{
		{"a", "a", false, false},
		{"a", "b", true, false},
		{JoinFingerprint("a", "c"), JoinFingerprint("a", "c"), false, false},
		{JoinFingerprint("a", "d"), JoinFingerprint("a", "c"), false, true},
		{JoinFingerprint("b", "c"), JoinFingerprint("a", "c"), true, false},
		{JoinFingerprint("a", "c"), "a", false, true},
		{JoinFingerprint("a", "c"), "", true, true},
	} {
		own, client := inputsChanged(tc.observed, tc.recorded)
		if own != tc.own || client != tc.client {
			t.Errorf("inputsChanged(%q, %q) = %v, %v; want %v, %v", tc.observed, tc.recorded, own, client, tc.own, tc.client)
		}
	}
}

func contains(s, part string) bool { return strings.Contains(s, part) }
