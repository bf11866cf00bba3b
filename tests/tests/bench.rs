//! Envoy CPU per request: bare Envoy vs the empty wasm filter vs geolb, with nginx
//! upstreams and wrk (both from scripts/setup.sh).
//!
//! The benchmark itself is a program, not a test: `scripts/bench.sh`
//! (tests/src/bin/geolb-bench.rs). This only checks that its machinery works.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use std::time::Duration;

use geolb_e2e::bench::{GATEWAY_AUTHORITY, Nginx, gateway_policy, geolb_routed, wrk};
use geolb_e2e::*;

#[test]
fn wrk_machinery_works() {
    let a = Nginx::start("cn-hangzhou");
    let cfg = MeshConfig::new(vec![RegionSpec::new("cn-hangzhou", [a.addr()])]);
    let envoy = Envoy::start(&cfg);
    let r = wrk(&envoy, "/reviews/0", &[], 1, 4, Duration::from_secs(1));
    assert!(r.requests > 0, "{r:?}");
    assert_eq!((r.non_2xx, r.socket_errors), (0, 0), "{r:?}");
    assert!(r.envoy_cpu > Duration::ZERO, "{r:?}");
}

/// The "geolb gateway" variant's premise: an external Host the virtual host accepts is
/// routed by geolb (through the route's cluster), and the bench can tell by the counter.
#[test]
fn gateway_host_is_routed_by_geolb() {
    let a = Nginx::start("cn-hangzhou");
    let b = Nginx::start("cn-shanghai");
    let policy = std::fs::read_to_string(repo_root().join("policy/tests/fixtures/seed-a.json"))
        .expect("seed-a policy");
    let mut cfg = MeshConfig::new(vec![
        RegionSpec::new("cn-hangzhou", [a.addr()]),
        RegionSpec::new("cn-shanghai", [b.addr()]),
    ])
    .with_wasm(WasmFilter::geolb(&gateway_policy(&policy)));
    cfg.extra_domains = vec![GATEWAY_AUTHORITY.to_owned()];
    let envoy = Envoy::start(&cfg);
    let host = [("Host", GATEWAY_AUTHORITY)];
    let r = wrk(&envoy, "/reviews/0", &host, 1, 4, Duration::from_secs(1));
    assert!(r.requests > 0, "{r:?}");
    assert_eq!((r.non_2xx, r.socket_errors), (0, 0), "{r:?}");
    assert!(geolb_routed(&envoy) >= r.requests);
}
