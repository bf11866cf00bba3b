//! Envoy facts geolb's design relies on (docs/routing-contract.md), pinned against the
//! real Envoy 1.40 with NO geolb filter: bare Envoy, the empty wasm filter, or the
//! test-only xds probe (`tests/xds-probe`, also in copies declaring other Proxy-Wasm ABI
//! versions), some with native `header_mutation` filters that prove which route they
//! read ([`RouteWitness`]). If one of these fails after an Envoy upgrade, the routing
//! contract needs a second look.
//!
//! Run one: `cargo test -p geolb-e2e --test envoy_facts <name>`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use std::time::{Duration, Instant};

use geolb_e2e::istiod::NodeLocality;
use geolb_e2e::*;

const A: &str = "cn-hangzhou";
const B: &str = "cn-shanghai";
const C: &str = "cn-beijing";

/// Three regions with one upstream each; the proxy sits in A.
fn three_regions() -> (Upstream, Upstream, Upstream) {
    (Upstream::start(A), Upstream::start(B), Upstream::start(C))
}

fn routed(region: &str) -> Request {
    Request::reviews().header(ROUTING_HEADER, region)
}

#[test]
fn v8_runtime_loads_the_empty_filter_via_ecds() {
    let (a, b, c) = three_regions();
    let cfg = MeshConfig::for_upstreams(&[&a, &b, &c]).with_wasm(WasmFilter::empty());
    let envoy = Envoy::start(&cfg);
    let s = Summary::of(&send_on_one_connection(envoy.addr(), &routed(B), 10));
    assert_eq!((s.ok, s.served_by(B)), (10, 10), "{s}");
    assert!(
        envoy.counter("wasm.envoy.wasm.runtime.v8.created") >= 1,
        "V8 runtime not used: {:?}",
        envoy.counters_with_prefix("wasm.")
    );
    let p = envoy.ecds_stat_prefix();
    assert_eq!(envoy.counter(&format!("{p}update_success")), 1);
    assert_eq!(envoy.counter(&format!("{p}update_rejected")), 0);
}

#[test]
fn header_routes_to_the_region_subset_and_is_removed_before_the_app() {
    let (a, b, c) = three_regions();
    let cfg = MeshConfig::for_upstreams(&[&a, &b, &c]);
    let envoy = Envoy::start(&cfg);
    for region in [A, B, C] {
        let s = Summary::of(&send_on_one_connection(envoy.addr(), &routed(region), 10));
        assert_eq!(
            (s.ok, s.served_by(region)),
            (10, 10),
            "header {region}: {s}"
        );
        assert_eq!(
            s.by_seen_header.get(""),
            Some(&10),
            "header reached the app: {s}"
        );
        assert_eq!(
            envoy.cluster_stat(&cfg.subset_cluster(region), "upstream_rq_total"),
            10,
            "subset cluster of {region}"
        );
    }
    assert_eq!(
        envoy.cluster_stat(&cfg.default_cluster(), "upstream_rq_total"),
        0
    );
}

#[test]
fn no_or_unknown_header_takes_the_default_route_to_the_proxy_region() {
    let (a, b, c) = three_regions();
    // The proxy sits in B: the default route's locality failover prefers B.
    let cfg = MeshConfig::for_upstreams(&[&a, &b, &c]).with_proxy_region(B);
    let envoy = Envoy::start(&cfg);
    let s = Summary::of(&send_on_one_connection(
        envoy.addr(),
        &Request::reviews(),
        10,
    ));
    assert_eq!((s.ok, s.served_by(B)), (10, 10), "{s}");
    // A value that names no region also falls through to the default route, and the
    // default route does not remove the header: the app sees it.
    let s = Summary::of(&send_on_one_connection(envoy.addr(), &routed("mars"), 10));
    assert_eq!((s.ok, s.served_by(B)), (10, 10), "{s}");
    assert_eq!(s.by_seen_header.get("mars"), Some(&10), "{s}");
    assert_eq!(
        envoy.cluster_stat(&cfg.default_cluster(), "upstream_rq_total"),
        20
    );
    assert!(
        wait_until(Duration::from_secs(2), || envoy
            .access_log()
            .iter()
            .filter(|l| l.contains("route=default"))
            .count()
            == 20),
        "access log: {:?}",
        envoy.access_log()
    );
}

