package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/httplimit"
	"github.com/grantkeeper/grantkeeper/internal/inject"
	"github.com/grantkeeper/grantkeeper/internal/webhookcert"
)

// everyReplica runs a cache on every replica: the manager would otherwise start a cache
// added with Add only on the leader.
type everyReplica struct{ cache.Cache }

func (everyReplica) NeedLeaderElection() bool { return false }

// The webhook's RBAC is not generated: config/webhook/role.yaml names the one
// MutatingWebhookConfiguration and the one certificate Secret (resourceNames), for cluster-wide
// and namespaced (--namespaces) installs alike.

// webhookFlags are the injection webhook's flags (issue 17).
type webhookFlags struct {
	enabled     bool
	port        int
	certDir     string
	selfSigned  bool
	certSecret  string
	config      string
	service     string
	sidecar     string
	certTimeout time.Duration
	clientCA    string
}

func bindWebhookFlags(fs *flag.FlagSet) *webhookFlags {
	f := &webhookFlags{}
	// Off by default: the webhook is useless without the Service and the
	// MutatingWebhookConfiguration that config/default and the chart create (and turn it on
	// with); `go run ./cmd/manager` outside a cluster should not need certificates.
	fs.BoolVar(&f.enabled, "enable-injection-webhook", false, "Serve the mutating admission webhook that injects the metadata-server sidecar into Pods annotated "+inject.Annotation+" (needs the webhook Service and MutatingWebhookConfiguration from config/default or the chart). Every replica serves it.")
	fs.IntVar(&f.port, "webhook-port", 9443, "Port of the webhook's HTTPS server.")
	fs.StringVar(&f.certDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "Writable directory (an emptyDir) where the manager copies tls.crt and tls.key from --webhook-cert-secret for the webhook server.")
	fs.BoolVar(&f.selfSigned, "webhook-self-signed", true, "Create and rotate a self-signed CA and serving certificate in --webhook-cert-secret and patch the CA into the MutatingWebhookConfiguration; false when cert-manager (or another tool) writes the Secret and the caBundle.")
	fs.StringVar(&f.certSecret, "webhook-cert-secret", inject.CertSecretName, "Secret, in --manager-namespace, holding the webhook's certificate.")
	fs.StringVar(&f.config, "webhook-configuration-name", inject.ConfigurationName, "MutatingWebhookConfiguration whose caBundle the manager keeps (with --webhook-self-signed).")
	fs.StringVar(&f.service, "webhook-service-name", inject.ServiceName, "Service in front of the webhook: the certificate is for <service>.<namespace>.svc.")
	fs.StringVar(&f.sidecar, "metadata-server-image", os.Getenv("METADATA_SERVER_IMAGE"), "Image of the metadata-server sidecar the webhook injects (default: $METADATA_SERVER_IMAGE, which the manifests set).")
	fs.DurationVar(&f.certTimeout, "webhook-cert-timeout", 10*time.Minute, "With --webhook-self-signed=false: how long to wait for cert-manager to write the certificate Secret before giving up (logged; the manager stays not ready).")
	fs.StringVar(&f.clientCA, "webhook-client-ca-file", "", "PEM file of the CA that signs the API server's client certificate for admission webhooks (its --admission-control-config-file kubeconfig); when set, the webhook answers only callers presenting a certificate it signed.")
	return f
}

