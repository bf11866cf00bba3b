#!/usr/bin/env bash
# Benchmark: Envoy CPU per request, bare vs empty proxy-wasm filter vs the header floor
# (a constant routing-header write, without and with clear_route_cache) vs geolb (as at a
# sidecar and as at an ingress gateway), interleaved in one run (see
# tests/src/bin/geolb-bench.rs for the knobs). Takes ~5 minutes (7 rounds of 3 s;
# GEOLB_BENCH_ROUNDS=5 for a shorter run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh >/dev/null
scripts/build-wasm.sh --locked
exec cargo run -q --locked --release -p geolb-e2e --bin geolb-bench
