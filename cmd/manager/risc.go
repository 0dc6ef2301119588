package main

import (
	"flag"
	"fmt"
	"time"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/grantkeeper/grantkeeper/controllers"
	"github.com/grantkeeper/grantkeeper/internal/risc"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
)

// riscFlags configure the Cross-Account Protection receiver (issue 16).
type riscFlags struct {
	bindAddress, configurationURL string
}

func (f *riscFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.bindAddress, "risc-bind-address", "0", "Address the Cross-Account Protection (RISC) security-event receiver binds to (path /risc, plain HTTP: terminate TLS at the Ingress); 0 disables it. With --components=all or endpoints (the manager, --components=manager, does not serve it). Every replica serves it.")
	fs.StringVar(&f.configurationURL, "risc-configuration-url", risc.DefaultConfigurationURL, "Google's RISC configuration document (issuer and jwks_uri). Must be https unless the host is loopback.")
}

// setup adds the receiver to the manager and returns its refresh-token index, for the
// reconciler to fill when it runs in this process (--components=all); nil when off. Alone
// (--components=endpoints) the index fills from live reads of the grants' Secrets when an
// event names a token it does not know.
func (f *riscFlags) setup(mgr ctrl.Manager, clk clock.PassiveClock, namespacesOnly bool, ep endpointServing) (*controllers.TokenIndex, error) {
	if f.bindAddress == "" || f.bindAddress == "0" {
		return nil, nil
	}
	if err := tokenclient.ValidateURL(f.configurationURL); err != nil {
		return nil, fmt.Errorf("--risc-configuration-url: %w", err)
	}
	index := controllers.NewTokenIndex()
	// Reads grants from the cache; Secrets live (by name) and writes on the endpoints' low-QPS client.
	sink := &controllers.SecurityEvents{Client: ep.cached, APIReader: ep.live, Recorder: mgr.GetEventRecorder("grantkeeper"),
		Index: index, Clock: clk, NamespacesOnly: namespacesOnly}
	if err := sink.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	h := &risc.Handler{
		Verifier: &risc.Verifier{ConfigurationURL: f.configurationURL, HTTP: tokenclient.NewHTTPClient(10 * time.Second)},
		Sink:     sink,
		Log:      ctrl.Log.WithName("risc"),
	}
	return index, controllers.AddReceiver(mgr, f.bindAddress, ep.limit(h))
}
