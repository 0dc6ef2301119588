package imagebuild

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestWriteIndexIsMultiArchAndReproducible: one OCI image index per image with an OCI
// image per architecture, read back from the layout as a registry tool would; written
// twice from the same binaries, the same digest.
func TestWriteIndexIsMultiArchAndReproducible(t *testing.T) {
	dir := t.TempDir()
	var opts []Options
	for _, arch := range []string{"amd64", "arm64"} {
		bin := filepath.Join(dir, arch, "manager")
		if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, []byte("\x7fELF for "+arch), 0o755); err != nil {
			t.Fatal(err)
		}
		opts = append(opts, Options{Binary: bin, Arch: arch})
	}
	first, err := WriteIndex(filepath.Join(dir, "a"), "v1.2.3", opts)
	if err != nil {
		t.Fatal(err)
	}
	second, err := WriteIndex(filepath.Join(dir, "b"), "v1.2.3", opts)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Errorf("two builds of the same binaries: index %s, then %s", first, second)
	}
	p, err := layout.FromPath(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	inner, err := idx.ImageIndex(first)
	if err != nil {
		t.Fatalf("the layout does not hold index %s: %v", first, err)
	}
	m, err := inner.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIImageIndex || len(m.Manifests) != 2 {
		t.Fatalf("index %s with %d manifests", m.MediaType, len(m.Manifests))
	}
	for i, want := range []string{"amd64", "arm64"} {
		d := m.Manifests[i]
		if d.Platform == nil || d.Platform.OS != "linux" || d.Platform.Architecture != want || d.MediaType != types.OCIManifestSchema1 {
			t.Errorf("manifest %d: %s %+v, want an OCI linux/%s image", i, d.MediaType, d.Platform, want)
			continue
		}
		img, err := inner.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != want || cf.Config.User != NonRootUser {
			t.Errorf("linux/%s image: config architecture %s, user %s", want, cf.Architecture, cf.Config.User)
		}
	}
}
