package imagebuild

import (
	"archive/tar"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// files reads an image back from its archive (as `docker load` or ctr would) and returns its
// flattened file system (path -> header) and the CA bundle's content.
func files(t *testing.T, archive, ref string) (map[string]*tar.Header, []byte) {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(archive, &tag)
	if err != nil {
		t.Fatalf("reading the archive back: %v", err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]*tar.Header{}
	var roots []byte
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(h.Name, "/")] = h
		if "/"+h.Name == CARootsPath {
			roots, _ = io.ReadAll(tr)
		}
	}
	return out, roots
}

func buildTestImage(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "manager")
	if err := os.WriteFile(bin, []byte("\x7fELF not really"), 0o755); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "image.tar")
	if err := Write(archive, Options{Binary: bin, Ref: "grantkeeper.local/manager:test"}); err != nil {
		t.Fatal(err)
	}
	return archive, "grantkeeper.local/manager:test"
}

// TestImageRunsAsNonRootWithoutShell: what Pod Security's restricted level and a hardened
// cluster expect: numeric non-root user, the binary as entrypoint, nothing else to execute.
func TestImageRunsAsNonRootWithoutShell(t *testing.T) {
	archive, ref := buildTestImage(t)
	fs, roots := files(t, archive, ref)
	tag, _ := name.NewTag(ref)
	img, err := tarball.ImageFromPath(archive, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("image user = %q, want 65532:65532 (numeric, so runAsNonRoot can check it)", cf.Config.User)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/manager"}) {
		t.Errorf("entrypoint = %v, want [/manager]", cf.Config.Entrypoint)
	}
	if cf.OS != "linux" {
		t.Errorf("os = %q", cf.OS)
	}
	h := fs["manager"]
	if h == nil || h.Mode&0o111 == 0 || h.Uid != 0 {
		t.Errorf("/manager missing, not executable or not root-owned: %+v", h)
	}
	for p, h := range fs {
		if h.Typeflag == tar.TypeReg && h.Mode&0o111 != 0 && p != "manager" {
			t.Errorf("%s is executable: the image must hold nothing to run but the manager", p)
		}
		if h.Typeflag == tar.TypeSymlink {
			t.Errorf("unexpected symlink %s", p)
		}
	}
	for _, p := range []string{"bin/sh", "bin", "etc/passwd"} {
		if fs[p] != nil {
			t.Errorf("image has %s", p)
		}
	}
	if len(roots) == 0 {
		t.Fatalf("no CA roots at %s", CARootsPath)
	}
}

// TestBuildIsReproducible: one commit gives one image digest, whoever builds it.
func TestBuildIsReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "manager")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	var digests []string
	for range 2 {
		img, err := Build(Options{Binary: bin, Ref: "x:y"})
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d.String())
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of the same binary differ: %v", digests)
	}
}

// The child half of TestCARoots: a process that, like the manager in the image, verifies TLS
// with Go's system roots, which it loads from SSL_CERT_FILE and SSL_CERT_DIR.
func TestMain(m *testing.M) {
	if url := os.Getenv("GK_TLS_PROBE_URL"); url != "" {
		os.Exit(probe(url))
	}
	os.Exit(m.Run())
}

func probe(url string) int {
	pool, err := x509.SystemCertPool()
	if err != nil {
		fmt.Println("system pool:", err)
		return 2
	}
	//nolint:staticcheck // Subjects is fine for a pool loaded from files.
	for _, s := range pool.Subjects() {
		if strings.Contains(string(s), "GTS Root R1") {
			fmt.Println("public roots: GTS Root R1 present")
		}
	}
	resp, err := http.Get(url)
	if err != nil {
		fmt.Println("handshake:", err)
		return 1
	}
	resp.Body.Close()
	fmt.Println("handshake: ok", resp.StatusCode)
	return 0
}

// TestCARoots: the image carries public roots, including the ones Google's token endpoint
// chains to, and a private CA added the documented way (README: mount a PEM file in a
// directory and set SSL_CERT_DIR to it) makes a TLS handshake to a server it signed succeed,
// while the public roots stay trusted.
func TestCARoots(t *testing.T) {
	archive, ref := buildTestImage(t)
	_, roots := files(t, archive, ref)
	n := 0
	for rest := roots; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			t.Fatalf("bundled root does not parse: %v", err)
		}
		n++
	}
	if n < 100 {
		t.Fatalf("only %d CA roots in the image; Mozilla's program has well over 100", n)
	}
	t.Logf("CA roots in the image: %d", n)

	dir := t.TempDir()
	rootsFile := filepath.Join(dir, "ca-certificates.crt")
	if err := os.WriteFile(rootsFile, roots, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	privateCA := filepath.Join(dir, "private-ca")
	if err := os.Mkdir(privateCA, 0o755); err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(privateCA, "ca.crt"), caPEM, 0o644); err != nil {
		t.Fatal(err)
	}

	run := func(env ...string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), append(env, "GK_TLS_PROBE_URL="+srv.URL)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// As in the image: SSL_CERT_FILE points at the bundle (the image sets it).
	out, err := run("SSL_CERT_FILE="+rootsFile, "SSL_CERT_DIR="+privateCA)
	if err != nil || !strings.Contains(out, "handshake: ok") {
		t.Fatalf("with the private CA in SSL_CERT_DIR the handshake failed: %v\n%s", err, out)
	}
	if !strings.Contains(out, "GTS Root R1 present") {
		t.Errorf("adding a private CA dropped the public roots (Google's GTS Root R1 is missing):\n%s", out)
	}
	// Without it the same handshake must fail: otherwise the check above proves nothing.
	out, err = run("SSL_CERT_FILE="+rootsFile, "SSL_CERT_DIR="+filepath.Join(dir, "none"))
	if err == nil || !strings.Contains(out, "certificate signed by unknown authority") {
		t.Fatalf("without the private CA the handshake should fail with an unknown authority: %v\n%s", err, out)
	}
	if !strings.Contains(out, "GTS Root R1 present") {
		t.Errorf("the image's roots lack Google's GTS Root R1:\n%s", out)
	}
}
