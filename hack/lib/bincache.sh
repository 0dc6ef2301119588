# Sourced by hack/gotool.sh, hack/hydra.sh and hack/k8s-binaries.sh: the per-user cache of
# the binaries make builds from other modules (the tools, Ory Hydra, the Kubernetes
# binaries). They depend only on their pinned versions, not on this checkout, so each is
# built once per machine and user, not once per clone: a fresh clone (CI's, a second
# worktree) links them in instead of building or relinking them (docs/development.md).
#
# GRANTKEEPER_CACHE sets the directory (default ${XDG_CACHE_HOME:-$HOME/.cache}/grantkeeper,
# where setup-envtest keeps its binaries too); GRANTKEEPER_CACHE=off builds into bin/ as
# before. Entries are written whole (built into a temporary directory, then renamed), and
# every user checks what it takes (the version a binary reports), so a stale or broken entry
# is rebuilt, never used.

# bincache_dir prints the cache directory for kind ($1, e.g. tools), creating it; it prints
# nothing when the cache is off or cannot be created (the caller builds in place).
bincache_dir() {
  local base=${GRANTKEEPER_CACHE:-${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/grantkeeper}
  [ "$base" = off ] && return 0
  mkdir -p "$base/$1" 2>/dev/null && [ -w "$base/$1" ] && echo "$base/$1"
  return 0
}

# bincache_key prints a short hash of the given files' contents (a go.mod and go.sum: a
# changed pin or replace gives a new entry).
bincache_key() {
  cat "$@" | sha256sum | cut -c1-12
}

# bincache_place copies $1 to $2, replacing $2 whole: a reader never sees half a file. A
# copy, not a link: a write into one clone's bin/ (or into the cache) cannot change another's
# (a second or so for the largest, the Kubernetes binaries).
bincache_place() {
  local src=$1 dst=$2 tmp
  mkdir -p "$(dirname "$dst")"
  tmp="$dst.tmp.$$"
  cp --reflink=auto "$src" "$tmp" || { rm -f "$tmp"; return 1; }
  mv -f "$tmp" "$dst"
}

# bincache_buildinfo prints field $2 (path: the main package; mod: "module version") of the Go
# binary $1's build information (go version -m reads it without running the binary; a
# truncated or foreign file has none).
bincache_buildinfo() {
  [ -x "$1" ] || return 1
  go version -m "$1" 2>/dev/null | awk -F'\t' -v f="$2" '
    $2 == f && f == "path" { print $3; exit }
    $2 == f && f == "mod" { print $3 " " $4; exit }'
}

# bincache_gopkg_is reports whether the Go binary $1 is package $2 built from its module at
# version $3 (what go install $2@$3 makes).
bincache_gopkg_is() {
  [ "$(bincache_buildinfo "$1" path)" = "$2" ] && [ "$(bincache_buildinfo "$1" mod | cut -d' ' -f2)" = "$3" ]
}
