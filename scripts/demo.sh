#!/usr/bin/env bash
# The newcomer's demo: seed scenario A from plan to traffic, live in the terminal.
# Renders manifests/examples/a-failover-distribution/plan.yaml into out/demo/, has the
# istiod stand-in translate it for ack-hangzhou's ingress gateway and productpage
# sidecar, runs them in a real Envoy 1.40 with the geolb filter and fake Bookinfo apps
# on 127.0.0.1, and shows per second which region answers reviews, the errors a user
# sees and the filter's counters: 90/10 split -> cn-hangzhou's reviews stopped ->
# failover -> restarted -> ejection (the plan's 1m) -> recovery ramp (10s) -> 90/10.
# About 1.5 minutes; Ctrl-C stops it and cleans up. Installs what it needs first.
#   scripts/demo.sh [--phase-seconds N] [--rate N] [--plain] [--out DIR]
#   scripts/demo.sh --ejection-time 5s --recovery-ramp 3s   # CHANGES THE PLAN: ~35 s in all
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh >/dev/null
scripts/build-wasm.sh --locked
cargo build -q --locked -p geolb-e2e --bin geolb-demo
exec "${CARGO_TARGET_DIR:-$ROOT/target}/debug/geolb-demo" "$@"
