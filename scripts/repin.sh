#!/usr/bin/env bash
# Re-pins the example plans to the filter module built from this checkout: builds
# wasm-out/geolb_filter.wasm, replaces the old sha256 wherever the examples, their
# rendered manifests, the generator's snapshots and its validation table carry it, and
# re-renders manifests/<scenario>/ from each plan. Run it after any change to filter/ or
# policy/ (the end-to-end tests refuse a module whose sha256 differs from the manifests'
# pin, as istio-agent does).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/build-wasm.sh --locked >/dev/null
new="$(cut -d' ' -f1 wasm-out/geolb_filter.wasm.sha256)"
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
for plan in manifests/examples/*/plan.yaml; do
  scenario="$(basename "$(dirname "$plan")")"
  cargo run -q --locked -p geolb -- render "$plan" -o "manifests/$scenario"
  cargo run -q --locked -p geolb -- check "$plan" "manifests/$scenario"
done
echo "re-pinned $old -> $new in ${#files[@]} files"
