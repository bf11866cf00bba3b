#!/usr/bin/env bash
# Benchmark: Envoy CPU per request, bare vs empty proxy-wasm filter vs geolb (as at a
# sidecar and as at an ingress gateway), interleaved in one run (see
# tests/src/bin/geolb-bench.rs for the knobs). Takes ~3 minutes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh >/dev/null
scripts/build-wasm.sh --locked
exec cargo run -q --locked --release -p geolb-e2e --bin geolb-bench
