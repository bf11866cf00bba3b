#!/usr/bin/env bash
# Re-pins the example plans to the filter image built from this checkout: builds
# wasm-out/geolb_filter.wasm and its OCI image (wasm-out/oci/), replaces the old pin with
# the image's manifest digest (what a WasmPlugin's sha256 is for an oci:// URL) wherever
# the examples, their rendered manifests, the generator's snapshots and its validation
# table carry it, and re-renders manifests/<scenario>/ from each plan. Run it after any
# change to filter/ or policy/ (or to image/'s format): the end-to-end tests refuse an
# image whose manifest digest differs from the manifests' pin, as istio-agent does.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/build-wasm.sh --locked >/dev/null
new="$(cut -d: -f2 wasm-out/geolb_filter.oci-digest)"
old="$(awk '/^  sha256:/ {print $2; exit}' manifests/examples/a-failover-distribution/plan.yaml)"
if [[ "$old" == "$new" ]]; then
  echo "already pinned to $new"
  exit 0
fi
# Tests also quote the pin's first 8 digits, in lower and upper case (full pins first).
old_short="${old:0:8}"
new_short="${new:0:8}"
old_upper="$(tr a-f A-F <<<"$old_short")"
new_upper="$(tr a-f A-F <<<"$new_short")"
mapfile -t files < <(grep -rlE "$old_short|$old_upper" manifests generator/tests)
sed -i -e "s/$old/$new/g" -e "s/$old_short/$new_short/g" -e "s/$old_upper/$new_upper/g" "${files[@]}"
# The examples are rendered with the public example route secret.
GEOLB_ROUTE_SECRET="$(cat manifests/examples/route-secret.example)"
export GEOLB_ROUTE_SECRET
for plan in manifests/examples/*/plan.yaml; do
  scenario="$(basename "$(dirname "$plan")")"
  cargo run -q --locked -p geolb -- render "$plan" -o "manifests/$scenario"
  cargo run -q --locked -p geolb -- check "$plan" "manifests/$scenario"
done
echo "re-pinned $old -> $new in ${#files[@]} files"
