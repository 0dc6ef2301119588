// Package webhookcert copies the webhook's serving certificate from its Secret into the
// directory the webhook server reads, on every replica. The manager (or cert-manager) writes
// the Secret; mounting it as a volume instead would leave a replica without a certificate,
// not ready, until the kubelet's next sync of Secret volumes (about a minute in a real
// cluster) after every issue or rotation.
package webhookcert

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// The Secret's keys (kubernetes.io/tls, as cert-manager and the Rotator write them) and
// the file names controller-runtime's webhook server reads.
const (
	CertName = "tls.crt"
	KeyName  = "tls.key"
)

// NewCache is a cache that holds only the one Secret (every replica needs it; the manager's
// own cache holds only derived Secrets) and, when configuration is set, the one
// MutatingWebhookConfiguration the Rotator keeps: each is listed and watched by name, so the
// manager's RBAC names them (resourceNames) and grants nothing else on their kinds.
func NewCache(cfg *rest.Config, scheme *runtime.Scheme, key types.NamespacedName, configuration string) (cache.Cache, error) {
	byObject := map[client.Object]cache.ByObject{
		&corev1.Secret{}: {Field: fields.OneTermEqualSelector("metadata.name", key.Name)},
	}
	if configuration != "" {
		byObject[&admissionregistrationv1.MutatingWebhookConfiguration{}] = cache.ByObject{
			Field: fields.OneTermEqualSelector("metadata.name", configuration),
		}
	}
	return cache.New(cfg, cache.Options{
		Scheme:            scheme,
		DefaultNamespaces: map[string]cache.Config{key.Namespace: {}},
		ByObject:          byObject,
	})
}

// Syncer keeps Dir's tls.crt and tls.key equal to the Secret's. It runs on every replica.
type Syncer struct {
	Reader   SyncingReader // NewCache's
	Key      types.NamespacedName
	Dir      string
	Interval time.Duration // how often the cached Secret is compared; one second is cheap

	written map[string][]byte
}

// NeedLeaderElection: every replica serves the webhook.
func (s *Syncer) NeedLeaderElection() bool { return false }

// Start copies until ctx ends.
func (s *Syncer) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("webhook-cert")
	interval := s.Interval
	if interval <= 0 {
		interval = time.Second
	}
	if !s.Reader.WaitForCacheSync(ctx) {
		return nil // stopping before it synced
	}
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		var secret corev1.Secret
		if err := s.Reader.Get(ctx, s.Key, &secret); err != nil {
			if !apierrors.IsNotFound(err) {
				logger.Error(err, "reading the webhook certificate Secret", "secret", s.Key)
			}
			return
		}
		wrote, err := s.sync(secret.Data)
		if err != nil {
			logger.Error(err, "writing the webhook certificate", "dir", s.Dir)
		} else if wrote {
			logger.Info("webhook certificate written", "secret", s.Key, "dir", s.Dir)
		}
	}, interval)
	return nil
}

func (s *Syncer) sync(data map[string][]byte) (bool, error) {
	if s.written == nil {
		s.written = map[string][]byte{}
	}
	crt, key := data[CertName], data[KeyName]
	if len(crt) == 0 || len(key) == 0 || (bytes.Equal(crt, s.written[CertName]) && bytes.Equal(key, s.written[KeyName])) {
		return false, nil // not issued yet, or nothing new
	}
	if err := Write(s.Dir, crt, key); err != nil {
		return false, err
	}
	s.written[CertName], s.written[KeyName] = crt, key
	return true, nil
}

// Write replaces dir's tls.key, then tls.crt, each through a rename, so a reader never sees
// a partial file. Between the two the pair does not match: controller-runtime's certificate
// watcher then keeps the previous pair until the second rename.
func Write(dir string, crt, key []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{KeyName, key}, {CertName, crt}} {
		tmp, err := os.CreateTemp(dir, "."+f.name+"-*")
		if err != nil {
			return err
		}
		_, werr := tmp.Write(f.data)
		cerr := tmp.Close()
		if werr == nil {
			werr = cerr
		}
		if werr == nil {
			werr = os.Chmod(tmp.Name(), 0o600)
		}
		if werr == nil {
			werr = os.Rename(tmp.Name(), filepath.Join(dir, f.name))
		}
		if werr != nil {
			_ = os.Remove(tmp.Name())
			return fmt.Errorf("%s: %w", f.name, werr)
		}
	}
	return nil
}
