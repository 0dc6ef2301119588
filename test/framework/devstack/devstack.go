// Package devstack brings up everything a user needs to try grantkeeper locally: a real
// control plane (localcluster), grantkeeper's CRD and RBAC applied with kubectl, a fake
// Google token server that knows the credentials in config/samples, and the manager as a
// local process authenticated as its ServiceAccount. The demo and the e2e suite share it.
package devstack

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
	"github.com/grantkeeper/grantkeeper/test/framework/fixtures"
	"github.com/grantkeeper/grantkeeper/test/framework/listencheck"
	"github.com/grantkeeper/grantkeeper/test/framework/localcluster"
)

// The placeholder credentials in config/samples/oauth_v1alpha1_googleoauthgrant.yaml, which
// the fake token server accepts so the sample works unchanged.
const (
	SampleClientID     = "123456789012-example.apps.googleusercontent.com"
	SampleClientSecret = "GOCSPX-replace-me"
	SampleRefreshToken = "1//replace-me"
	SampleScope        = "https://www.googleapis.com/auth/analytics.readonly"
)

// SampleClient is the sample's OAuth client, for fixtures.
var SampleClient = fixtures.Client{ID: SampleClientID, Secret: SampleClientSecret}

// Options configure Up.
type Options struct {
	Root       string // repository root
	Dir        string // kubeconfigs and logs go here
	BinDir     string // Kubernetes binaries (bin/k8s/<version>)
	ManagerBin string // the built manager binary
	// TokenLifetime of tokens the fake issues (default one hour).
	TokenLifetime time.Duration
}

// Stack is a running local grantkeeper.
type Stack struct {
	*localcluster.Cluster
	Google     *fakegoogle.Server
	ManagerLog string

	opts    Options
	manager *exec.Cmd
	exited  chan struct{} // closed when the manager process ends
	logFile *os.File
	kcmLog  *os.File
}

// Up starts the stack. On error everything started so far is stopped.
func Up(o Options) (_ *Stack, err error) {
	s := &Stack{opts: o, ManagerLog: filepath.Join(o.Dir, "manager.log")}
	defer func() {
		if err != nil {
			s.Down()
		}
	}()
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	if s.kcmLog, err = os.Create(filepath.Join(o.Dir, "kube-controller-manager.log")); err != nil {
		return nil, err
	}
	if s.Cluster, err = localcluster.Start(o.BinDir, o.Dir); err != nil {
		return nil, err
	}
	if _, err := s.Run("apply", "--server-side", "-k", filepath.Join(o.Root, "config", "local")); err != nil {
		return nil, err
	}
	if _, err := s.Run("wait", "--for=condition=Established", "--timeout=60s", "crd/googleoauthgrants.oauth.grantkeeper.dev"); err != nil {
		return nil, err
	}
	if err := s.StartControllerManager(s.kcmLog); err != nil {
		return nil, err
	}

	s.Google = fakegoogle.New()
	if o.TokenLifetime > 0 {
		s.Google.SetLifetime(o.TokenLifetime)
	}
	s.Google.AddClient(SampleClientID, SampleClientSecret)
	s.Google.AddRefreshToken(SampleRefreshToken, SampleClientID, SampleScope)
	if err := s.Google.Start(); err != nil {
		return nil, err
	}
	return s, s.StartManager()
}

// StartManager starts the manager process, authenticated as its ServiceAccount; extra flags
// follow the defaults (and override them).
func (s *Stack) StartManager(extra ...string) error {
	f, err := os.OpenFile(s.ManagerLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	s.logFile = f
	s.manager = exec.Command(s.opts.ManagerBin,
		"--kubeconfig="+s.ManagerKubeconfig,
		"--token-url="+s.Google.TokenURL(), "--revoke-url="+s.Google.RevokeURL(),
		"--leader-elect", "--leader-election-namespace="+localcluster.ManagerNamespace,
		"--metrics-bind-address=0", "--health-probe-bind-address=0")
	s.manager.Args = append(s.manager.Args, extra...)
	s.manager.Stdout, s.manager.Stderr = f, f
	s.manager.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.manager.Start(); err != nil {
		return fmt.Errorf("starting the manager: %w", err)
	}
	s.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(s.manager, s.exited)
	return nil
}

// StartManagerListening starts the manager with --flag=127.0.0.1:PORT for a free PORT and
// waits until it listens there. A port picked free can be taken by another process before
// the manager binds it; the manager then exits, and starts again on another port. It
// returns the address.
func (s *Stack) StartManagerListening(flag string, extra ...string) (string, error) {
	for attempt := 1; ; attempt++ {
		port, err := listencheck.FreePort()
		if err != nil {
			return "", err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if err := s.StartManager(append([]string{"--" + flag + "=" + addr}, extra...)...); err != nil {
			return "", err
		}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			select {
			case <-s.exited:
				s.stopManager(syscall.SIGTERM) // reaps and closes the log
				if attempt == 5 {
					return "", fmt.Errorf("the manager exited before listening on %s (5 attempts; see %s)", addr, s.ManagerLog)
				}
			default:
			}
			if s.manager == nil {
				break // exited: another port
			}
			if listencheck.ListensOn(s.manager.Process.Pid, port) {
				return addr, nil
			}
			if time.Now().After(deadline) {
				return "", fmt.Errorf("the manager did not listen on %s within 2 minutes (see %s)", addr, s.ManagerLog)
			}
			<-time.After(100 * time.Millisecond) // poll interval
		}
	}
}

// StopManager stops the manager process (SIGTERM, as Kubernetes would).
func (s *Stack) StopManager() { s.stopManager(syscall.SIGTERM) }

// KillManager kills the manager process with SIGKILL: no cleanup, no lease release.
func (s *Stack) KillManager() { s.stopManager(syscall.SIGKILL) }

func (s *Stack) stopManager(sig syscall.Signal) {
	if s.manager != nil && s.manager.Process != nil {
		_ = s.manager.Process.Signal(sig)
		<-s.exited
		s.manager = nil
	}
	if s.logFile != nil {
		_ = s.logFile.Close()
		s.logFile = nil
	}
}

// Down stops everything Up started.
func (s *Stack) Down() {
	s.StopManager()
	if s.Google != nil {
		s.Google.Close()
	}
	if s.Cluster != nil {
		s.Cluster.Stop()
	}
	if s.kcmLog != nil {
		_ = s.kcmLog.Close()
	}
}

// Run runs kubectl as cluster admin and returns its standard output; the error carries
// standard error.
func (s *Stack) Run(args ...string) (string, error) {
	cmd := s.Kubectl(args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// RunInput runs kubectl as cluster admin with stdin as its standard input, returning its
// combined output.
func (s *Stack) RunInput(stdin string, args ...string) (string, error) {
	cmd := s.Kubectl(args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// MustRun is Run for tests: it fails the test on error.
func (s *Stack) MustRun(t testing.TB, args ...string) string {
	t.Helper()
	out, err := s.Run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// RunTo runs kubectl as cluster admin with its output going to w.
func (s *Stack) RunTo(w io.Writer, args ...string) error {
	cmd := s.Kubectl(args...)
	cmd.Stdout, cmd.Stderr = w, w
	return cmd.Run()
}
