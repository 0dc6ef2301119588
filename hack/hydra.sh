#!/usr/bin/env bash
# Builds Ory Hydra v2 (a real OAuth 2.0 / OpenID Connect server: test/framework/hydra runs it
# for the provider tests) from the Go module proxy into $HYDRA (bin/hydra-<version>), the way
# hack/k8s-binaries.sh builds the Kubernetes binaries. Idempotent: an existing binary is kept.
#
# Two things the build needs (docs/development.md, ../shared notes):
#   - hack/hydra/go.mod replaces github.com/gobuffalo/pop/v6 with Ory's fork, as Hydra's own
#     go.mod does (a dependency's replace is ignored; without it the build fails with
#     "p.conn.Store.SQLDB undefined").
#   - SQLite compiled in (cgo, tags sqlite,sqlite_omit_load_extension): the tests run Hydra with
#     DSN=memory, which Hydra refuses without it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mod="$root/hack/hydra"
out=${HYDRA:?HYDRA (the binary to build) is not set; run make hydra}

fail() {
  echo "hydra: $*" >&2
  exit 1
}

if [ -x "$out" ]; then
  echo "hydra: ${out#"$root"/} already built"
  exit 0
fi
command -v go >/dev/null || fail "Go is not on PATH. Install Go 1.26+ and re-run 'make hydra'."
command -v "$(go env CC)" >/dev/null || fail "no C compiler ($(go env CC)): Hydra's SQLite needs cgo. Install gcc (apt-get install gcc) and re-run 'make hydra'."

mkdir -p "$(dirname "$out")"
staging=$(mktemp -d "$(dirname "$out")/.hydra.XXXXXX")
trap 'rm -rf "$staging"' EXIT
start=$(date +%s)
echo "hydra: building ${out#"$root"/}; the first build takes about 5 minutes on an idle 2-core machine (module downloads included), later runs take seconds"
(cd "$mod" && CGO_ENABLED=1 go build -trimpath -ldflags "-s -w" -tags sqlite,sqlite_omit_load_extension \
  -o "$staging/hydra" github.com/ory/hydra/v2) ||
  fail "building Hydra failed. Check that the Go module proxy is reachable (go env GOPROXY), that a C compiler works, and that there is disk space; then re-run 'make hydra'."
mv "$staging/hydra" "$out"
echo "hydra: built ${out#"$root"/} in $(($(date +%s) - start))s"
