package webhookcert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Rotator issues the webhook's self-signed CA and serving certificate into the Secret, renews
// them before they expire, and keeps the CA in every webhook of the configuration's caBundle.
// Every replica runs one. It reads through NewCache's cache (the one Secret and the one
// configuration, by name), so its RBAC names both objects.
//
// Hand-written rather than open-policy-agent/cert-controller (used before issue 32): that
// library lists and watches every MutatingWebhookConfiguration and every Secret of its
// namespace, which a namespaced install's by-name RBAC forbids, and its start-up runnable and
// its controller both wrote the empty Secret at once, logging errors on every fresh install.
//
// Replicas starting together each find the Secret empty and write; writes carry the
// resourceVersion read, so one wins and the others get a Conflict, which is expected (logged
// at V(1)): they read the winner's pair on the next pass and use it.
type Rotator struct {
	Reader        SyncingReader // NewCache's
	Writer        client.Writer
	Secret        types.NamespacedName
	Configuration string   // the MutatingWebhookConfiguration's name
	CAName        string   // the CA's common name
	DNSNames      []string // the serving certificate's names; the first is its common name
	Clock         clock.PassiveClock
	Interval      time.Duration // between passes; one second is cheap (cache reads)

	readyOnce sync.Once
	ready     chan struct{}
	// staleRV is the Secret's resourceVersion our last write replaced: until the cache has
	// moved past it, the cached Secret is older than what we wrote.
	staleRV string
	// reported holds the last problem logged at error level, so it is logged once.
	reported string
}

// SyncingReader is a cache: read once it has synced.
type SyncingReader interface {
	client.Reader
	WaitForCacheSync(ctx context.Context) bool
}

// NeedLeaderElection: every replica serves the webhook and needs the certificate.
func (r *Rotator) NeedLeaderElection() bool { return false }

// Ready is closed once the Secret holds a valid pair and the configuration's caBundle is its CA.
func (r *Rotator) Ready() <-chan struct{} {
	r.readyOnce.Do(func() { r.ready = make(chan struct{}) })
	return r.ready
}

// Start makes a pass every Interval until ctx ends.
func (r *Rotator) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("webhook-cert")
	r.Ready()
	ready := r.ready
	interval := r.Interval
	if interval <= 0 {
		interval = time.Second
	}
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if !r.Reader.WaitForCacheSync(ctx) {
		return nil // stopping before it synced
	}
	closed := false
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		done, err := r.pass(ctx, logger)
		switch {
		case apierrors.IsConflict(err):
			logger.V(1).Info("another writer changed the object first; reading it again", "reason", err.Error())
		case err != nil && err.Error() != r.reported:
			r.reported = err.Error()
			logger.Error(err, "keeping the webhook certificate", "secret", r.Secret, "configuration", r.Configuration)
		case err == nil:
			r.reported = ""
		}
		if done && !closed {
			closed = true
			close(ready)
			logger.Info("webhook certificate issued and its CA in the webhook configuration", "secret", r.Secret, "configuration", r.Configuration)
		}
	}, interval)
	return nil
}

// pass issues what the Secret lacks, then puts its CA into the configuration. It reports
// whether both are in place.
func (r *Rotator) pass(ctx context.Context, logger interface{ Info(string, ...any) }) (bool, error) {
	var s corev1.Secret
	if err := r.Reader.Get(ctx, r.Secret, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return false, fmt.Errorf("the Secret %s does not exist: the chart and config/webhook ship it empty for the manager to fill; apply them again", r.Secret)
		}
		return false, err
	}
	if r.staleRV != "" && s.ResourceVersion == r.staleRV {
		return false, nil // the cache has not seen our write yet
	}
	r.staleRV = ""
	now := r.Clock.Now()
	if ca, cert := Check(s.Data, r.DNSNames, now); ca || cert {
		p, err := Issue(s.Data, ca, r.CAName, r.DNSNames, now)
		if err != nil {
			return false, err
		}
		updated := s.DeepCopy()
		updated.Data = p
		if err := r.Writer.Update(ctx, updated); err != nil {
			return false, err
		}
		r.staleRV = s.ResourceVersion
		logger.Info("webhook certificate written", "secret", r.Secret, "newCA", ca)
		return false, nil
	}
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := r.Reader.Get(ctx, types.NamespacedName{Name: r.Configuration}, &mwc); err != nil {
		if apierrors.IsNotFound(err) {
			return false, fmt.Errorf("the MutatingWebhookConfiguration %s does not exist: apply the chart or config/default again, or set --webhook-configuration-name", r.Configuration)
		}
		return false, err
	}
	if len(mwc.Webhooks) == 0 {
		return false, errors.New("the MutatingWebhookConfiguration " + r.Configuration + " has no webhooks")
	}
	want := s.Data[CAName]
	changed := false
	for i := range mwc.Webhooks {
		if !bytes.Equal(mwc.Webhooks[i].ClientConfig.CABundle, want) {
			mwc.Webhooks[i].ClientConfig.CABundle = want
			changed = true
		}
	}
	if !changed {
		return true, nil
	}
	if err := r.Writer.Update(ctx, &mwc); err != nil {
		return false, err
	}
	logger.Info("CA written into the webhook configuration", "configuration", r.Configuration)
	return false, nil // done once the cache shows it
}
