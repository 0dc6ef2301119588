package main

import (
	"flag"
	"fmt"
	"time"

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
	fs.StringVar(&f.bindAddress, "risc-bind-address", "0", "Address the Cross-Account Protection (RISC) security-event receiver binds to (path /risc, plain HTTP: terminate TLS at the Ingress); 0 disables it. Every replica serves it.")
	fs.StringVar(&f.configurationURL, "risc-configuration-url", risc.DefaultConfigurationURL, "Google's RISC configuration document (issuer and jwks_uri). Must be https unless the host is loopback.")
}

// setup adds the receiver to the manager and lets the reconciler index refresh tokens; nothing when off.
func (f *riscFlags) setup(mgr ctrl.Manager, r *controllers.GoogleOAuthGrantReconciler, namespacesOnly bool, ep endpointServing) error {
	if f.bindAddress == "" || f.bindAddress == "0" {
		return nil
	}
	if err := tokenclient.ValidateURL(f.configurationURL); err != nil {
		return fmt.Errorf("--risc-configuration-url: %w", err)
	}
	r.TokenIndex = controllers.NewTokenIndex()
	// Reads from the cache; live reads and writes on the endpoints' low-QPS client.
	sink := &controllers.SecurityEvents{Client: ep.cached, APIReader: ep.live, Recorder: mgr.GetEventRecorder("grantkeeper"),
		Index: r.TokenIndex, Clock: r.Clock, NamespacesOnly: namespacesOnly}
	if err := sink.SetupWithManager(mgr); err != nil {
		return err
	}
	h := &risc.Handler{
		Verifier: &risc.Verifier{ConfigurationURL: f.configurationURL, HTTP: tokenclient.NewHTTPClient(10 * time.Second)},
		Sink:     sink,
		Log:      ctrl.Log.WithName("risc"),
	}
	return controllers.AddReceiver(mgr, f.bindAddress, ep.limit(h))
}