#[test]
fn header_name_case_is_ignored_and_any_value_of_a_duplicated_header_matches() {
    let (a, b, c) = three_regions();
    let cfg = MeshConfig::for_upstreams(&[&a, &b, &c]);
    let envoy = Envoy::start(&cfg);
    let mixed = Request::reviews().header("X-GeoLB-Region", C);
    let s = Summary::of(&send_on_one_connection(envoy.addr(), &mixed, 5));
    assert_eq!((s.ok, s.served_by(C)), (5, 5), "mixed case: {s}");
    // A header sent twice: a route matches if ANY of its values matches, and the first
    // matching route in route order wins (B's route comes before C's, whatever the order
    // of the values). All values are removed. So without a filter a client can steer with
    // a duplicated header: the filter must REPLACE the header (all values).
    for values in [[B, C], [C, B], ["mars", B]] {
        let dup = Request::reviews()
            .header(ROUTING_HEADER, values[0])
            .header(ROUTING_HEADER, values[1]);
        let s = Summary::of(&send_on_one_connection(envoy.addr(), &dup, 5));
        assert_eq!((s.ok, s.served_by(B)), (5, 5), "duplicated {values:?}: {s}");
        assert_eq!(
            s.by_seen_header.get(""),
            Some(&5),
            "duplicated {values:?}: {s}"
        );
    }
    // One header line with a comma-joined value matches no region: default route (proxy
    // region A), and the default route leaves the header for the app to see.
    let joined = Request::reviews().header(ROUTING_HEADER, &format!("{B},{C}"));
    let s = Summary::of(&send_on_one_connection(envoy.addr(), &joined, 5));
    assert_eq!((s.ok, s.served_by(A)), (5, 5), "comma-joined: {s}");
    assert_eq!(
        s.by_seen_header.get(&format!("{B},{C}")),
        Some(&5),
        "comma-joined: {s}"
    );
}

#[test]
fn prefer_region_with_region_stopped_serves_from_priority_1_with_zero_errors() {
    let (mut a, b, c) = three_regions();
    let cfg = MeshConfig::for_upstreams(&[&a, &b, &c]);
    let envoy = Envoy::start(&cfg);
    let s = Summary::of(&send_on_one_connection(envoy.addr(), &routed(A), 5));
    assert_eq!(s.served_by(A), 5, "{s}");
    a.stop();
    let s = Summary::of(&send_on_one_connection(envoy.addr(), &routed(A), 20));
    assert_eq!(
        s.failures(),
        0,
        "retries + ejection must hide the dead region: {s}"
    );
    assert_eq!(s.served_by(B) + s.served_by(C), 20, "{s}");
    let ejections = envoy.cluster_stat(
        &cfg.subset_cluster(A),
        "outlier_detection.ejections_enforced_total",
    );
    assert!(ejections >= 1, "A's host was not ejected");
}

#[test]
fn prefer_region_with_region_stopped_and_no_retries_costs_the_errors_before_ejection_lands() {
    let (mut a, b, c) = three_regions();
    let mut cfg = MeshConfig::for_upstreams(&[&a, &b, &c]);
    cfg.retry = None;
    let envoy = Envoy::start(&cfg);
    // Settle the worker and the main thread before the failure (Envoy just started).
    let s = Summary::of(&send_on_one_connection(envoy.addr(), &routed(B), 3));
    assert_eq!(s.served_by(B), 3, "{s}");
    a.stop();
    let mut conn = Connection::open(envoy.addr()).expect("connect to envoy");
    let start = Instant::now();
    let mut timed = Vec::new();
    for _ in 0..20 {
        let response = conn.send(&routed(A)).expect("a response");
        timed.push((start.elapsed(), response));
    }
    let failed = timed.iter().take_while(|(_, r)| r.status == 503).count();
    assert!(
        failed >= 1,
        "the first request to the stopped region did not fail"
    );
    let first = &timed[0].1;
    assert!(
        first
            .body_str()
            .contains("upstream connect error or disconnect/reset before headers"),
        "{:?}",
        first.body_str()
    );
    // The first request fails and ejects A's host. Envoy applies an ejection on the main
    // thread, so the worker keeps sending to A until it learns of it: one request on an
    // idle machine, a few more while the main thread is busy (9 were seen in 2 ms on a
    // loaded CI run). Once it lands, nothing reaches A again.
    let (landed_after, _) = timed[failed - 1];
    assert!(
        landed_after < Duration::from_millis(250),
        "{failed} failures, the last {landed_after:?} after the first request"
    );
    let rest: Vec<Response> = timed.into_iter().skip(failed).map(|(_, r)| r).collect();
    let s = Summary::of(&rest.into_iter().map(Ok).collect::<Vec<_>>());
    assert_eq!(s.failures(), 0, "a request after the ejection failed: {s}");
    assert_eq!(s.served_by(B) + s.served_by(C), 20 - failed, "{s}");
    assert_eq!(
        envoy.cluster_stat(
            &cfg.subset_cluster(A),
            "outlier_detection.ejections_enforced_total"
        ),
        1
    );
}

#[test]
fn prefer_region_with_region_answering_503_fails_over_with_zero_errors() {
    let (a, b, c) = three_regions();
    let cfg = MeshConfig::for_upstreams(&[&a, &b, &c]);
    let envoy = Envoy::start(&cfg);
    a.set_failing(503);
    let s = Summary::of(&send_on_one_connection(envoy.addr(), &routed(A), 20));
    assert_eq!(s.failures(), 0, "{s}");
    assert_eq!(s.served_by(B) + s.served_by(C), 20, "{s}");
    assert_eq!(
        a.served(),
        1,
        "A answered more than the one 503 that ejected it"
    );
}

