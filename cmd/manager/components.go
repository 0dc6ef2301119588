package main

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// components is --components: which parts of grantkeeper this process runs (issue 28 item
// 6). The consent server and the security-event receiver answer the Internet; run apart
// (endpoints), they hold an identity that may not list or watch Secrets nor touch the
// webhook configuration, and the manager's identity is never exposed to them.
type components string

const (
	// componentsAll: one process runs everything enabled (the controllers, the webhook,
	// metrics, and the consent server and receiver when their bind addresses are set).
	componentsAll components = "all"
	// componentsManager: everything but the consent server and the receiver. It still mints
	// consent links (--consent-base-url set) for the endpoints process to serve.
	componentsManager components = "manager"
	// componentsEndpoints: only the consent server and the receiver; no controllers, no
	// webhook, no leader election, and no cache of Secrets.
	componentsEndpoints components = "endpoints"
)

const componentsHelp = "What this process runs: all (the controllers, the injection webhook and metrics, and the consent server and security-event receiver when their bind addresses are set), " +
	"manager (all but the consent server and the receiver; it mints consent links when --consent-base-url is set), " +
	"or endpoints (only the consent server and the security-event receiver, as their own Deployment and ServiceAccount: no controllers, webhook or leader election, and Secrets are only read by name, never listed or watched). " +
	"The chart and config/ run manager and endpoints apart whenever consent links or security events are on."

func parseComponents(s string) (components, error) {
	switch c := components(s); c {
	case componentsAll, componentsManager, componentsEndpoints:
		return c, nil
	}
	return "", fmt.Errorf("--components=%q: want all, manager or endpoints", s)
}

// controllers: the process runs the controllers (and the webhook, leader election).
func (c components) controllers() bool { return c != componentsEndpoints }

// endpoints: the process may serve the consent server and the receiver.
func (c components) endpoints() bool { return c != componentsManager }

// check refuses flags for parts this process does not run, naming where they belong.
func (c components) check(consentBind, riscBind string, webhook bool) error {
	on := func(addr string) bool { return addr != "" && addr != "0" }
	switch c {
	case componentsManager:
		if on(consentBind) {
			return fmt.Errorf("--consent-bind-address with --components=manager: the consent server runs with --components=endpoints (the manager needs only --consent-base-url to mint links)")
		}
		if on(riscBind) {
			return fmt.Errorf("--risc-bind-address with --components=manager: the security-event receiver runs with --components=endpoints")
		}
	case componentsEndpoints:
		if webhook {
			return fmt.Errorf("--enable-injection-webhook with --components=endpoints: the webhook runs with --components=manager (or all)")
		}
		if !on(consentBind) && !on(riscBind) {
			return fmt.Errorf("--components=endpoints serves nothing: set --consent-bind-address or --risc-bind-address")
		}
	}
	return nil
}

// noGrants lists no grants (and reads everything else through Reader): the metrics of
// --components=endpoints leave the per-grant series to the manager.
type noGrants struct{ client.Reader }

func (n noGrants) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if _, ok := list.(*oauthv1alpha1.GoogleOAuthGrantList); ok {
		return nil
	}
	return n.Reader.List(ctx, list, opts...)
}
