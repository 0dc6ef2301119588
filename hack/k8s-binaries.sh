#!/usr/bin/env bash
# Builds a real Kubernetes control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd) and a kubelet from the Go module proxy into bin/k8s/<version>/.
#
# Why build instead of download: our machines reach only the Go module proxy, so
# setup-envtest and release tarballs are unavailable (see ../shared/notes).
# Idempotent: when the binaries exist and report the pinned version it exits in seconds.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
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

up_to_date() {
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet etcd; do
    [ -x "$out/$b" ] || return 1
  done
  "$out/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes $K8S_VERSION" || return 1
  "$out/etcd" --version 2>/dev/null | grep -q "etcd Version: ${ETCD_VERSION#v}" || return 1
}

if up_to_date; then
  echo "k8s-binaries: Kubernetes $K8S_VERSION and etcd $ETCD_VERSION already built in ${out#"$root"/}"
  exit 0
fi

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
pkg=k8s.io/component-base/version
cpkg=k8s.io/client-go/pkg/version
ldflags="-s -w"
for p in $pkg $cpkg; do
  ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done

mkdir -p "$out"
start=$(date +%s)
echo "k8s-binaries: building Kubernetes $K8S_VERSION and etcd $ETCD_VERSION into ${out#"$root"/} (a cold build takes about 6-8 minutes on 2 cores; later runs take seconds)"
cd "$mod"
build() { # build <output name> <package>
  echo "k8s-binaries:   $1"
  go build -trimpath -ldflags "$ldflags" -o "$out/$1.tmp" "$2" ||
    fail "building $1 failed. Check that the Go module proxy is reachable (go env GOPROXY) and that there is disk space, then re-run 'make k8s-binaries'."
  mv "$out/$1.tmp" "$out/$1"
}
# A binary that exists at the pinned version is kept (a new one, e.g. kube-scheduler, is
# added without rebuilding the rest).
current() { [ -x "$out/$1" ] && "$out/$1" --version 2>/dev/null | grep -qx "Kubernetes $K8S_VERSION"; }
[ -x "$out/etcd" ] || build etcd ./etcd
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet; do
  current "$b" || build "$b" "k8s.io/kubernetes/cmd/$b"
done
"$out/kubectl" version --client 2>/dev/null | grep -q "$K8S_VERSION" || build kubectl k8s.io/kubernetes/cmd/kubectl

up_to_date || fail "built binaries do not report Kubernetes $K8S_VERSION / etcd $ETCD_VERSION; delete $out and re-run 'make k8s-binaries'."
echo "k8s-binaries: built Kubernetes $K8S_VERSION and etcd $ETCD_VERSION in $(($(date +%s) - start))s: $("$out/kubectl" version --client 2>/dev/null | head -1)"
