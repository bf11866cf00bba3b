//! What Envoy does with a crashed geolb, per failure policy: why geolb renders
//! `failStrategy: FAIL_OPEN`. Uses a test-only build of the filter that panics on the
//! header `x-geolb-test-panic` (feature `test-panic`, never shipped).
//!
//! Run one: `cargo test -p geolb-e2e --test failure_policy <name>`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use geolb_e2e::*;
use geolb_policy::testing::{HZ, SH};

fn envoy_with(policy: FailurePolicy) -> (Upstream, Upstream, Envoy) {
    let (hz, sh) = (Upstream::start(HZ), Upstream::start(SH));
    let plugin_config = serde_json::json!({
        "apiVersion": "geolb.io/v1alpha1",
        "routeToken": ROUTE_TOKEN,
        "regions": [HZ, SH],
        "services": [{
            "name": "reviews.default",
            "hosts": ["reviews.default.svc.cluster.local"],
            "regions": [HZ, SH],
            "distribute": { HZ: { SH: 100 } }
        }]
    });
    let module = wasm_module("geolb_filter_test_panic.wasm");
    let mut cfg = MeshConfig::for_upstreams(&[&hz, &sh])
        .with_wasm(WasmFilter::new(module, &plugin_config.to_string()).failure_policy(policy));
    cfg.concurrency = 1; // one worker: "later requests" hit the crashed VM for sure
    let envoy = Envoy::start(&cfg);
    (hz, sh, envoy)
}

/// Statuses and serving regions of: 3 normal requests, the panicking one, 5 more.
fn around_a_panic(envoy: &Envoy) -> (Vec<String>, String, Vec<String>) {
    let describe = |r: std::io::Result<Response>| match r {
        Ok(r) if r.is_success() => r.served_region().unwrap_or("?").to_owned(),
        Ok(r) => format!("HTTP {}", r.status),
        Err(e) => format!("error {e}"),
    };
    let before = send_on_one_connection(envoy.addr(), &Request::reviews(), 3)
        .into_iter()
        .map(describe)
        .collect();
    let panic = describe(send_one(
        envoy.addr(),
        &Request::reviews().header("x-geolb-test-panic", "1"),
    ));
    let after = send_on_one_connection(envoy.addr(), &Request::reviews(), 5)
        .into_iter()
        .map(describe)
        .collect();
    (before, panic, after)
}

#[test]
fn fail_open_costs_the_panicking_request_only_then_the_mesh_routes() {
    let (_hz, _sh, envoy) = envoy_with(FailurePolicy::FailOpen);
    let (before, panic, after) = around_a_panic(&envoy);
    assert_eq!(
        before,
        [SH, SH, SH],
        "the policy sends everything to cn-shanghai"
    );
    assert_eq!(panic, "HTTP 503");
    // The filter is bypassed: no header, the route without header (proxy's own region).
    assert_eq!(after, [HZ, HZ, HZ, HZ, HZ]);
    assert!(
        wait_until(std::time::Duration::from_secs(3), || envoy
            .log()
            .contains("geolb: panic:")),
        "{}",
        envoy.log_tail(10)
    );
}

#[test]
fn fail_closed_would_take_the_worker_down() {
    let (_hz, _sh, envoy) = envoy_with(FailurePolicy::FailClosed);
    let (before, panic, after) = around_a_panic(&envoy);
    assert_eq!(before, [SH, SH, SH]);
    assert_eq!(panic, "HTTP 503");
    assert!(after.iter().all(|s| s == "HTTP 503"), "{after:?}");
}
