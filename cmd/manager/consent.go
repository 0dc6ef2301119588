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
	bindAddress, baseURL, authURL, keySecret string
	ttl                                      time.Duration
}

func (f *consentFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.bindAddress, "consent-bind-address", "0", "Address the consent-link server binds to (for example :8082), with --components=all or endpoints; 0: no consent server. Every replica serves links. With --components=manager, --consent-base-url alone turns minting links on (the endpoints process serves them).")
	fs.StringVar(&f.baseURL, "consent-base-url", "", "External URL people open consent links under (https; http only for loopback). The OAuth redirect URI <base>/callback must be registered on the Web client in the Google Cloud console.")
	fs.StringVar(&f.authURL, "auth-url", googleapi.AuthURL, "OAuth 2.0 authorization endpoint consent links redirect to. Must be https unless the host is loopback.")
	fs.DurationVar(&f.ttl, "consent-link-ttl", consent.DefaultTTL, "How long a consent link stays usable.")
	fs.StringVar(&f.keySecret, "consent-key-secret", consent.KeySecretName, "Secret in --manager-namespace holding the key consent links and states are signed with (key \"key\"). The manager fills it when it is empty (config/ and the chart ship it empty) or creates it when absent; the consent server only reads it, by name. Manager and consent server must name the same Secret.")
}

func (f *consentFlags) enabled() bool { return f.bindAddress != "" && f.bindAddress != "0" }

// setup validates the flags and, when consent links are on, returns the links the
// controller keeps (when this process runs the controllers) and adds the server to the
// manager (when it serves endpoints). With --components=manager, --consent-base-url alone
// turns minting on: the server runs in the endpoints process.
func (f *consentFlags) setup(mgr ctrl.Manager, c components, tokens *tokenclient.Endpoint, managerNamespace string, namespaces []string, ep endpointServing) (*consent.Links, error) {
	serve := c.endpoints() && f.enabled()
	mint := c.controllers() && (f.enabled() || c == componentsManager && f.baseURL != "")
	if !serve && !mint {
		return nil, nil
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	var keys consent.KeySource
	switch {
	case managerNamespace == "" && c == componentsAll:
		// One process mints and serves: a key of its own (links die with it).
		ctrl.Log.WithName("consent").Info("no --manager-namespace: consent links are signed with a key of this process only; set it (or $POD_NAMESPACE) to keep the key in Secret " + f.keySecret)
		keys = consent.ProcessKey{}
	case managerNamespace == "":
		return nil, fmt.Errorf("--manager-namespace (or $POD_NAMESPACE) is required for consent links with --components=%s: the signing key Secret %s is there", c, f.keySecret)
	case mint:
		keys = &consent.SecretKey{Reader: mgr.GetAPIReader(), Writer: mgr.GetClient(), Namespace: managerNamespace, Name: f.keySecret}
	default:
		// The endpoints only read it (their Role: get on this one Secret).
		keys = &consent.SecretKey{Reader: ep.live, Namespace: managerNamespace, Name: f.keySecret}
	}
	links := &consent.Links{
		Store:   consent.Store{Reader: mgr.GetAPIReader(), Writer: mgr.GetClient()},
		BaseURL: f.baseURL,
		TTL:     f.ttl,
		Keys:    keys,
	}
	if serve {
		// The server answers from the grant cache and reads live (and writes) through the
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
		if err := mgr.Add(srv); err != nil {
			return nil, err
		}
	}
	if !mint {
		return nil, nil
	}
	return links, nil
}

// validate checks the flags of an enabled consent server.
func (f *consentFlags) validate() error {
	if f.baseURL == "" {
		return fmt.Errorf("--consent-base-url is required with --consent-bind-address (the external URL people open; <base>/callback is the redirect URI to register)")
	}
	if f.keySecret == "" {
		return fmt.Errorf("--consent-key-secret must name a Secret")
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
