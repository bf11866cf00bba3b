#!/usr/bin/env bash
# Pushes the filter's OCI image (wasm-out/oci/, written by scripts/build-wasm.sh) to a
# registry with skopeo, byte for byte, and prints the pin for the plan's `filter`:
#   scripts/push-image.sh [SKOPEO-COPY-OPTION...] REF
#   REF      registry/repository:tag (an oci:// or docker:// prefix is dropped), e.g.
#            registry.example.com/geolb/geolb-filter:0.1.0
#   options  go to `skopeo copy` (--dest-tls-verify=false, --dest-creds USER:PASS,
#            --dest-authfile FILE, ...); the --dest-X ones also reach the check below as --X.
# Fails unless the registry then serves a manifest whose sha256 is
# wasm-out/geolb_filter.oci-digest (what istio-agent compares a WasmPlugin's sha256 with).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
die() { echo "push-image.sh: $*" >&2; exit 1; }

(($# >= 1)) || die "usage: scripts/push-image.sh [SKOPEO-COPY-OPTION...] REGISTRY/REPOSITORY:TAG"
ref="${*: -1}"
copy_opts=("${@:1:$#-1}")
ref="${ref#oci://}"
ref="${ref#docker://}"
[[ "$ref" != *@* ]] || die "$ref: push to a tag; the digest is the image's own"
[[ "${ref##*/}" == *:* ]] || die "$ref: give a tag (e.g. :$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1))"
command -v skopeo >/dev/null 2>&1 || die "skopeo is missing: run scripts/setup.sh"
[[ -f wasm-out/oci/index.json && -f wasm-out/geolb_filter.oci-digest ]] \
  || die "wasm-out/oci is missing: run scripts/build-wasm.sh"
want="$(cat wasm-out/geolb_filter.oci-digest)"

# skopeo inspect takes the registry options without their dest- prefix.
inspect_opts=()
for ((i = 0; i < ${#copy_opts[@]}; i++)); do
  o="${copy_opts[i]}"
  case "$o" in
    --dest-tls-verify | --dest-tls-verify=* | --dest-no-creds | --dest-no-creds=* | \
      --dest-creds=* | --dest-authfile=* | --dest-cert-dir=* | --dest-registry-token=* | \
      --dest-username=* | --dest-password=*)
      inspect_opts+=("--${o#--dest-}") ;;
    --dest-creds | --dest-authfile | --dest-cert-dir | --dest-registry-token | \
      --dest-username | --dest-password)
      inspect_opts+=("--${o#--dest-}" "${copy_opts[i + 1]:-}")
      i=$((i + 1)) ;;
  esac
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# --preserve-digests: skopeo fails rather than re-compress or convert the manifest,
# either of which would change the digest the plans pin.
skopeo copy -q --preserve-digests --digestfile "$tmp/digest" "${copy_opts[@]}" \
  oci:wasm-out/oci "docker://$ref"
pushed="$(cat "$tmp/digest")"
[[ "$pushed" == "$want" ]] || die "skopeo pushed $pushed, but wasm-out/oci is $want"
served="sha256:$(skopeo inspect --raw "${inspect_opts[@]}" "docker://$ref" | sha256sum | cut -d' ' -f1)"
[[ "$served" == "$want" ]] || die "the registry serves $ref with manifest $served, not $want"

hex="${want#sha256:}"
repo="${ref%:*}"
echo "pushed $ref: manifest $want"
echo "filter:"
echo "  url: oci://$ref"
echo "  sha256: $hex"
echo "# or by digest: url: oci://$repo@$want"
