package helm

import (
	"fmt"
	"strings"
	"testing"
)

// TestWebhookNetworkPolicy (issue 28, finding 10): on by default with injection; the webhook
// port admits only apiServerCIDRs when set, else everything but podCIDRs; the other ports
// stay open; off with the value or without injection.
func TestWebhookNetworkPolicy(t *testing.T) {
	const key = "NetworkPolicy/grantkeeper-system/grantkeeper-webhook"
	rules := func(set ...string) string {
		t.Helper()
		args := []string{}
		for _, s := range set {
			args = append(args, "--set", s)
		}
		np := template(t, args...)[key]
		if np == nil {
			return ""
		}
		return fmt.Sprint(field(t, np, "spec", "ingress"))
	}
	if r := rules(); !strings.Contains(r, "port:webhook") || !strings.Contains(r, "port:https") || !strings.Contains(r, "port:8081") {
		t.Errorf("default policy: %s", r)
	}
	r := rules("injection.networkPolicy.apiServerCIDRs={192.0.2.10/32}")
	if !strings.Contains(r, "cidr:192.0.2.10/32") || strings.Contains(r, "0.0.0.0/0") {
		t.Errorf("apiServerCIDRs: the webhook port admits %s", r)
	}
	r = rules("injection.networkPolicy.podCIDRs={10.244.0.0/16,fd00:10:244::/56}")
	if !strings.Contains(r, "except:[10.244.0.0/16]") || !strings.Contains(r, "except:[fd00:10:244::/56]") {
		t.Errorf("podCIDRs are not shut out: %s", r)
	}
	if r := rules("injection.networkPolicy.enabled=false"); r != "" {
		t.Errorf("networkPolicy.enabled=false still renders %s", r)
	}
	if r := rules("injection.enabled=false"); r != "" {
		t.Errorf("injection.enabled=false still renders %s", r)
	}
	if _, err := runErr(helm, "template", "grantkeeper", "charts/grantkeeper", "--set", "injection.networkPolicy.podCIDRs={everywhere}"); err == nil {
		t.Error("a podCIDR that is no CIDR was accepted")
	}
}
