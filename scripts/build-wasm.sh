#!/usr/bin/env bash
# Builds the wasm modules the e2e tests load into Envoy, into wasm-out/:
#   wasm-out/geolb_filter.wasm (+ .sha256)  the real filter (crate geolb-filter)
#   wasm-out/oci/, geolb_filter.oci-digest   its OCI image and manifest digest (scripts/build-image.sh)
#   wasm-out/empty_filter.wasm  (+ .sha256)  an empty proxy-wasm filter (bench baseline)
#   wasm-out/header_floor.wasm  (+ .sha256)  the empty filter + a constant routing-header write (bench floor)
#   wasm-out/geolb_filter_test_panic.wasm     TEST ONLY: panics on header x-geolb-test-panic
#   wasm-out/xds_probe.wasm                   TEST ONLY: reports xds.cluster_name/route_name (envoy_facts)
#   wasm-out/xds_probe_abi_0_2_0.wasm         TEST ONLY: the same module declaring Proxy-Wasm ABI 0.2.0
#   wasm-out/xds_probe_abi_0_2_2.wasm         TEST ONLY: ... declaring 0.2.2, an ABI Envoy 1.40 does not know
# Uses the default cargo target dir (target/). Extra args are passed to cargo build
# (e.g. --locked).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET=wasm32-wasip1
OUT="$ROOT/wasm-out"
mkdir -p "$OUT"

if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  echo "build-wasm.sh: rust target $TARGET missing; run scripts/setup.sh" >&2
  exit 1
fi

# Reproducible modules: the same source gives the same sha256 whatever the checkout's
# path (panic locations embed file paths). With --target, these flags reach only the
# wasm artifacts, not host build scripts, so other builds keep their cache. Set per
# command, not exported: scripts/build-image.sh builds a host tool.
WASM_RUSTFLAGS="${RUSTFLAGS:-} --remap-path-prefix=$ROOT=/geolb --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo"

# cargo's target dir for this script: $GEOLB_WASM_TARGET_DIR, else the default target/.
TDIR="${GEOLB_WASM_TARGET_DIR:-$ROOT/target}"

publish() { # publish <built wasm> <name in wasm-out>
  cp "$1" "$OUT/$2.tmp"
  mv "$OUT/$2.tmp" "$OUT/$2"
  (cd "$OUT" && sha256sum "$2" >"$2.sha256")
}

# publish_abi <built wasm> <name in wasm-out> <version, e.g. 0_2_0>: a copy of a module
# built by the Rust SDK (which exports the marker function proxy_abi_version_0_2_1) that
# declares another Proxy-Wasm ABI version: the export's name is patched in place (same
# length, so no offset changes). Fails unless the name occurs exactly once.
publish_abi() {
  local tmp="$OUT/$2.abi.tmp"
  ABI="$3" perl -0777 -pe 'BEGIN { binmode STDIN; binmode STDOUT }
    my $n = s/proxy_abi_version_0_2_1/proxy_abi_version_$ENV{ABI}/g;
    die "build-wasm.sh: expected one proxy_abi_version_0_2_1, found $n\n" unless $n == 1;' \
    "$1" >"$tmp"
  publish "$tmp" "$2"
  rm -f "$tmp"
}

RUSTFLAGS="$WASM_RUSTFLAGS" CARGO_TARGET_DIR="$TDIR" cargo build -q --release --target "$TARGET" -p geolb-filter -p geolb-empty-filter -p geolb-header-floor -p geolb-xds-probe "$@"
publish "$TDIR/$TARGET/release/geolb_filter.wasm" geolb_filter.wasm
publish "$TDIR/$TARGET/release/geolb_empty_filter.wasm" empty_filter.wasm
publish "$TDIR/$TARGET/release/geolb_header_floor.wasm" header_floor.wasm
publish "$TDIR/$TARGET/release/geolb_xds_probe.wasm" xds_probe.wasm
publish_abi "$TDIR/$TARGET/release/geolb_xds_probe.wasm" xds_probe_abi_0_2_0.wasm 0_2_0
publish_abi "$TDIR/$TARGET/release/geolb_xds_probe.wasm" xds_probe_abi_0_2_2.wasm 0_2_2
# A test-only build that panics on demand (feature test-panic), for the failure-policy
# e2e tests. Its own target dir, so it never overwrites the real module's artifact.
RUSTFLAGS="$WASM_RUSTFLAGS" CARGO_TARGET_DIR="$TDIR/test-panic" cargo build -q --release --target "$TARGET" -p geolb-filter --features test-panic "$@"
publish "$TDIR/test-panic/$TARGET/release/geolb_filter.wasm" geolb_filter_test_panic.wasm
scripts/build-image.sh "$@"
ls -l "$OUT"/*.wasm | awk '{print $5, $9}' >&2
