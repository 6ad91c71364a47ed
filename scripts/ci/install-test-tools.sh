#!/usr/bin/env bash
# Installs the system tools the test suite needs beyond Node, Java, Maven and Redis (which the
# machine has): Debian's Chromium for the web tag's browser tests (driven by playwright-core,
# no browser download), kubectl (`kubectl kustomize`) and docker-compose (`config -q`) for the
# offline checks of k8s/ and docker-compose.yml — no cluster and no Docker engine needed.
# Idempotent: a tool already present is left alone. Debian packages; sudo only when not root.
#   chromium          → /usr/bin/chromium
#   kubernetes-client → kubectl 1.20 with kustomize v2.0.3 (k8s/ renders with it and with v5)
#   docker-compose    → docker-compose 1.29 (validates a compose file without an engine)
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v kubectl > /dev/null 2>&1 || missing+=(kubernetes-client)
command -v docker-compose > /dev/null 2>&1 || missing+=(docker-compose)

if [ "${#missing[@]}" -eq 0 ]; then
  echo "test tools present: /usr/bin/chromium, $(command -v kubectl), $(command -v docker-compose)"
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo > /dev/null 2>&1 || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi

echo "installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
[ -x /usr/bin/chromium ] && command -v kubectl > /dev/null && command -v docker-compose > /dev/null
echo "test tools installed: /usr/bin/chromium, $(command -v kubectl), $(command -v docker-compose)"
