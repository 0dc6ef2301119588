package main

import (
	"flag"
	"fmt"
	"net/url"
	"time"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/grantkeeper/grantkeeper/internal/consent"
	"github.com/grantkeeper/grantkeeper/internal/googleapi"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
)

// consentFlags are the consent-link flags (issue 15).
type consentFlags struct {
	bindAddress, baseURL, authURL string
	ttl                           time.Duration
}

func (f *consentFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.bindAddress, "consent-bind-address", "0", "Address the consent-link server binds to (for example :8082); 0 disables consent links. Every replica serves them.")
	fs.StringVar(&f.baseURL, "consent-base-url", "", "External URL people open consent links under (https; http only for loopback). The OAuth redirect URI <base>/callback must be registered on the Web client in the Google Cloud console.")
	fs.StringVar(&f.authURL, "auth-url", googleapi.AuthURL, "OAuth 2.0 authorization endpoint consent links redirect to. Must be https unless the host is loopback.")
	fs.DurationVar(&f.ttl, "consent-link-ttl", consent.DefaultTTL, "How long a consent link stays usable.")
}

func (f *consentFlags) enabled() bool { return f.bindAddress != "" && f.bindAddress != "0" }

// setup validates the flags and, when consent links are on, returns the links the
// controller keeps and adds the server to the manager.
func (f *consentFlags) setup(mgr ctrl.Manager, tokens *tokenclient.Endpoint, managerNamespace string, namespaces []string, ep endpointServing) (*consent.Links, error) {
	if !f.enabled() {
		return nil, nil
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	links := &consent.Links{
		Store:   consent.Store{Reader: mgr.GetAPIReader(), Writer: mgr.GetClient()},
		BaseURL: f.baseURL,
		TTL:     f.ttl,
	}
	// The server answers from the manager's cache and reads live (and writes) through the
	// endpoints' low-QPS client, behind a per-client limit.
	serverLinks := *links
	serverLinks.Store = consent.Store{Reader: ep.live, Writer: ep.live}
	srv := &consent.Server{
		Addr:   f.bindAddress,
		Reader: ep.live, Client: ep.live, Cache: mgr.GetClient(), Limit: ep.limit,
		Recorder: mgr.GetEventRecorder("grantkeeper-consent"),
		Tokens:   tokens, AuthURL: f.authURL, Links: &serverLinks, ManagerNamespace: managerNamespace, Namespaces: namespaces,
		Clock: clock.RealClock{}, Log: ctrl.Log.WithName("consent"),
	}
	return links, mgr.Add(srv)
}

// validate checks the flags of an enabled consent server.
func (f *consentFlags) validate() error {
	if f.baseURL == "" {
		return fmt.Errorf("--consent-base-url is required with --consent-bind-address (the external URL people open; <base>/callback is the redirect URI to register)")
	}
	for _, c := range []struct{ name, url string }{{"--consent-base-url", f.baseURL}, {"--auth-url", f.authURL}} {
		if err := tokenclient.ValidateURL(c.url); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	if u, err := url.Parse(f.baseURL); err == nil && (u.RawQuery != "" || u.Fragment != "" || u.User != nil) {
		return fmt.Errorf("--consent-base-url %q: no query, fragment or user info (Google refuses such redirect URIs)", f.baseURL)
	}
	if f.ttl <= 0 {
		return fmt.Errorf("--consent-link-ttl must be positive")
	}
	return nil
}
