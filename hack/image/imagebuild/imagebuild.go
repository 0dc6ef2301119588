// Package imagebuild builds grantkeeper's container images without a Docker engine: a static
// Go binary on an empty base, run as UID 65532, with public CA roots, written as a
// docker-archive tarball (what `ctr images import` and `docker load` read) by
// go-containerregistry. `make image` and the local-node tests use it alike.
package imagebuild

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// NonRootUser is the user the images run as (distroless's "nonroot"). It is numeric: the
// image has no /etc/passwd, and Kubernetes' runAsNonRoot can only check a numeric user.
const NonRootUser = "65532:65532"

// CARootsPath is where the public CA roots go: the first file Go's crypto/x509 reads on
// Linux, and the path distroless images use, so the Dockerfile's image behaves the same.
const CARootsPath = "/etc/ssl/certs/ca-certificates.crt"

// Build settings of the binary. The Dockerfile must build with the same ones: a test
// compares its `go build` line with these. They make builds reproducible: no cgo, no
// file-system paths (-trimpath), no VCS stamp (a dirty tree would change it), and no
// symbol tables; Go's build ID is a hash of the inputs, so one commit gives one binary.
var (
	BuildEnv   = []string{"CGO_ENABLED=0"}
	BuildFlags = []string{"-trimpath", "-buildvcs=false", "-ldflags=-s -w"}
)

// VersionVar is the variable `--version` prints (internal/version), set with -X.
const VersionVar = "github.com/grantkeeper/grantkeeper/internal/version.Version"

// Target is one binary to cross-compile.
type Target struct {
	Dir      string // the module's directory
	Pkg      string // e.g. ./cmd/manager
	Out      string // the binary to write
	OS, Arch string // GOOS and GOARCH
	Version  string // written into internal/version.Version; empty leaves "dev"
}

// GoBuild builds pkg (e.g. ./cmd/manager) in the module at dir as a static linux binary
// for this machine's architecture.
func GoBuild(dir, pkg, out string) error {
	return Compile(Target{Dir: dir, Pkg: pkg, Out: out, OS: "linux", Arch: runtime.GOARCH})
}

// Compile cross-compiles t with BuildEnv and BuildFlags.
func Compile(t Target) error {
	args := []string{"build"}
	for _, f := range BuildFlags {
		if f == "-ldflags=-s -w" && t.Version != "" {
			f += " -X " + VersionVar + "=" + t.Version
		}
		args = append(args, f)
	}
	args = append(args, "-o", t.Out, t.Pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = t.Dir
	cmd.Env = append(append(os.Environ(), BuildEnv...), "GOOS="+t.OS, "GOARCH="+t.Arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s/%s: %v: %s", t.Pkg, t.OS, t.Arch, err, out)
	}
	return nil
}

// Options describe one image.
type Options struct {
	Binary string // a static linux binary; it becomes /<base name of Binary>, the entrypoint
	Ref    string // the image reference written into the archive, e.g. grantkeeper:latest
	Env    []string
	Arch   string // the binary's GOARCH; default this machine's
	// OCI gives the image OCI media types (what an OCI image index holds) instead of
	// Docker's (what a docker-archive holds).
	OCI bool
}

// Build returns the image: one layer with the binary, the CA roots and empty system
// folders (mount points for /proc, /sys, /dev and a /tmp), no shell and no passwd file.
func Build(o Options) (v1.Image, error) {
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, err
	}
	roots, _, err := CARootsPEM()
	if err != nil {
		return nil, err
	}
	entry := "/" + path.Base(o.Binary)
	layerTar, err := layer([]file{
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: roots},
		{name: entry[1:], mode: 0o755, data: bin},
	})
	if err != nil {
		return nil, err
	}
	layerType, base := types.DockerLayer, empty.Image
	if o.OCI {
		layerType = types.OCILayer
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(layerType))
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(base, l)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", o.Arch
	if cf.Architecture == "" {
		cf.Architecture = runtime.GOARCH
	}
	cf.Config.Entrypoint = []string{entry}
	cf.Config.User = NonRootUser
	cf.Config.WorkingDir = "/"
	cf.Config.Env = append([]string{"PATH=/", "SSL_CERT_FILE=" + CARootsPath}, o.Env...)
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()} // reproducible: same inputs, same digest
	return mutate.ConfigFile(img, cf)
}

// Write builds the image and writes it as a docker-archive tarball to out.
func Write(out string, o Options) error {
	ref, err := name.NewTag(o.Ref)
	if err != nil {
		return fmt.Errorf("image reference %q: %w", o.Ref, err)
	}
	img, err := Build(o)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(out, ref, img)
}

// WriteIndex builds one image per Options (each with its Arch) and writes them as one OCI
// image index to an OCI image layout at dir, which `crane push DIR REF`, `skopeo copy
// --all oci:DIR` and `oras cp --from-oci-layout` push as a multi-arch image. The index is
// annotated with ref (org.opencontainers.image.ref.name, the tag). Same binaries, same
// digests: the layers have no timestamps and the config a fixed creation time.
func WriteIndex(dir, ref string, images []Options) (v1.Hash, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, o := range images {
		o.OCI = true
		img, err := Build(o)
		if err != nil {
			return v1.Hash{}, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: o.Arch}},
		})
	}
	if err := os.RemoveAll(dir); err != nil {
		return v1.Hash{}, err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
		return v1.Hash{}, err
	}
	return idx.Digest()
}

// CARootsPEM is the public CA roots the images carry, as PEM, and how many there are. They
// come from golang.org/x/crypto/x509roots/fallback (Mozilla's root program, pinned in
// go.sum) rather than from the build machine, so every build of one commit carries the
// same roots. Roots that Mozilla trusts only with a constraint (e.g. distrusted for
// certificates issued after a date) are left out: a PEM file cannot carry the constraint.
func CARootsPEM() ([]byte, int, error) {
	var buf bytes.Buffer
	n := 0
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		if _, err := x509.ParseCertificate(r.Certificate); err != nil {
			return nil, 0, fmt.Errorf("CA root bundle: %w", err)
		}
		if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate}); err != nil {
			return nil, 0, err
		}
		n++
	}
	return buf.Bytes(), n, nil
}

type file struct {
	name string
	mode int64
	data []byte
}

// layer is the tar stream of one image layer: root-owned, zero timestamps.
func layer(files []file) ([]byte, error) {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	dirs := []struct {
		name string
		mode int64
	}{{"dev/", 0o755}, {"etc/", 0o755}, {"etc/ssl/", 0o755}, {"etc/ssl/certs/", 0o755}, {"proc/", 0o555}, {"sys/", 0o555}, {"tmp/", 0o1777}, {"var/", 0o755}, {"var/run/", 0o755}}
	for _, d := range dirs {
		if err := w.WriteHeader(&tar.Header{Name: d.name, Typeflag: tar.TypeDir, Mode: d.mode, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		if err := w.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: f.mode, Size: int64(len(f.data)), Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
