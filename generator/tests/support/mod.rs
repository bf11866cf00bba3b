//! Shared helpers for the geolb package's integration tests (`mod support;`).
//! Each test binary uses a part of them, so each declares `#[allow(dead_code)] mod
//! support;`; an item no binary uses is still found by compiling them one at a time.

pub mod crd;
pub mod kustomize;

/// Whether this run rewrites the committed outputs it checks instead of comparing
/// (`GEOLB_BLESS=1`, which scripts/bless.sh sets).
pub fn bless() -> bool {
    std::env::var_os("GEOLB_BLESS").is_some()
}