#[test]
fn strict_region_with_region_stopped_fails_every_request() {
    let (mut a, b, c) = three_regions();
    let mut cfg = MeshConfig::for_upstreams(&[&a, &b, &c]);
    cfg.subset_style = SubsetStyle::StrictRegion;
    let envoy = Envoy::start(&cfg);
    a.stop();
    let results = send_on_one_connection(envoy.addr(), &routed(A), 10);
    let s = Summary::of(&results);
    assert_eq!(s.non_2xx.get(&503), Some(&10), "{s}");
    // The first attempt's connect failure ejects the only host; its retries and every
    // later request find no healthy upstream (panic threshold 0): local 503, flag UH.
    // The ejection reaches the worker from the main thread, so the first retry may
    // still try the host (2 or 3 attempts); later requests make one.
    for r in &results {
        let body = r.as_ref().map(Response::body_str).unwrap_or_default();
        assert_eq!(body, "no healthy upstream", "{s}");
    }
    assert!(
        wait_until(Duration::from_secs(2), || envoy.access_log().len() == 10),
        "{:?}",
        envoy.access_log()
    );
    let log = envoy.access_log();
    assert!(
        log[0].contains(" 503 UH ")
            && (log[0].contains(" attempts=2 ") || log[0].contains(" attempts=3 ")),
        "{log:?}"
    );
    assert!(
        log[9].contains(" 503 UH ") && log[9].contains(" attempts=1 "),
        "{log:?}"
    );
}

#[test]
fn without_ejection_previous_hosts_retries_cannot_leave_priority_0() {
    let (mut a, b, c) = three_regions();
    let mut cfg = MeshConfig::for_upstreams(&[&a, &b, &c]);
    cfg.outlier.consecutive_5xx = 1000; // never ejected
    cfg.retry = Some(RetryPolicy {
        previous_priorities: false,
        ..RetryPolicy::default()
    });
    let envoy = Envoy::start(&cfg);
    a.stop();
    let s = Summary::of(&send_on_one_connection(envoy.addr(), &routed(A), 5));
    assert_eq!(s.non_2xx.get(&503), Some(&5), "{s}");
}

#[test]
fn without_ejection_previous_priorities_retries_reach_priority_1() {
    let (mut a, b, c) = three_regions();
    let mut cfg = MeshConfig::for_upstreams(&[&a, &b, &c]);
    cfg.outlier.consecutive_5xx = 1000; // never ejected
    cfg.retry = Some(RetryPolicy {
        previous_priorities: true,
        ..RetryPolicy::default()
    });
    let envoy = Envoy::start(&cfg);
    a.stop();
    let s = Summary::of(&send_on_one_connection(envoy.addr(), &routed(A), 10));
    assert_eq!(s.failures(), 0, "{s}");
    assert_eq!(s.served_by(B) + s.served_by(C), 10, "{s}");
}

#[test]
fn stopped_region_takes_traffic_again_after_restart() {
    let (mut a, b, c) = three_regions();
    let mut cfg = MeshConfig::for_upstreams(&[&a, &b, &c]);
    cfg.outlier.interval_ms = 200;
    cfg.outlier.base_ejection_time_ms = 500;
    let envoy = Envoy::start(&cfg);
    a.stop();
    let s = Summary::of(&send_on_one_connection(envoy.addr(), &routed(A), 5));
    assert_eq!((s.failures(), s.served_by(A)), (0, 0), "{s}");
    a.restart();
    let back = wait_until(Duration::from_secs(5), || {
        let s = Summary::of(&send_on_one_connection(envoy.addr(), &routed(A), 1));
        assert_eq!(s.failures(), 0, "{s}");
        s.served_by(A) == 1
    });
    assert!(back, "A never took traffic again: {}", envoy.clusters());
}

