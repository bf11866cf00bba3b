#!/usr/bin/env bash
# Writes the filter module's OCI image (docs/module-image.md) from wasm-out/geolb_filter.wasm:
#   wasm-out/oci/                     OCI image layout, tagged with the workspace version
#   wasm-out/geolb_filter.oci-digest  its manifest digest (sha256:<hex>): an oci:// pin
# Byte-identical for the same module, so the digest changes only with the module.
# Called by scripts/build-wasm.sh; extra args are passed to cargo run (e.g. --locked).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/wasm-out"
if [[ ! -f "$OUT/geolb_filter.wasm" ]]; then
  echo "build-image.sh: $OUT/geolb_filter.wasm is missing: run scripts/build-wasm.sh" >&2
  exit 1
fi
digest="$(cargo run -q -p geolb-image "$@" -- build "$OUT/geolb_filter.wasm" \
  --out "$OUT/oci" --digest-file "$OUT/geolb_filter.oci-digest")"
echo "wasm-out/oci: image $digest" >&2