// setup adds the webhook to mgr: certificate rotation (unless cert-manager provides it), then,
// once the certificate files are in place, the HTTPS server. The manager reports ready only
// when the server is serving with that certificate.
func (f *webhookFlags) setup(ctx context.Context, mgr ctrl.Manager, namespace string, limits *httplimit.Limiter) error {
	if !f.enabled {
		return nil
	}
	if f.sidecar == "" {
		return errors.New("--enable-injection-webhook needs --metadata-server-image (or $METADATA_SERVER_IMAGE)")
	}
	if namespace == "" {
		return errors.New("--enable-injection-webhook needs --manager-namespace (or $POD_NAMESPACE): the certificate Secret and Service are there")
	}
	log := ctrl.Log.WithName("webhook")
	// Every replica copies the certificate from its Secret into --webhook-cert-dir (an
	// emptyDir), rather than waiting for the kubelet to update a mounted Secret.
	secretKey := types.NamespacedName{Namespace: namespace, Name: f.certSecret}
	configuration := ""
	if f.selfSigned {
		configuration = f.config
	}
	certCache, err := webhookcert.NewCache(mgr.GetConfig(), mgr.GetScheme(), secretKey, configuration)
	if err != nil {
		return fmt.Errorf("webhook certificate cache: %w", err)
	}
	if err := mgr.Add(everyReplica{certCache}); err != nil {
		return err
	}
	if err := mgr.Add(&webhookcert.Syncer{Reader: certCache, Key: secretKey, Dir: f.certDir}); err != nil {
		return err
	}
	certIssued := make(chan struct{})
	if f.selfSigned {
		dns := fmt.Sprintf("%s.%s.svc", f.service, namespace)
		rot := &webhookcert.Rotator{
			Reader: certCache, Writer: mgr.GetClient(),
			Secret: secretKey, Configuration: f.config,
			CAName: "grantkeeper-webhook-ca", DNSNames: []string{dns, dns + ".cluster.local"},
		}
		if err := mgr.Add(rot); err != nil {
			return err
		}
		go func() {
			select {
			case <-rot.Ready():
				close(certIssued)
			case <-ctx.Done():
			}
		}()
	} else {
		close(certIssued) // cert-manager writes the Secret and the caBundle
	}
	certReady := make(chan struct{})
	go func() {
		select {
		case <-certIssued:
		case <-ctx.Done():
			return
		}
		// The Syncer copies the Secret's pair into certDir within a second; with
		// cert-manager, this waits for its Certificate too.
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, f.certTimeout, true, func(context.Context) (bool, error) {
			_, err := os.Stat(filepath.Join(f.certDir, webhookcert.CertName))
			return err == nil, nil
		})
		if err != nil {
			if ctx.Err() == nil {
				log.Error(err, "no webhook certificate appeared; with cert-manager, is its Certificate Ready?", "dir", f.certDir)
			}
			return
		}
		close(certReady)
	}()

	// The manager's cache (every replica runs it): a Pod's admission costs no API request.
	// With --namespaces, grants elsewhere are not cached and the Pod gets the lookup warning.
	reader := mgr.GetClient()
	// HTTP/2 is off, as on the metrics endpoint (rapid-reset CVEs).
	tlsOpts := []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	if f.clientCA != "" {
		pem, err := os.ReadFile(f.clientCA)
		if err != nil {
			return fmt.Errorf("--webhook-client-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--webhook-client-ca-file %s: no PEM certificate in it", f.clientCA)
		}
		tlsOpts = append(tlsOpts, func(c *tls.Config) {
			c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
		})
	}
	srv := webhook.NewServer(webhook.Options{
		Port:    f.port,
		CertDir: f.certDir,
		TLSOpts: tlsOpts,
	})
	srv.Register(inject.Path, limits.WrapInFlight(&webhook.Admission{Handler: &inject.Handler{
		Config: inject.Config{Image: f.sidecar},
		Limit:  limits.Allow,
		GetGrant: func(ctx context.Context, namespace, name string) (*oauthv1alpha1.GoogleOAuthGrant, error) {
			var g oauthv1alpha1.GoogleOAuthGrant
			err := reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &g)
			if apierrors.IsNotFound(err) {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			return &g, nil
		},
	}}))
	var added atomic.Bool
	go func() {
		select {
		case <-certReady:
		case <-ctx.Done():
			return
		}
		// The server reads the certificate files at start and reloads them when they change
		// (a rotation), so it starts only once they exist.
		if err := mgr.Add(srv); err != nil {
			log.Error(err, "starting the webhook server")
			return
		}
		added.Store(true)
		log.Info("webhook serving", "port", f.port, "path", inject.Path)
	}()
	started := srv.StartedChecker()
	return mgr.AddReadyzCheck("webhook", func(req *http.Request) error {
		if !added.Load() {
			return errors.New("the webhook's certificate is not loaded yet")
		}
		return started(req)
	})
}
