#!/usr/bin/env bash
# Copies what the Helm chart renders from config/ into charts/grantkeeper/files, so the chart
# and `kustomize build config/default` share one source: the CRD, the RBAC rules and the
# alerts, the Grafana dashboard. `make manifests` runs it; test/helm fails when the copies are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
files=charts/grantkeeper/files
mkdir -p "$files/crd" "$files/rbac" "$files/prometheus" "$files/grafana"
for crd in googleoauthgrants googleoauthclients clustergoogleoauthclients oauthgrants oauthclients clusteroauthclients; do
  cp "config/crd/bases/oauth.grantkeeper.dev_$crd.yaml" "$files/crd/$crd.yaml"
done
for f in role leader_election_role googleoauthgrant_viewer_role googleoauthgrant_editor_role clustergoogleoauthclient_admin_role metrics_auth_role metrics_reader_role; do
  cp "config/rbac/$f.yaml" "$files/rbac/$f.yaml"
done
# The endpoints identity (config/endpoints, issue 28 item 6).
cp config/endpoints/role.yaml "$files/rbac/endpoints_role.yaml"
cp config/prometheus/rules.yaml "$files/prometheus/rules.yaml"
cp config/grafana/grantkeeper.json "$files/grafana/grantkeeper.json"
