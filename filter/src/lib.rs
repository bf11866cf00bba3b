//! geolb's proxy-wasm HTTP filter: a thin shell that moves data between Envoy and
//! `geolb-policy`. Per request it picks a region, replaces the routing header, and
//! records how the region answered in health shared by all worker VMs.
//!
//! The logic (`root`, `request`, `runtime`) is generic over [`host::Host`] and tested natively;
//! `wasm` binds it to proxy-wasm and exists only in the wasm32 build.

pub mod host;
pub mod metrics;
pub mod request;
pub mod root;
pub mod runtime;

#[cfg(target_arch = "wasm32")]
mod wasm;

#[cfg(any(test, feature = "testing"))]
pub mod fake;
