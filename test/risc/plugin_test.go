package risc_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/grantkeeper/grantkeeper/internal/risc"
	"github.com/grantkeeper/grantkeeper/test/framework/gobuild"
	"github.com/grantkeeper/grantkeeper/test/framework/k8sbin"
	"github.com/grantkeeper/grantkeeper/test/framework/risctransmitter"
)

// The plugin's `risc register` and `risc verify` against the fake Google: the stream points at
// the manager's receiver, and the verification event Google sends arrives there and is accepted.
func TestPluginRegisterAndVerify(t *testing.T) {
	h := newHarness(t)
	root, err := k8sbin.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(t.TempDir(), "kubectl-grantkeeper")
	if err := gobuild.Build(root, "./cmd/kubectl-grantkeeper", plugin); err != nil {
		t.Fatal(err)
	}
	admin := "risc-admin@p.iam.gserviceaccount.com"
	h.google.AllowRISCAdmin(admin)
	key := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(key, h.google.NewServiceAccountKey(admin).JSON, 0o600); err != nil {
		t.Fatal(err)
	}
	h.google.OnStreamVerify(func(url, state string) error {
		_, err := h.tx.Post(url, h.tx.Sign(risctransmitter.Options{Audience: clientID}, risctransmitter.Event{Type: risc.Verification, Body: map[string]any{"state": state}}))
		return err
	})
	// The aud check needs a grant using the client.
	h.grant("g", nil)
	h.waitReady("g")

	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(plugin, append(args, "--service-account-key", key, "--stream-api", h.google.StreamAPIURL())...).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl grantkeeper %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := run("risc", "register", "--endpoint", h.url)
	if st := h.google.Stream(); st.URL != h.url || len(st.EventsRequired) != len(risc.EventTypes) {
		t.Errorf("stream after register = %+v\n%s", st, out)
	}
	verified := risc.SecurityEvents.WithLabelValues("verification", risc.ResultIgnored)
	before := testutil.ToFloat64(verified)
	run("risc", "verify", "--state", "check-1")
	h.Eventually(10*time.Second, "the verification event counted by the receiver", func() (bool, string) {
		return testutil.ToFloat64(verified) == before+1, ""
	})

	// Bad endpoints are refused before calling Google: an error naming what is wrong, no
	// stream API request, and the stream as it was.
	for endpoint, want := range map[string]string{
		"http://grantkeeper.example.com/risc":   "https",
		"https://grantkeeper.example.com/other": risc.Path,
	} {
		stream, calls := h.google.Stream(), h.google.StreamAPIRequests()
		cmd := exec.Command(plugin, "risc", "register", "--endpoint", endpoint, "--service-account-key", key, "--stream-api", h.google.StreamAPIURL())
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("endpoint %s: exit %v, want a failure naming %q:\n%s", endpoint, err, want, out)
		}
		if n := h.google.StreamAPIRequests() - calls; n != 0 {
			t.Errorf("endpoint %s: the plugin called Google's stream API %d times before refusing it", endpoint, n)
		}
		if got := h.google.Stream(); got.URL != stream.URL {
			t.Errorf("endpoint %s: the stream now delivers to %q, want it unchanged (%q)", endpoint, got.URL, stream.URL)
		}
	}
}
