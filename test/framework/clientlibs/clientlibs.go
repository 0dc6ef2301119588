// Package clientlibs provides Google's client libraries in other languages for tests:
// Python's google-auth from Debian (installed with apt-get when root, as localnode installs
// containerd) and Node's google-auth-library from npm (installed into a directory with the
// machine's npm). Each returns "" when ready, or why it cannot be, for the test to skip with
// (or, under CI, fail with).
package clientlibs

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Python is Debian's interpreter: the distribution's python3-google-auth installs for it, not
// for other pythons on PATH.
const Python = "/usr/bin/python3"

// PythonGoogleAuth makes `import google.auth` work for Python, installing Debian's
// python3-google-auth and python3-requests when root. It returns why it could not.
func PythonGoogleAuth(log io.Writer) string {
	if pythonHas() {
		return ""
	}
	if os.Geteuid() != 0 {
		return "python3-google-auth is not installed and installing it needs root (apt-get install python3-google-auth python3-requests)"
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "python3-google-auth is not installed and apt-get is not available to install it"
	}
	fmt.Fprintln(log, "clientlibs: installing python3-google-auth with apt-get")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "--no-install-recommends", "python3-google-auth", "python3-requests"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Sprintf("apt-get %s failed: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	if !pythonHas() {
		return "python3-google-auth installed but " + Python + " cannot import google.auth and requests"
	}
	return ""
}

func pythonHas() bool {
	return exec.Command(Python, "-c", "import google.auth, google.auth.transport.requests, requests").Run() == nil
}

// PythonGoogleAuthVersion is the installed google-auth version, for the test's log.
func PythonGoogleAuthVersion() string {
	out, _ := exec.Command(Python, "-c", "import importlib.metadata; print(importlib.metadata.version('google-auth'))").Output()
	return strings.TrimSpace(string(out))
}

// NodeModule installs an npm package spec (such as google-auth-library@10.9.1) into dir with
// the machine's npm, so that `node` run in dir can require it. It returns why it could not.
func NodeModule(dir, spec string, log io.Writer) string {
	for _, b := range []string{"node", "npm"} {
		if _, err := exec.LookPath(b); err != nil {
			return b + " is not installed (the Node client-library test uses the machine's node and npm)"
		}
	}
	fmt.Fprintf(log, "clientlibs: npm install %s\n", spec)
	cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--no-save", "--loglevel=error", spec)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Sprintf("npm install %s failed: %v: %s", spec, err, out)
	}
	name := spec
	if i := strings.LastIndex(spec, "@"); i > 0 {
		name = spec[:i]
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", name)); err != nil {
		return fmt.Sprintf("npm install %s left no module in %s", spec, dir)
	}
	return ""
}
