#!/usr/bin/env bash
# The one way to regenerate what the repository pins. Each output is pinned once:
#   * the filter module's pin: the example plans (manifests/examples/*/plan.yaml) and the
#     test plans (generator/tests/fixtures/) name the OCI image's manifest digest, which
#     this script rewrites when the module built from this checkout has another one (the
#     end-to-end tests refuse an image whose digest differs from the pin, as istio-agent
#     does);
#   * manifests/<scenario>/ (the render of each example plan), generator/plan.schema.json,
#     policy/policy.schema.json, docs/simulate-timeline.svg, the end-to-end fixtures and
#     the CLI transcripts (generator/tests/snapshots/): rewritten by their own tests,
#     run with GEOLB_BLESS=1 (and INSTA_UPDATE=always for the transcripts).
# Run it after any change to filter/, policy/, image/'s format, the plan types or the
# templates, then review `git diff`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/build-wasm.sh --locked >/dev/null
new="$(cut -d: -f2 wasm-out/geolb_filter.oci-digest)"
old="$(awk '/^  sha256:/ {print $2; exit}' manifests/examples/a-failover-distribution/plan.yaml)"
if [[ "$old" != "$new" ]]; then
  mapfile -t plans < <(grep -lF "$old" manifests/examples/*/plan.yaml generator/tests/fixtures/*.yaml)
  sed -i "s/$old/$new/g" "${plans[@]}"
  echo "re-pinned $old -> $new in ${#plans[@]} plans"
fi
export GEOLB_BLESS=1 INSTA_UPDATE=always
cargo test -q --locked -p geolb -p geolb-policy >/dev/null
cargo test -q --locked -p geolb-e2e --lib >/dev/null
git status --short -- manifests generator policy docs tests
