#!/usr/bin/env bash
# The main job: installs what the build needs (scripts/setup.sh), builds the geolb
# filter into wasm-out/geolb_filter.wasm (+ .sha256) and the `geolb` CLI into
# target/release/geolb.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh >/dev/null
scripts/build-wasm.sh --locked
cargo build -q --locked --release -p geolb
echo "filter: $ROOT/wasm-out/geolb_filter.wasm (sha256 $(cut -d' ' -f1 wasm-out/geolb_filter.wasm.sha256))"
echo "cli:    $ROOT/target/release/geolb (try: target/release/geolb --help)"
