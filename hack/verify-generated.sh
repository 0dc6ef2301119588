#!/usr/bin/env bash
# Fails when the committed generated files (CRDs, RBAC, deepcopy, the API reference) differ from what the
# controller-gen markers produce now. Compares content before and after regenerating, so it
# works the same with or without uncommitted hand-written changes.
set -euo pipefail
cd "$(dirname "$0")/.."
snapshot() {
  find api -name 'zz_generated*.go' -type f
  find config/crd/bases config/rbac/role.yaml config/webhook/manifests.yaml docs/reference/api.md -type f
}
sums() { snapshot | sort | xargs sha256sum; }
before=$(sums)
make --no-print-directory generated >/dev/null
after=$(sums)
if [ "$before" != "$after" ]; then
  echo "Generated files were stale and have been regenerated; review and commit them:" >&2
  diff <(echo "$before") <(echo "$after") | grep '^[<>]' | awk '{print "  " $3}' | sort -u >&2
  exit 1
fi
echo "Generated files (CRD, RBAC, deepcopy, API reference) are up to date."
