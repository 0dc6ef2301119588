package helm

import (
	"fmt"
	"strings"
	"testing"
)

// TestConsentValues: consent.enabled passes the flags, opens the port, renders the Service,
// and the Ingress only when asked, with TLS only when a secretName is set.
func TestConsentValues(t *testing.T) {
	if h := template(t); h["Service/grantkeeper-system/grantkeeper-consent"] != nil {
		t.Fatal("consent links are on by default")
	}
	h := template(t, "--set", "consent.enabled=true,consent.baseURL=https://consent.example.com,consent.linkTTL=24h,consent.authURL=https://accounts.example.com/auth")
	// The consent server runs in the endpoints Deployment; the manager mints links (issue 28 item 6).
	d := h["Deployment/grantkeeper-system/grantkeeper-endpoints"]
	if d == nil {
		t.Fatal("no endpoints Deployment with consent links on")
	}
	c := field(t, d, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
	args := fmt.Sprint(c["args"])
	for _, want := range []string{"--components=endpoints", "--consent-bind-address=:8082", "--consent-base-url=https://consent.example.com", "--consent-link-ttl=24h", "--auth-url=https://accounts.example.com/auth"} {
		if !strings.Contains(args, want) {
			t.Errorf("endpoints args %s lack %s", args, want)
		}
	}
	m := field(t, h["Deployment/grantkeeper-system/grantkeeper-controller-manager"], "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
	margs := fmt.Sprint(m["args"])
	for _, want := range []string{"--components=manager", "--consent-base-url=https://consent.example.com", "--consent-link-ttl=24h"} {
		if !strings.Contains(margs, want) {
			t.Errorf("manager args %s lack %s", margs, want)
		}
	}
	if strings.Contains(margs, "--consent-bind-address") || strings.Contains(fmt.Sprint(m["ports"]), "consent") {
		t.Errorf("the manager serves consent links: args %s, ports %v", margs, m["ports"])
	}
	if !strings.Contains(fmt.Sprint(c["ports"]), "consent") {
		t.Errorf("no consent port: %v", c["ports"])
	}
	if h["Service/grantkeeper-system/grantkeeper-consent"] == nil {
		t.Error("no consent Service")
	}
	if h["Ingress/grantkeeper-system/grantkeeper-consent"] != nil {
		t.Error("an Ingress without consent.ingress.enabled")
	}
	h = template(t, "--set", "consent.enabled=true,consent.baseURL=https://consent.example.com,consent.ingress.enabled=true,consent.ingress.tls.secretName=consent-tls")
	ing := h["Ingress/grantkeeper-system/grantkeeper-consent"]
	if ing == nil {
		t.Fatal("no Ingress")
	}
	spec := fmt.Sprint(field(t, ing, "spec"))
	if !strings.Contains(spec, "consent.example.com") || !strings.Contains(spec, "consent-tls") {
		t.Errorf("Ingress spec %s lacks the host or the TLS Secret", spec)
	}
	for _, set := range []string{"consent.enabled=true", "consent.baseURL=http://consent.example.com", "consent.linkTTL=week"} {
		if _, err := runErr(helm, "template", "grantkeeper", "charts/grantkeeper", "--set", set); err == nil {
			t.Errorf("--set %s was accepted", set)
		}
	}
}
