//! Envoy CPU per request: bare Envoy vs the empty wasm filter vs geolb, with nginx
//! upstreams and wrk (both from scripts/setup.sh).
//!
//! The benchmark itself is a program, not a test: `scripts/bench.sh`
//! (tests/src/bin/geolb-bench.rs). This only checks that its machinery works.

use std::time::Duration;

use geolb_e2e::bench::{Nginx, wrk};
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
