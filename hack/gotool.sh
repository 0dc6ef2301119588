#!/usr/bin/env bash
# gotool.sh OUT PACKAGE VERSION: go install PACKAGE@VERSION as OUT (bin/<tool>-<version>),
# through the per-user cache of hack/lib/bincache.sh: the first clone on a machine builds it,
# later ones link the cached binary (a second; helm alone is minutes of compiling on an empty
# build cache). The cached binary is used only when its build information names PACKAGE at
# VERSION.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/bincache.sh
source "$root/hack/lib/bincache.sh"

[ $# = 3 ] || { echo "usage: $0 OUT PACKAGE VERSION" >&2; exit 2; }
out=$1 pkg=$2 version=$3
name=${pkg##*/}
# go install names a major-version path's binary after the element before it (.../kustomize/v5).
[[ $name =~ ^v[0-9]+$ ]] && name=$(basename "$(dirname "$pkg")")

fail() {
  echo "$name: $*" >&2
  exit 1
}
command -v go >/dev/null || fail "Go is not on PATH. Install Go 1.26+ and re-run make."

cache=$(bincache_dir tools)
cached=${cache:+$cache/$name-$version}
if [ -n "$cached" ] && bincache_gopkg_is "$cached" "$pkg" "$version"; then
  bincache_place "$cached" "$out"
  echo "$name: ${out#"$root"/} from $cached"
  exit 0
fi

mkdir -p "$(dirname "$out")"
staging=$(mktemp -d "${cache:-$(dirname "$out")}/.$name.XXXXXX")
trap 'rm -rf "$staging"' EXIT
GOBIN=$staging go install "$pkg@$version" ||
  fail "go install $pkg@$version failed. Check that the Go module proxy is reachable (go env GOPROXY) and that there is disk space; then re-run make."
bincache_gopkg_is "$staging/$name" "$pkg" "$version" || fail "the built $name does not report $pkg $version (go version -m $staging/$name)."
if [ -n "$cached" ]; then
  mv -f "$staging/$name" "$cached"
  bincache_place "$cached" "$out"
  echo "$name: built ${out#"$root"/} (kept in $cached for other clones)"
else
  mv -f "$staging/$name" "$out"
  echo "$name: built ${out#"$root"/}"
fi
