// Command image builds the container images without a Docker engine (`make image`: the
// manager, and with -pkg ./cmd/metadata-server the injected sidecar):
// a static binary of -pkg on an empty base, UID 65532, public CA roots, written as a
// docker-archive tarball (load it with `docker load`, `ctr images import` or
// `kind load image-archive`, or push it with crane).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/grantkeeper/grantkeeper/hack/image/imagebuild"
)

func main() {
	out := flag.String("o", "bin/image/grantkeeper.tar", "Archive to write.")
	ref := flag.String("tag", "grantkeeper:latest", "Image reference recorded in the archive.")
	pkg := flag.String("pkg", "./cmd/manager", "Go package of the entrypoint.")
	bin := flag.String("bin", "", "A static linux binary to pack instead of building -pkg (its file name becomes the entrypoint; the test suites pack make test's prebuilt ones).")
	flag.Parse()
	if err := run(*out, *ref, *pkg, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(out, ref, pkg, bin string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if bin == "" {
		bin = filepath.Join(filepath.Dir(out), filepath.Base(pkg)) // ./cmd/manager -> /manager in the image
		if err := imagebuild.GoBuild(".", pkg, bin); err != nil {
			return err
		}
	}
	if err := imagebuild.Write(out, imagebuild.Options{Binary: bin, Ref: ref}); err != nil {
		return err
	}
	fmt.Printf("image %s written to %s\n", ref, out)
	return nil
}
