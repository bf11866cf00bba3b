#!/usr/bin/env bash
# Prints the absolute path of the real Envoy binary (not the Python wrapper) installed by
# scripts/setup.sh, or $GEOLB_ENVOY if set. Exits 1 with a hint if it is missing.
set -euo pipefail
if [[ -n "${GEOLB_ENVOY:-}" ]]; then
  echo "$GEOLB_ENVOY"
  exit 0
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shopt -s nullglob
cands=("$ROOT"/.venv/lib/python3*/site-packages/envoy/_bin/envoy)
if ((${#cands[@]} == 0)); then
  echo "envoy-path.sh: no envoy binary under $ROOT/.venv; run scripts/setup.sh" >&2
  exit 1
fi
echo "${cands[0]}"
