package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/procfs"

	"github.com/grantkeeper/grantkeeper/test/framework/devstack"
	"github.com/grantkeeper/grantkeeper/test/framework/leakcheck"
	"github.com/grantkeeper/grantkeeper/test/framework/localcluster"
)

// TestDemoTwice runs `make demo` twice in the same checkout, as a user who stops the demo and
// starts it again does: first to the end of its walkthrough with DEMO_EXIT=1, then until a
// Ctrl-C (SIGINT to make's process group, as a terminal sends it), after which every process
// and port it started must be gone. The checkout is a copy of this one (without bin/), so the
// test leaves the developer's own bin/demo and demo state alone.
func TestDemoTwice(t *testing.T) {
	checkout := copyCheckout(t)

	first, err := makeDemo(t, checkout, "DEMO_EXIT=1").CombinedOutput()
	if err != nil {
		t.Fatalf("first `DEMO_EXIT=1 make demo` failed: %v\n%s", err, first)
	}
	if !strings.Contains(string(first), "nothing left running") {
		t.Fatalf("first `DEMO_EXIT=1 make demo` did not stop what it started:\n%s", first)
	}

	// The second run, in the same checkout, interrupted with Ctrl-C once the walkthrough ends.
	cmd := makeDemo(t, checkout)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var transcript strings.Builder
	lines := bufio.NewScanner(stdout)
	ready := false
	var children []int
	consentLink, consentErr := "", error(nil)
	apiserver := ""
	for lines.Scan() {
		line := lines.Text()
		transcript.WriteString(line + "\n")
		if strings.Contains(line, "API server https://") {
			apiserver = strings.Fields(strings.SplitN(line, "https://", 2)[1])[0]
			apiserver = strings.TrimSuffix(strings.TrimSuffix(apiserver, ","), "/")
		}
		if m := consentLinkPattern.FindString(line); m != "" {
			consentLink = m // the last one printed: the walkthrough's end
		}
		if strings.Contains(line, "press Ctrl-C") && !ready {
			ready = true
			consentErr = checkConsentLink(consentLink)
			children = descendants(cmd.Process.Pid)
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	out := transcript.String()
	if !ready {
		t.Fatalf("the second `make demo` in the same checkout did not finish its walkthrough (%v):\n%s", err, out)
	}
	if consentErr != nil {
		t.Errorf("the demo's consent link %q does not work: %v", consentLink, consentErr)
	}
	for _, want := range []string{"[1/7]", "[7/7]", "ConsentRequired", "ClientNotAllowed", "condition met", "Revoked=True", "Token has been expired or revoked.", "access_token", "token.json", "nothing left running"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// The demo's fake issues access tokens we cannot list, but all of them start "ya29.";
	// the refresh token and client secret are the sample's.
	demoLog, err := os.ReadFile(filepath.Join(checkout, "bin", "demo-state", "manager.log"))
	if err != nil || len(demoLog) == 0 {
		t.Errorf("no demo manager log to check for leaks: %v", err)
	}
	for where, text := range map[string]string{"demo output": out, "demo manager log": string(demoLog)} {
		if found := leakcheck.Find(text, []string{devstack.SampleRefreshToken, devstack.SampleClientSecret}); len(found) > 0 || strings.Contains(text, "ya29.") {
			t.Errorf("the %s shows a token or the client secret: %v (or an access token: %v)", where, found, strings.Contains(text, "ya29."))
		}
	}
	if len(children) < 4 {
		t.Errorf("expected make to run the demo, and the demo etcd, kube-apiserver, kube-controller-manager and the manager; saw %d descendant processes", len(children))
	}
	for _, pid := range children {
		if alive(pid) {
			t.Errorf("process %d survived the demo's Ctrl-C", pid)
		}
	}
	if apiserver == "" {
		t.Fatalf("no API server address in the demo output:\n%s", out)
	}
	if c, err := net.DialTimeout("tcp", apiserver, time.Second); err == nil {
		c.Close()
		t.Errorf("the demo's API server port %s still accepts connections", apiserver)
	}
}

var consentLinkPattern = regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+/c/default/drive/[A-Z2-7]{26}\.[0-9]+\.[A-Z2-7]{26}`) // id.expiry.signature (issue 28 item 6)

// checkConsentLink: the link the demo prints redirects to the fake Google's consent page.
func checkConsentLink(link string) error {
	if link == "" {
		return fmt.Errorf("no consent link printed")
	}
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(link)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "/auth?") {
		return fmt.Errorf("HTTP %d to %q", resp.StatusCode, loc)
	}
	return nil
}

// copyCheckout copies the repository (the working tree, so uncommitted changes count)
// without bin/ and .git into a temporary directory, as a fresh clone would look.
func copyCheckout(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if name == "bin" || name == ".git" {
			continue
		}
		src, to := filepath.Join(root, name), filepath.Join(dst, name)
		if e.IsDir() {
			err = os.CopyFS(to, os.DirFS(src))
		} else if e.Type().IsRegular() {
			var b []byte
			if b, err = os.ReadFile(src); err == nil {
				err = os.WriteFile(to, b, 0o644)
			}
		}
		if err != nil {
			t.Fatalf("copying the checkout: %v", err)
		}
	}
	return dst
}

// makeDemo is `make demo` in checkout, using the Kubernetes binaries this suite uses.
func makeDemo(t *testing.T, checkout string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("make", "--no-print-directory", "demo", "K8S_BIN="+binDir)
	cmd.Dir = checkout
	// Not the outer make's job server or level: this make stands alone, as a user's would.
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DEMO_EXIT":
		default:
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// descendants lists pid's child processes and theirs.
func descendants(pid int) []int {
	var out []int
	for _, c := range localcluster.ChildPIDs(pid) {
		out = append(out, c)
		out = append(out, descendants(c)...)
	}
	return out
}

// alive: the process exists and is not a zombie awaiting its parent.
func alive(pid int) bool {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return false
	}
	st, err := p.Stat()
	return err == nil && st.State != "Z"
}
