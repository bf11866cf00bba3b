#!/usr/bin/env bash
# The main job. Installs what the build needs (scripts/setup.sh), builds the geolb filter
# into wasm-out/geolb_filter.wasm (+ .sha256) and its OCI image into wasm-out/oci/ (manifest
# digest in wasm-out/geolb_filter.oci-digest), the `geolb` CLI into target/cli/,
# then validates a plan and renders its manifests.
#   scripts/build.sh [PLAN] [OUT_DIR]
#   default PLAN: manifests/examples/a-failover-distribution/plan.yaml (seed scenario A)
#   default OUT_DIR: out/<plan directory name>
#   the route secret: the variable the plan names (default GEOLB_ROUTE_SECRET)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PLAN="${1:-manifests/examples/a-failover-distribution/plan.yaml}"
OUT="${2:-out/$(basename "$(dirname "$PLAN")")}"
scripts/setup.sh >/dev/null
scripts/build-wasm.sh --locked
cargo build -q --locked --profile cli -p geolb
GEOLB="$ROOT/target/cli/geolb"
# An example plan renders with the public example route secret unless one is set; any
# other plan needs the mesh's own secret in the variable its plan names.
if [[ "$PLAN" == manifests/examples/* && -z "${GEOLB_ROUTE_SECRET:-}" ]]; then
  GEOLB_ROUTE_SECRET="$(cat manifests/examples/route-secret.example)"
  export GEOLB_ROUTE_SECRET
fi
"$GEOLB" validate "$PLAN"
"$GEOLB" render "$PLAN" -o "$OUT"
echo "filter:    $ROOT/wasm-out/geolb_filter.wasm (sha256 $(cut -d' ' -f1 wasm-out/geolb_filter.wasm.sha256))"
echo "image:     $ROOT/wasm-out/oci (manifest $(cat wasm-out/geolb_filter.oci-digest); push: scripts/push-image.sh REF)"
echo "cli:       $GEOLB (see: $GEOLB --help)"
echo "manifests: $OUT (network plan: $GEOLB plan $PLAN)"
