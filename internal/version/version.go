// Package version is the build's version, set by `make release` (and `make build`) with
// -ldflags "-X github.com/grantkeeper/grantkeeper/internal/version.Version=vX.Y.Z"; every
// binary prints it for --version.
package version

import (
	"fmt"
	"runtime"
)

// Version is the release this binary was built as; "dev" for a plain `go build`.
var Version = "dev"

// Line is what `<binary> --version` prints: the name, the version, and the Go toolchain
// and platform it was built for.
func Line(binary string) string {
	return fmt.Sprintf("%s %s (%s %s/%s)", binary, Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
