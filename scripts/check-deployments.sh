#!/usr/bin/env bash
# Checks everything under deployments/ and docker-compose.yml offline:
#   promtool check config / check rules / test rules (Prometheus config, alerts),
#   docker-compose config -q (or docker compose config -q),
#   go test ./... in deployments/k8scheck (Kubernetes manifests decoded
#   strictly, kustomize builds, dashboard and alert metric names).
# It installs nothing: a missing tool stops it with a message naming it
# (Debian packages: prometheus for promtool, docker-compose; Go 1.26).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
start=$(date +%s)

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "check-deployments: '$1' not found: $2" >&2
    exit 1
  fi
}
need promtool "install Debian's 'prometheus' package (apt-get install -y --no-install-recommends prometheus), which ships promtool"
need go "install Go 1.26 (https://go.dev/dl/) and put it on PATH"
if command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
elif command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  echo "check-deployments: neither 'docker-compose' nor 'docker compose' found: install Debian's 'docker-compose' package (apt-get install -y --no-install-recommends docker-compose)" >&2
  exit 1
fi

step() { printf '\n== %s\n' "$*"; }

# promtool resolves rule_files relative to the config file, and the unit
# tests name alerts.yml relative to themselves: run from that directory.
step "promtool check config deployments/prometheus/prometheus.yml"
(cd deployments/prometheus && promtool check config prometheus.yml)

step "promtool check rules deployments/prometheus/alerts.yml"
(cd deployments/prometheus && promtool check rules alerts.yml)

step "promtool test rules deployments/prometheus/alerts_test.yml"
(cd deployments/prometheus && promtool test rules alerts_test.yml)

step "${compose[*]} config -q"
"${compose[@]}" -f docker-compose.yml config -q
echo "docker-compose.yml is valid"

step "go test ./... (deployments/k8scheck)"
(cd deployments/k8scheck && go test -count=1 ./...)

step "go vet (deployments/docker/healthcheck)"
(cd deployments/docker/healthcheck && go vet ./...)

echo
echo "check-deployments: all checks passed in $(( $(date +%s) - start ))s"
