#!/usr/bin/env bash
# Builds the browser playground into wasm-out/playground/: static files, index.html at
# the root, geolb's validation, render and simulation compiled to wasm32-unknown-unknown
# (crate geolb-playground) and bound with wasm-bindgen. Publish the folder on any static
# host; it needs no server logic.
#
#   scripts/build-playground.sh            build, print the module's size
#   scripts/build-playground.sh --serve    build, then serve it on http://127.0.0.1:8787/
#   scripts/build-playground.sh --serve 9000
#
# Installs what it needs: the rust target, and wasm-bindgen-cli at the version of the
# wasm-bindgen crate in Cargo.lock (the two must match). Extra cargo flags come from
# $CARGO_FLAGS (scripts/test.sh passes --locked).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET=wasm32-unknown-unknown
OUT="$ROOT/wasm-out/playground"
TDIR="${CARGO_TARGET_DIR:-$ROOT/target}"
log() { printf 'build-playground.sh: %s\n' "$*" >&2; }

serve=""
port=8787
if [[ "${1:-}" == "--serve" ]]; then
  serve=1
  port="${2:-8787}"
elif [[ $# -gt 0 ]]; then
  log "unknown argument $1 (usage: build-playground.sh [--serve [PORT]])"
  exit 2
fi

if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  rustup target add "$TARGET" >/dev/null
fi

# wasm-bindgen-cli must be the exact version of the crate the module links.
want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [[ -z "$want" ]]; then
  log "Cargo.lock holds no wasm-bindgen"
  exit 1
fi
have="$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)"
if [[ "$have" != "$want" ]]; then
  log "installing wasm-bindgen-cli $want (had: ${have:-none})"
  # Not --locked: its lock file names crate versions the registry mirror may lack.
  cargo install -q wasm-bindgen-cli --version "$want" >&2
fi

# shellcheck disable=SC2086
cargo build -q --profile playground --target "$TARGET" -p geolb-playground ${CARGO_FLAGS:-}
mkdir -p "$ROOT/wasm-out"
staging="$(mktemp -d "$ROOT/wasm-out/.playground.XXXXXX")"
chmod 755 "$staging"
trap 'rm -rf "$staging"' EXIT
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
  --out-dir "$staging" "$TDIR/$TARGET/playground/geolb_playground.wasm" 2> >(grep -v 'target_features' >&2)
cp playground/web/index.html playground/web/app.js playground/web/style.css "$staging/"
# Replace the folder whole, so a half-built one is never served.
rm -rf "$OUT.old"
[[ -d "$OUT" ]] && mv "$OUT" "$OUT.old"
mv "$staging" "$OUT"
rm -rf "$OUT.old"
trap - EXIT

module="$OUT/geolb_playground_bg.wasm"
printf 'wasm-out/playground: module %s bytes, %s gzip -9\n' \
  "$(stat -c %s "$module")" "$(gzip -9 -c "$module" | wc -c)"

if [[ -n "$serve" ]]; then
  log "serving on http://127.0.0.1:$port/ (Ctrl-C stops)"
  exec python3 "$ROOT/playground/serve.py" "$OUT" "$port"
fi
