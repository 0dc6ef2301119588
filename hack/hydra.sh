#!/usr/bin/env bash
# Builds Ory Hydra v2 (a real OAuth 2.0 / OpenID Connect server: test/framework/hydra runs it
# for the provider tests) from the Go module proxy into $HYDRA (bin/hydra-<version>), the way
# hack/k8s-binaries.sh builds the Kubernetes binaries. Idempotent: an existing binary that
# reports the pinned version is kept. Built once per machine and user: the binary is kept in
# the per-user cache (hack/lib/bincache.sh), keyed by hack/hydra's go.mod and go.sum, and
# later clones copy it from there.
#
# Two things the build needs (docs/development.md, ../shared notes):
#   - hack/hydra/go.mod replaces github.com/gobuffalo/pop/v6 with Ory's fork, as Hydra's own
#     go.mod does (a dependency's replace is ignored; without it the build fails with
#     "p.conn.Store.SQLDB undefined").
#   - SQLite compiled in (cgo, tags sqlite,sqlite_omit_load_extension): the tests run Hydra with
#     DSN=memory, which Hydra refuses without it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/bincache.sh
source "$root/hack/lib/bincache.sh"
mod="$root/hack/hydra"
out=${HYDRA:?HYDRA (the binary to build) is not set; run make hydra}

fail() {
  echo "hydra: $*" >&2
  exit 1
}

command -v go >/dev/null || fail "Go is not on PATH. Install Go 1.26+ and re-run 'make hydra'."
version=$(awk '$1 == "github.com/ory/hydra/v2" { print $2 }' "$mod/go.mod")
# is_hydra: $1 is Hydra at the pinned version (its build information; not run).
is_hydra() { [ "$(bincache_buildinfo "$1" mod)" = "github.com/ory/hydra/v2 $version" ]; }

if is_hydra "$out"; then
  echo "hydra: ${out#"$root"/} already built"
  exit 0
fi
cache=$(bincache_dir hydra)
cached=${cache:+$cache/hydra-$version-$(bincache_key "$mod/go.mod" "$mod/go.sum")}
if [ -n "$cached" ] && is_hydra "$cached"; then
  bincache_place "$cached" "$out"
  echo "hydra: ${out#"$root"/} from $cached"
  exit 0
fi
command -v "$(go env CC)" >/dev/null || fail "no C compiler ($(go env CC)): Hydra's SQLite needs cgo. Install gcc (apt-get install gcc) and re-run 'make hydra'."

mkdir -p "$(dirname "$out")"
staging=$(mktemp -d "${cache:-$(dirname "$out")}/.hydra.XXXXXX")
trap 'rm -rf "$staging"' EXIT
start=$(date +%s)
echo "hydra: building ${out#"$root"/}; the first build takes about 5 minutes on an idle 2-core machine (module downloads included), later runs and clones take seconds"
(cd "$mod" && CGO_ENABLED=1 go build -trimpath -ldflags "-s -w" -tags sqlite,sqlite_omit_load_extension \
  -o "$staging/hydra" github.com/ory/hydra/v2) ||
  fail "building Hydra failed. Check that the Go module proxy is reachable (go env GOPROXY), that a C compiler works, and that there is disk space; then re-run 'make hydra'."
is_hydra "$staging/hydra" || fail "the built binary does not report Hydra $version (go version -m $staging/hydra)."
if [ -n "$cached" ]; then
  mv -f "$staging/hydra" "$cached"
  bincache_place "$cached" "$out"
else
  mv -f "$staging/hydra" "$out"
fi
echo "hydra: built ${out#"$root"/} in $(($(date +%s) - start))s${cached:+ (kept in $cached for other clones)}"
