#!/usr/bin/env bash
# Every test: lints, unit and property tests, generator snapshots and drift checks,
# and the end-to-end scenarios in a real Envoy 1.40. Installs what it needs first.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
step() { printf '\n== %s\n' "$*"; }
# A fresh clone builds once: incremental state would only double target/'s size.
export CARGO_INCREMENTAL=0

step "setup (rust wasm target, Envoy 1.40 in .venv, nginx, wrk, skopeo, docker-registry, chromium)"
scripts/setup.sh
step "build the wasm modules and the filter's OCI image"
scripts/build-wasm.sh --locked
step "format and lints"
cargo fmt --all --check
cargo clippy -q --locked --workspace --all-targets -- -D warnings
cargo clippy -q --locked -p geolb-filter -p geolb-policy --target wasm32-wasip1 -- -D warnings
step "unit, property, snapshot and CLI tests"
cargo test -q --locked --workspace --exclude geolb-e2e
step "committed manifests match their plans (the GitOps drift gate, with the CLI)"
# The examples are rendered with the public example route secret.
GEOLB_ROUTE_SECRET="$(cat manifests/examples/route-secret.example)"
export GEOLB_ROUTE_SECRET
for plan in manifests/examples/*/plan.yaml; do
  scenario="$(basename "$(dirname "$plan")")"
  cargo run -q --locked -p geolb -- check "$plan" "manifests/$scenario"
done
step "the playground in headless Chromium, against the CLI"
CARGO_FLAGS=--locked scripts/build-playground.sh
cargo build -q --locked -p geolb
GEOLB_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/geolb" .venv/bin/python -m unittest discover -s tests/browser
step "fuzz smoke: each AFL++ target from its seeds, no crash allowed"
# The long runs stay out of CI; `scripts/fuzz.sh TARGET SECONDS` runs one by hand.
for target in $(scripts/fuzz.sh); do
  scripts/fuzz.sh "$target" 20
done
step "end-to-end in a real Envoy"
# Each test runs its own Envoy (2 workers) and upstreams; two at a time fit 2 cores.
cargo test -q --locked -p geolb-e2e -- --test-threads 2
