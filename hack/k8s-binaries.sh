#!/usr/bin/env bash
# Builds a real Kubernetes control plane (kube-apiserver, kube-controller-manager,
# kubectl, etcd) and, when the pod and in-cluster tests will use them (as root), a kubelet
# and kube-scheduler from the Go module proxy into bin/k8s/<version>/.
#
# Why build instead of download: our machines reach only the Go module proxy, so
# setup-envtest and release tarballs are unavailable (see ../shared/notes).
# Idempotent: when the binaries exist and report the pinned version it exits in seconds.
# Built once per machine and user: they are built into the per-user cache
# (hack/lib/bincache.sh; keyed by the version and hack/k8s-binaries' go.sum) and copied from
# there into bin/k8s/<version>, so a fresh clone copies them instead of relinking them (CI's
# clean clone spent 79 s of its warm make test relinking them).
#
# K8S_KUBELET=auto (the default) builds the kubelet only as root: the pod test (test/pods)
# is the only user of it and runs only as root; as anyone else it skips, and the kubelet
# would be a minute or two of cold build for nothing. K8S_KUBELET=1 or 0 forces it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/bincache.sh
source "$root/hack/lib/bincache.sh"
K8S_VERSION=$(cat "$root/hack/k8s-version")   # must match k8s.io/kubernetes in hack/k8s-binaries/go.mod
ETCD_VERSION=v3.6.8   # the etcd release that Kubernetes version itself requires

mod="$root/hack/k8s-binaries"
out="${K8S_BINARIES_DIR:-$root/bin/k8s/$K8S_VERSION}"

fail() {
  echo "k8s-binaries: $*" >&2
  exit 1
}

command -v go >/dev/null || fail "Go is not on PATH. Install Go 1.26+ (https://go.dev/doc/install) and re-run 'make k8s-binaries'."
grep -q "k8s.io/kubernetes $K8S_VERSION" "$mod/go.mod" ||
  fail "hack/k8s-binaries/go.mod does not pin k8s.io/kubernetes $K8S_VERSION; keep it in step with hack/k8s-version."

kubelet=${K8S_KUBELET:-auto}
case $kubelet in
  auto) if [ "$(id -u)" = 0 ]; then kubelet=1; else kubelet=0; fi ;;
  0 | 1) ;;
  *) fail "K8S_KUBELET is '$kubelet'; use 1 (build the kubelet), 0 (do not) or auto (only as root, where the pod test runs)." ;;
esac

# Package of each binary, relative to the helper module.
declare -A pkg=(
  [etcd]=./etcd
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
  [kubectl]=k8s.io/kubernetes/cmd/kubectl
  [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
  [kubelet]=k8s.io/kubernetes/cmd/kubelet
  [kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
)
kube=(kube-apiserver kubectl kube-controller-manager)
[ "$kubelet" = 1 ] && kube+=(kubelet kube-scheduler)

# missing lists the wanted binaries in directory $1 (default $out) that are absent or report
# another version. (Versions are captured before matching: `--version | grep -q` under
# pipefail fails at random, when grep exits before the binary has written its last line.)
missing() {
  local b v dir=${1:-$out}
  v=$("$dir/etcd" --version 2>/dev/null) || true
  [[ $v == *"etcd Version: ${ETCD_VERSION#v}"* ]] || echo etcd
  v=$("$dir/kube-apiserver" --version 2>/dev/null) || true
  if [ "$v" != "Kubernetes $K8S_VERSION" ]; then
    echo "${kube[@]}" # another version, or none: all of them
    return
  fi
  for b in "${kube[@]}"; do [ -x "$dir/$b" ] || echo "$b"; done
}

read -r -a need <<<"$(missing | tr '\n' ' ')"
if [ ${#need[@]} = 0 ]; then
  echo "k8s-binaries: Kubernetes $K8S_VERSION and etcd $ETCD_VERSION already built in ${out#"$root"/}"
  exit 0
fi

# The per-user cache: build what it lacks there, then copy what $out lacks from it.
final=$out
cache=$(bincache_dir k8s)
if [ -n "$cache" ]; then
  out="$cache/$K8S_VERSION-$(bincache_key "$mod/go.mod" "$mod/go.sum")"
  read -r -a need <<<"$(missing | tr '\n' ' ')"
fi
place() {
  [ "$out" = "$final" ] && return 0
  local b
  read -r -a lack <<<"$(missing "$final" | tr '\n' ' ')"
  for b in "${lack[@]}"; do
    bincache_place "$out/$b" "$final/$b" || fail "copying $out/$b to $final failed (disk space?)."
  done
  [ -z "$(missing "$final")" ] || fail "the binaries copied into $final do not report Kubernetes $K8S_VERSION / etcd $ETCD_VERSION; delete $out and re-run 'make k8s-binaries'."
}
if [ ${#need[@]} = 0 ]; then
  place
  echo "k8s-binaries: Kubernetes $K8S_VERSION and etcd $ETCD_VERSION copied into ${final#"$root"/} from $out"
  exit 0
fi

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done

mkdir -p "$out"
staging=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$staging"' EXIT
start=$(date +%s)
echo "k8s-binaries: building ${need[*]} (Kubernetes $K8S_VERSION, etcd $ETCD_VERSION) into ${out#"$root"/}; the first build takes about 9 minutes on an idle 2-core machine (module downloads included), later runs take seconds"
pkgs=()
for b in "${need[@]}"; do pkgs+=("${pkg[$b]}"); done
# One go build of every package: it compiles their shared dependencies once and keeps all
# cores busy, linking one binary while compiling for the next.
(cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$staging/" "${pkgs[@]}") ||
  fail "building ${need[*]} failed. Check that the Go module proxy is reachable (go env GOPROXY) and that there is disk space, then re-run 'make k8s-binaries'."
for b in "${need[@]}"; do mv "$staging/$b" "$out/$b"; done

[ -z "$(missing)" ] || fail "built binaries do not report Kubernetes $K8S_VERSION / etcd $ETCD_VERSION; delete $out and re-run 'make k8s-binaries'."
place
echo "k8s-binaries: built ${need[*]} in $(($(date +%s) - start))s${cache:+ (kept in $out for other clones)}: $("$final/kubectl" version --client 2>/dev/null | head -1)"
