package helm

import (
	"fmt"
	"strings"
	"testing"
)

// The security-event receiver (issue 16): off by default; on, the flag, the port, a Service,
// and with the Ingress, TLS required.
func TestRISCValues(t *testing.T) {
	if h := template(t); h["Service/grantkeeper-system/grantkeeper-risc"] != nil || h["Ingress/grantkeeper-system/grantkeeper-risc"] != nil {
		t.Error("the receiver is exposed by default")
	}
	h := template(t, "--set", "risc.enabled=true,risc.ingress.enabled=true,risc.ingress.host=gk.example.com,risc.ingress.tls.secretName=gk-tls,risc.ingress.className=nginx")
	// The receiver runs in the endpoints Deployment (issue 28 item 6).
	d := h["Deployment/grantkeeper-system/grantkeeper-endpoints"]
	if d == nil {
		t.Fatal("no endpoints Deployment with the receiver on")
	}
	if m := fmt.Sprint(field(t, h["Deployment/grantkeeper-system/grantkeeper-controller-manager"], "spec", "template", "spec", "containers")); strings.Contains(m, "--risc-bind-address") || !strings.Contains(m, "--components=manager") {
		t.Errorf("the manager's container %s serves the receiver", m)
	}
	c := field(t, d, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
	if args := fmt.Sprint(c["args"]); !strings.Contains(args, "--risc-bind-address=:8083") || strings.Contains(args, "--risc-configuration-url") {
		t.Errorf("args %s: want --risc-bind-address=:8083 and the default configuration URL", args)
	}
	if ports := fmt.Sprint(c["ports"]); !strings.Contains(ports, "risc") || !strings.Contains(ports, "8083") {
		t.Errorf("ports %s lack the receiver", ports)
	}
	if h["Service/grantkeeper-system/grantkeeper-risc"] == nil {
		t.Fatal("no receiver Service")
	}
	ing := h["Ingress/grantkeeper-system/grantkeeper-risc"]
	if ing == nil {
		t.Fatal("no receiver Ingress")
	}
	if tls := fmt.Sprint(field(t, ing, "spec", "tls")); !strings.Contains(tls, "gk-tls") || !strings.Contains(tls, "gk.example.com") {
		t.Errorf("ingress tls %s", tls)
	}
	if rules := fmt.Sprint(field(t, ing, "spec", "rules")); !strings.Contains(rules, "/risc") {
		t.Errorf("ingress rules %s lack /risc", rules)
	}
	for _, set := range []string{"risc.enabled=true,risc.ingress.enabled=true,risc.ingress.host=gk.example.com", "risc.configurationURL=http://example.com/x"} {
		if _, err := runErr(helm, "template", "grantkeeper", "charts/grantkeeper", "--set", set); err == nil {
			t.Errorf("--set %s was accepted (Google delivers only over https)", set)
		}
	}
}

// Every endpoint, on at once, gets its own container port in its Deployment: a clash would
// crash the process at start with "address already in use". The manager serves metrics and
// the webhook; the endpoints Deployment the consent server and the receiver.
func TestEndpointsHaveDistinctPorts(t *testing.T) {
	h := template(t, "--set", "risc.enabled=true,consent.enabled=true,consent.baseURL=https://consent.example.com,injection.enabled=true,metrics.enabled=true")
	for d, want := range map[string]string{"controller-manager": "[https webhook]", "endpoints": "[consent risc]"} {
		c := field(t, h["Deployment/grantkeeper-system/grantkeeper-"+d], "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
		seen := map[string]string{}
		var names []string
		for _, p := range c["ports"].([]any) {
			port := p.(map[string]any)
			n, name := fmt.Sprint(port["containerPort"]), fmt.Sprint(port["name"])
			if other, dup := seen[n]; dup {
				t.Errorf("%s: ports %s and %s are both %s", d, other, name, n)
			}
			seen[n] = name
			names = append(names, name)
		}
		if got := fmt.Sprint(names); got != want {
			t.Errorf("%s ports %s, want %s", d, got, want)
		}
	}
}
