//! Shared helpers for the geolb package's integration tests (`mod support;`).
#![allow(dead_code)]

pub mod crd;
pub mod kustomize;

/// Whether this run rewrites the committed outputs it checks instead of comparing
/// (`GEOLB_BLESS=1`, which scripts/bless.sh sets).
pub fn bless() -> bool {
    std::env::var_os("GEOLB_BLESS").is_some()
}
