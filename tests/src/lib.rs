//! geolb's end-to-end harness: a real Envoy (1.40.0 from PyPI, V8 runtime) on loopback,
//! fake regional upstreams and an istiod-like configuration of one service.
//!
//! ```ignore
//! use geolb_e2e::*;
//! let a = Upstream::start("cn-hangzhou");
//! let b = Upstream::start("cn-shanghai");
//! let cfg = MeshConfig::for_upstreams(&[&a, &b])           // proxy region = first region
//!     .with_wasm(WasmFilter::geolb(r#"{ ...policy JSON... }"#)); // FAIL_OPEN, via ECDS
//! let mut envoy = Envoy::start(&cfg);                        // waits for LIVE
//! let results = send_on_one_connection(envoy.addr(), &Request::reviews(), 100);
//! let s = Summary::of(&results);
//! assert_eq!(s.failures(), 0, "{s}");
//! assert_eq!(envoy.update_plugin_config("reject"), UpdateOutcome::Rejected);
//! ```
//!
//! Prerequisites: `scripts/setup.sh` (Envoy into `.venv/`) and `scripts/build-wasm.sh`
//! (modules into `wasm-out/`); the harness fails with that hint when they are missing.
//! See `tests/README.md`.

// A test harness: failing loudly with a clear message is the intended behaviour.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod apps;
pub mod bench;
pub mod bookinfo;
pub mod client;
pub mod config;
pub mod envoy;
pub mod from_plan;
pub mod istiod;
mod listening;
pub mod paths;
pub mod upstream;

pub use client::{
    Connection, DEFAULT_AUTHORITY, Request, Response, Summary, send_on_new_connections,
    send_on_one_connection, send_one, send_parallel,
};
pub use config::{
    Delivery, FailurePolicy, MeshConfig, OutlierDetection, RegionSpec, RetryPolicy, RouteWitness,
    SubsetStyle, WasmFilter, WitnessPosition,
};
pub use envoy::{Envoy, StartError, UpdateOutcome, wait_until};
pub use paths::{empty_wasm, envoy_binary, geolb_wasm, repo_root, wasm_module};
pub use upstream::{Body, ROUTING_HEADER, Upstream};

/// The route token of the tests' hand-written policies (a [`MeshConfig`] with such a
/// policy matches `<region>.<token>`, as geolb's rendered VirtualServices do).
pub const ROUTE_TOKEN: &str = "e2e-test-route-token-0123";