#[test]
fn ecds_plugin_config_updates_apply_or_are_rejected_without_client_errors() {
    let (a, b, c) = three_regions();
    let cfg = MeshConfig::for_upstreams(&[&a, &b, &c]).with_wasm(WasmFilter::empty());
    let mut envoy = Envoy::start(&cfg);
    let addr = envoy.addr();
    let p = envoy.ecds_stat_prefix();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let results = std::thread::scope(|s| {
        let load = s.spawn(|| {
            let mut all = Vec::new();
            let mut conn = Connection::open(addr).expect("connect");
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && all.len() < 20_000 {
                all.push(conn.send(&routed(B)));
                std::thread::sleep(Duration::from_millis(2));
            }
            all
        });
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            envoy.update_plugin_config(r#"{"v":2}"#),
            UpdateOutcome::Applied
        );
        assert_eq!(
            envoy.update_plugin_config("reject"),
            UpdateOutcome::Rejected
        );
        assert_eq!(
            envoy.update_plugin_config(r#"{"v":3}"#),
            UpdateOutcome::Applied
        );
        std::thread::sleep(Duration::from_millis(100));
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        load.join().expect("load thread")
    });
    let s = Summary::of(&results);
    assert!(s.total > 20, "too few requests during the updates: {s}");
    assert_eq!(s.failures(), 0, "{s}");
    assert_eq!(envoy.counter(&format!("{p}update_success")), 3);
    assert_eq!(envoy.counter(&format!("{p}update_rejected")), 1);
    assert_eq!(envoy.counter(&format!("{p}config_fail")), 1);
    // config_reload counts every attempt, the rejected one included (measured).
    assert_eq!(envoy.counter(&format!("{p}config_reload")), 4);
}

#[test]
fn rejected_inline_plugin_config_makes_envoy_exit_at_startup() {
    let (a, b, c) = three_regions();
    let mut w = WasmFilter::empty().delivery(Delivery::Inline);
    w.plugin_config = "reject".into();
    let cfg = MeshConfig::for_upstreams(&[&a, &b, &c]).with_wasm(w);
    match Envoy::try_start(&cfg) {
        Ok(mut envoy) => panic!(
            "envoy started with a rejected inline plugin config (running: {})",
            envoy.is_running()
        ),
        Err(e) => {
            assert_eq!(e.exit.and_then(|s| s.code()), Some(1), "{e}");
            let _ = std::fs::remove_dir_all(&e.dir);
        }
    }
}

#[test]
fn rejected_initial_ecds_plugin_config_gives_500_nfcf_until_a_good_update() {
    let (a, b, c) = three_regions();
    for policy in [FailurePolicy::FailOpen, FailurePolicy::FailClosed] {
        let mut w = WasmFilter::empty().failure_policy(policy);
        w.plugin_config = "reject".into();
        let cfg = MeshConfig::for_upstreams(&[&a, &b, &c]).with_wasm(w);
        // Unlike an inline config, Envoy starts and reports LIVE...
        let mut envoy = Envoy::start(&cfg);
        let p = envoy.ecds_stat_prefix();
        assert_eq!(
            envoy.counter(&format!("{p}update_rejected")),
            1,
            "{policy:?}"
        );
        // ...but every stream fails with a local 500, flag NFCF (no filter config found),
        // whatever the failure policy and with or without the routing header.
        for req in [Request::reviews(), routed(B)] {
            let s = Summary::of(&send_on_one_connection(envoy.addr(), &req, 3));
            assert_eq!(s.non_2xx.get(&500), Some(&3), "{policy:?}: {s}");
        }
        assert!(
            wait_until(Duration::from_secs(2), || envoy.access_log().len() == 6),
            "{:?}",
            envoy.access_log()
        );
        assert!(
            envoy.access_log().iter().all(|l| l.contains(" 500 NFCF ")),
            "{:?}",
            envoy.access_log()
        );
        // A good config heals it without a restart.
        assert_eq!(envoy.update_plugin_config("{}"), UpdateOutcome::Applied);
        let s = Summary::of(&send_on_one_connection(envoy.addr(), &routed(B), 3));
        assert_eq!((s.ok, s.served_by(B)), (3, 3), "{policy:?}: {s}");
    }
}

#[test]
fn validate_mode_runs_on_configure() {
    let (a, b, c) = three_regions();
    let cfg = MeshConfig::for_upstreams(&[&a, &b, &c]).with_wasm(WasmFilter::empty());
    Envoy::validate(&cfg).expect("a valid config");
    let mut bad = cfg.clone();
    if let Some(w) = bad.wasm.as_mut() {
        w.plugin_config = "reject".into();
    }
    let err = Envoy::validate(&bad).expect_err("validate must run on_configure");
    assert!(err.contains("Unable to create Wasm plugin"), "{err}");
}

/// The TEST-ONLY probe filter (`tests/xds-probe`): reports `xds.cluster_name` /
/// `xds.route_name` as read in each callback, and sets the routing header on request.
const XDS_PROBE_WASM: &str = "xds_probe.wasm";

/// One probed request: what the probe read, and where Envoy sent it.
#[derive(Debug, PartialEq, Eq)]
struct Probed {
    request_cluster: String,
    request_route: String,
    after_set_cluster: Option<String>,
    response_cluster: String,
    served_by: String,
}

fn probe(envoy: &Envoy, req: &Request) -> Probed {
    let r = send_one(envoy.addr(), req).expect("a response");
    let header = |name: &str| r.header(name).map(str::to_string);
    let probed = Probed {
        request_cluster: header("x-probe-request-cluster").unwrap_or_default(),
        request_route: header("x-probe-request-route").unwrap_or_default(),
        after_set_cluster: header("x-probe-after-set-cluster"),
        response_cluster: header("x-probe-response-cluster").unwrap_or_default(),
        served_by: r.served_region().unwrap_or("-").to_string(),
    };
    assert_eq!(
        r.seen_routing_header(),
        Some(""),
        "a region route removes the header; {probed:?}"
    );
    probed
}

/// geolb's gateway lookup: a filter whose `:authority` names no service asks Envoy for
/// the cluster of the route it selected, `outbound|PORT|SUBSET|HOST`, takes HOST from it,
/// and sets the routing header. Pinned here: in the request-headers callback,
/// `["xds", "cluster_name"]` names the cluster of the route selected with the headers
/// as they arrived (the fallback route's, or a client-sent header's region route), and a
/// header set after that read still re-routes (ABI 0.2.1 clears the route cache).
/// Inside that callback the property keeps the old route after the change.
#[test]
fn request_callback_reads_the_selected_cluster_and_a_later_header_change_reroutes() {
    let (a, b, c) = three_regions();
    let cfg = MeshConfig::for_upstreams(&[&a, &b, &c])
        .with_wasm(WasmFilter::new(wasm_module(XDS_PROBE_WASM), "{}"));
    let envoy = Envoy::start(&cfg);
    let (fallback, subset) = (cfg.default_cluster(), |r: &str| cfg.subset_cluster(r));
    let set = |req: Request, region: &str| req.header("x-probe-set-region", region);
    // As they arrived, no header: the route without a header match (at an ingress
    // gateway, geolb's fallback route) and its cluster; the proxy's region serves.
    let plain = probe(&envoy, &Request::reviews());
    assert_eq!(
        plain,
        Probed {
            request_cluster: fallback.clone(),
            request_route: "default".into(),
            after_set_cluster: None,
            response_cluster: fallback.clone(),
            served_by: A.into(),
        }
    );
    // A client-sent header: its region route, read before any filter change.
    assert_eq!(
        probe(&envoy, &routed(B)),
        Probed {
            request_cluster: subset(B),
            request_route: format!("geolb-{B}"),
            after_set_cluster: None,
            response_cluster: subset(B),
            served_by: B.into(),
        }
    );
    // The filter reads the property, THEN sets the header: the new route serves; the
    // property still names the old cluster until the request leaves the callback.
    let arrivals = [
        (Request::reviews(), fallback.clone(), "default".to_string()),
        (routed(B), subset(B), format!("geolb-{B}")),
    ];
    for (arrived, cluster, route) in arrivals {
        assert_eq!(
            probe(&envoy, &set(arrived, C)),
            Probed {
                request_cluster: cluster.clone(),
                request_route: route,
                after_set_cluster: Some(cluster),
                response_cluster: subset(C),
                served_by: C.into(),
            }
        );
    }
    assert_eq!(envoy.cluster_stat(&subset(C), "upstream_rq_total"), 2);
}

/// An authority no virtual host takes has no route, so no cluster: the property is
/// absent (the lookup finds no service and the filter leaves the request alone).
#[test]
fn request_callback_without_a_route_reads_no_cluster() {
    let (a, b, c) = three_regions();
    let cfg = MeshConfig::for_upstreams(&[&a, &b, &c])
        .with_wasm(WasmFilter::new(wasm_module(XDS_PROBE_WASM), "{}"));
    let envoy = Envoy::start(&cfg);
    let r = send_one(
        envoy.addr(),
        &Request::reviews().host("bookinfo.example.com"),
    )
    .expect("a response");
    assert_eq!(r.status, 404, "{:?}", r.body_str());
    assert_eq!(
        (
            r.header("x-probe-request-cluster"),
            r.header("x-probe-request-route")
        ),
        (Some("-"), Some("-")),
        "{:?}",
        r.headers
    );
}

// ---------------------------------------------------------------------------------------
// Route re-selection after a wasm filter changes the routing header.
//
// Envoy caches the route it selects for a request; a filter that changes a request header
// the routes match on gets the new route only if the cache is cleared before the router
// asks for the route. Envoy's wasm host clears it by itself when a module modifies the
// request headers, but, since Envoy 1.33, only for modules declaring a Proxy-Wasm ABI
// version up to 0.2.1 (release notes: not cleared when the version "is larger than
// 0.2.1"); a module declaring a newer version must call the foreign function
// `clear_route_cache`. The Rust SDK 0.2.5 declares 0.2.1.
//
// What Envoy 1.40 (proxy-wasm-cpp-host) knows: the ABI versions 0.1.0, 0.2.0 and 0.2.1,
// read from the first exported `proxy_abi_version_*` function it recognises; a module
// declaring no known version is not loaded ("Missing or unknown Proxy-Wasm ABI version").
// So the case where the implicit re-selection does not happen (a newer ABI) cannot occur
// with a loadable module on Envoy 1.40: pinned by
// `module_declaring_an_unknown_abi_version_is_not_loaded`. What a header change without
// clearing the cache does is shown with a native filter instead:
// `native_filter_header_change_without_clearing_the_cache_does_not_reroute`.
// ---------------------------------------------------------------------------------------

/// Copies of the probe (which declares ABI 0.2.1, the Rust SDK's) that differ only in
/// the ABI version they declare (`scripts/build-wasm.sh` patches the marker's name).
const XDS_PROBE_ABI_0_2_0_WASM: &str = "xds_probe_abi_0_2_0.wasm";
const XDS_PROBE_ABI_0_2_2_WASM: &str = "xds_probe_abi_0_2_2.wasm";

/// The header a [`RouteWitness`] before the wasm filter sets to the route it read.
const WITNESS_BEFORE: &str = "x-witness-before-wasm";
/// The header a [`RouteWitness`] after the wasm filter (before the router) sets.
const WITNESS_AFTER: &str = "x-witness-after-wasm";

/// One request the probe re-routed (or not): what it read and called, what the route
/// witnesses saw, and where Envoy sent the request.
#[derive(Debug, PartialEq, Eq)]
struct Rerouted {
    /// `xds.cluster_name` in the request callback, before the header change.
    request_cluster: String,
    /// What `clear_route_cache` returned (`None`: not called).
    clear_route_cache: Option<String>,
    /// `xds.cluster_name` right after that call (`None`: not called).
    after_clear_cluster: Option<String>,
    /// `xds.cluster_name` in the response callback.
    response_cluster: String,
    /// The route the filter before the wasm filter read (`None`: no witness).
    witness_before: Option<String>,
    /// The route the filter after the wasm filter read (`None`: no witness).
    witness_after: Option<String>,
    served_by: String,
}

impl Rerouted {
    /// A request that arrived on `arrival` (its cluster, and the route name a witness
    /// before the module reads, when there are witnesses) and that the module re-routed
    /// to C, calling `clear_route_cache` or not.
    fn to_c(cfg: &MeshConfig, arrival: &str, witnessed: Option<&str>, clear: bool) -> Rerouted {
        Rerouted {
            request_cluster: arrival.to_string(),
            clear_route_cache: clear.then(|| "ok".to_string()),
            after_clear_cluster: clear.then(|| arrival.to_string()),
            response_cluster: cfg.subset_cluster(C),
            witness_before: witnessed.map(str::to_string),
            witness_after: witnessed.map(|_| format!("geolb-{C}")),
            served_by: C.into(),
        }
    }
}

/// Sends `req` (with `x-probe-set-region: set_region`, and `x-probe-clear-route-cache`
/// when `clear`) and reads the witnesses' headers from the upstream that served it.
fn reroute(
    envoy: &Envoy,
    upstreams: &[&Upstream],
    req: Request,
    set_region: &str,
    clear: bool,
) -> Rerouted {
    let mut req = req.header("x-probe-set-region", set_region);
    if clear {
        req = req.header("x-probe-clear-route-cache", "1");
    }
    let r = send_one(envoy.addr(), &req).expect("a response");
    assert_eq!(r.status, 200, "{:?}", r.body_str());
    let served_by = r.served_region().unwrap_or("-").to_string();
    let seen = upstreams
        .iter()
        .find(|u| u.region() == served_by)
        .map(|u| u.last_request_headers())
        .unwrap_or_default();
    let witness = |name: &str| {
        seen.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let header = |name: &str| r.header(name).map(str::to_string);
    Rerouted {
        request_cluster: header("x-probe-request-cluster").unwrap_or_default(),
        clear_route_cache: header("x-probe-clear-route-cache"),
        after_clear_cluster: header("x-probe-after-clear-cluster"),
        response_cluster: header("x-probe-response-cluster").unwrap_or_default(),
        witness_before: witness(WITNESS_BEFORE),
        witness_after: witness(WITNESS_AFTER),
        served_by,
    }
}

/// The probe module `file` in front of the router, optionally with a route witness on
/// each side of it.
fn probe_config(upstreams: &[&Upstream], file: &str, witnesses: bool) -> MeshConfig {
    let mut cfg =
        MeshConfig::for_upstreams(upstreams).with_wasm(WasmFilter::new(wasm_module(file), "{}"));
    if witnesses {
        cfg.route_witnesses = vec![
            RouteWitness::new(
                "route-witness-before",
                WITNESS_BEFORE,
                WitnessPosition::BeforeWasm,
            ),
            RouteWitness::new(
                "route-witness-after",
                WITNESS_AFTER,
                WitnessPosition::AfterWasm,
            ),
        ];
    }
    cfg
}

/// Pins, for ABI 0.2.1 (the Rust SDK 0.2.5's, so geolb's): a routing header the module
/// replaces in `on_http_request_headers` re-selects the route WITHOUT any explicit call
/// (Envoy clears the route cache on the header change by itself), and equally WITH a
/// call of the foreign function `clear_route_cache` right after the change, which the
/// host offers: the call returns `Ok` with no bytes (`Ok(None)` in the SDK). Both from
/// the route without header and from a client-sent header's region route. After the
/// explicit call `xds.cluster_name` still names the route of the arrival inside the
/// callback (the new route is resolved when the router asks for it).
#[test]
fn header_change_reroutes_with_and_without_clear_route_cache() {
    let (a, b, c) = three_regions();
    let ups = [&a, &b, &c];
    let cfg = probe_config(&ups, XDS_PROBE_WASM, false);
    let envoy = Envoy::start(&cfg);
    let arrivals = [
        (Request::reviews(), cfg.default_cluster()),
        (routed(B), cfg.subset_cluster(B)),
    ];
    for (arrived, cluster) in arrivals {
        for clear in [false, true] {
            assert_eq!(
                reroute(&envoy, &ups, arrived.clone(), C, clear),
                Rerouted::to_c(&cfg, &cluster, None, clear),
                "arrived on {cluster}, clear_route_cache called: {clear}"
            );
        }
    }
    assert_eq!(
        envoy.cluster_stat(&cfg.subset_cluster(C), "upstream_rq_total"),
        4
    );
}

/// Pins, for ABI 0.2.1: the re-selection also happens when a filter BEFORE the wasm
/// filter already resolved and used the route. That filter (a native
/// `envoy.filters.http.header_mutation` with per-route configs, a [`RouteWitness`])
/// applied the per-route config of the ORIGINAL route (the app receives its name), then
/// the module replaced the header, and a witness after the module and the router both
/// got the NEW route: the region the module named serves. With and without the explicit
/// `clear_route_cache` call (which returns `Ok`, no bytes). Without a header change both
/// witnesses see the same route (control).
#[test]
fn header_change_reroutes_after_an_earlier_filter_read_the_route() {
    let (a, b, c) = three_regions();
    let ups = [&a, &b, &c];
    let cfg = probe_config(&ups, XDS_PROBE_WASM, true);
    let envoy = Envoy::start(&cfg);
    // Control: the probe sets the header to the value it already has (B): same route.
    assert_eq!(
        reroute(&envoy, &ups, routed(B), B, false),
        Rerouted {
            request_cluster: cfg.subset_cluster(B),
            clear_route_cache: None,
            after_clear_cluster: None,
            response_cluster: cfg.subset_cluster(B),
            witness_before: Some(format!("geolb-{B}")),
            witness_after: Some(format!("geolb-{B}")),
            served_by: B.into(),
        }
    );
    let arrivals = [
        (
            Request::reviews(),
            cfg.default_cluster(),
            "default".to_string(),
        ),
        (routed(B), cfg.subset_cluster(B), format!("geolb-{B}")),
    ];
    for (arrived, cluster, route) in arrivals {
        for clear in [false, true] {
            assert_eq!(
                reroute(&envoy, &ups, arrived.clone(), C, clear),
                Rerouted::to_c(&cfg, &cluster, Some(&route), clear),
                "arrived on route {route}, clear_route_cache called: {clear}"
            );
        }
    }
    assert_eq!(
        envoy.cluster_stat(&cfg.subset_cluster(C), "upstream_rq_total"),
        4
    );
}

/// Pins, for ABI 0.2.0 (the same probe, declaring 0.2.0): Envoy 1.40 clears the route
/// cache on a header change for it too (0.2.0 is not "larger than 0.2.1"), with and
/// without a filter that read the route before, and `clear_route_cache` is offered
/// as well.
#[test]
fn abi_0_2_0_module_header_change_reroutes_too() {
    let (a, b, c) = three_regions();
    let ups = [&a, &b, &c];
    let cfg = probe_config(&ups, XDS_PROBE_ABI_0_2_0_WASM, true);
    let envoy = Envoy::start(&cfg);
    for clear in [false, true] {
        assert_eq!(
            reroute(&envoy, &ups, Request::reviews(), C, clear),
            Rerouted::to_c(&cfg, &cfg.default_cluster(), Some("default"), clear),
            "clear_route_cache called: {clear}"
        );
    }
}

/// Pins why the case "Envoy does not clear the route cache by itself" cannot be shown on
/// Envoy 1.40: it applies to modules declaring an ABI newer than 0.2.1, and Envoy 1.40
/// loads none. The same probe declaring 0.2.2 is refused as "Missing or unknown
/// Proxy-Wasm ABI version": `envoy --mode validate` fails, and delivered by ECDS the
/// filter config is rejected and requests get a local 500 (NFCF).
#[test]
fn module_declaring_an_unknown_abi_version_is_not_loaded() {
    let (a, b, c) = three_regions();
    let ups = [&a, &b, &c];
    let cfg = probe_config(&ups, XDS_PROBE_ABI_0_2_2_WASM, false);
    let err = Envoy::validate(&cfg).expect_err("an unknown ABI must not load");
    assert!(
        err.contains("Missing or unknown Proxy-Wasm ABI version"),
        "{err}"
    );
    let envoy = Envoy::start(&cfg);
    let p = envoy.ecds_stat_prefix();
    assert_eq!(envoy.counter(&format!("{p}update_rejected")), 1);
    let s = Summary::of(&send_on_one_connection(envoy.addr(), &routed(B), 3));
    assert_eq!(s.non_2xx.get(&500), Some(&3), "{s}");
}

/// The control for the tests above: the route cache is real, and changing the header is
/// not enough by itself. A NATIVE filter (`envoy.filters.http.header_mutation`, right
/// before the router) that sets the routing header to C does not clear the cache, and the
/// route selected with the headers as they arrived serves: a client-sent B goes to B,
/// no header takes the default route to the proxy's region A, whose app receives the
/// changed header (the default route does not remove it). The same holds behind a route
/// witness that read the route first. So the wasm re-routes above are the host clearing
/// the cache (implicitly, or by `clear_route_cache`).
#[test]
fn native_filter_header_change_without_clearing_the_cache_does_not_reroute() {
    let (a, b, c) = three_regions();
    for witnesses in [false, true] {
        let mut cfg = MeshConfig::for_upstreams(&[&a, &b, &c]);
        cfg.native_header_set = Some((ROUTING_HEADER.into(), C.into()));
        if witnesses {
            cfg.route_witnesses = vec![RouteWitness::new(
                "route-witness-before",
                WITNESS_BEFORE,
                WitnessPosition::BeforeWasm,
            )];
        }
        let envoy = Envoy::start(&cfg);
        let s = Summary::of(&send_on_one_connection(envoy.addr(), &routed(B), 5));
        assert_eq!((s.ok, s.served_by(B)), (5, 5), "witnesses {witnesses}: {s}");
        let s = Summary::of(&send_on_one_connection(
            envoy.addr(),
            &Request::reviews(),
            5,
        ));
        assert_eq!((s.ok, s.served_by(A)), (5, 5), "witnesses {witnesses}: {s}");
        assert_eq!(
            s.by_seen_header.get(C),
            Some(&5),
            "witnesses {witnesses}: {s}"
        );
        assert_eq!(
            envoy.cluster_stat(&cfg.subset_cluster(C), "upstream_rq_total"),
            0
        );
        if witnesses {
            let seen = a.last_request_headers();
            let before = seen
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(WITNESS_BEFORE));
            assert_eq!(before.map(|(_, v)| v.as_str()), Some("default"), "{seen:?}");
        }
    }
}

/// How the filter learns its own region (`geolb_filter::root::NODE_CLUSTER_ID` /
/// `NODE_LOCALITY_REGION`): in Envoy 1.40, `["xds", "node", "metadata", "CLUSTER_ID"]`
/// and `["xds", "node", "metadata", "NETWORK"]` read as the bare UTF-8 text of the
/// bootstrap's string values (no protobuf framing, no quotes); without the metadata
/// field they are absent. `["xds", "node", "locality", "region"]` reads the region where
/// istio-agent wrote a locality (platform metadata, or the `istio-locality` pod label
/// split at its dots) and is absent when it wrote `locality: {}` (ACK, on-premises,
/// MetalLB).
#[test]
fn the_node_tells_its_cluster_id_network_and_locality_as_bare_text() {
    let ups = [Upstream::start(A), Upstream::start(B)];
    let node_readings = |cfg: MeshConfig| -> [String; 3] {
        let cfg = cfg.with_wasm(WasmFilter::new(wasm_module(XDS_PROBE_WASM), "{}"));
        let envoy = Envoy::start(&cfg);
        let r = send_one(
            envoy.addr(),
            &Request::reviews().header("x-probe-node", "1"),
        )
        .expect("a response");
        ["cluster-id", "network", "region"].map(|what| {
            r.header(&format!("x-probe-node-{what}"))
                .unwrap_or("(no reading)")
                .to_owned()
        })
    };
    let base = || MeshConfig::for_upstreams(&[&ups[0], &ups[1]]).with_proxy_region(A);
    assert_eq!(
        node_readings(base().with_node("ack-hangzhou", NodeLocality::Absent)),
        ["ack-hangzhou", "-", "-"],
        "as on ACK: a cluster ID, no network, no locality"
    );
    assert_eq!(
        node_readings(
            base()
                .with_node("c5f1e2d3a4b5", NodeLocality::Platform)
                .with_network("network-c1")
        ),
        ["c5f1e2d3a4b5", "network-c1", A],
        "locality from platform metadata, network set"
    );
    assert_eq!(
        node_readings(base().with_node("ack-hangzhou", NodeLocality::PodLabel)),
        ["ack-hangzhou", "-", A],
        "locality from the istio-locality pod label"
    );
}
