//! geolb in a real Envoy 1.40 (V8, 2 workers): scenarios a-h, each with exact counts.
//! Envoy's configuration is what istiod builds from geolb's routing contract (header
//! routes to prefer-R subset clusters, a default route, outlier detection, retries),
//! written by hand (`MeshConfig`); see tests/README.md. The proxy runs as on ACK: its
//! bootstrap has no locality, its `CLUSTER_ID` is `ack-hangzhou` and the policies map
//! it to cn-hangzhou (`clusterRegions`); one test checks the split in the other two
//! kinds of clusters, and that without the table such a proxy has no region.
//!
//! Run one: `cargo test -p geolb-e2e --test scenarios <name>`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use geolb_e2e::istiod::NodeLocality;
use geolb_e2e::*;
use geolb_policy::testing::{BJ, HZ, SH};
use serde_json::{Value, json};

/// Seed A's policy: failover both ways, and from cn-hangzhou 90/10.
fn seed_a_policy(base_ejection: &str, ramp: &str) -> Value {
    json!({
        "apiVersion": "geolb.io/v1alpha1",
        "routeToken": ROUTE_TOKEN,
        "regions": [HZ, SH],
        "clusterRegions": { ACK_HANGZHOU: HZ, "ack-shanghai": SH },
        "health": { "consecutiveFailures": 1, "baseEjectionTime": base_ejection, "recoveryRamp": ramp },
        "services": [{
            "name": "reviews.default",
            "hosts": ["reviews.default.svc.cluster.local"],
            "regions": [HZ, SH],
            "failover": { HZ: [SH], SH: [HZ] },
            "distribute": { HZ: { HZ: 90, SH: 10 } }
        }]
    })
}

/// Three regions: from cn-hangzhou 80/20, cn-shanghai fails over to cn-beijing.
fn three_region_policy() -> Value {
    json!({
        "apiVersion": "geolb.io/v1alpha1",
        "routeToken": ROUTE_TOKEN,
        "regions": [HZ, SH, BJ],
        "clusterRegions": { ACK_HANGZHOU: HZ, "ack-shanghai": SH, "ack-beijing": BJ },
        "health": { "consecutiveFailures": 1, "baseEjectionTime": "30s" },
        "services": [{
            "name": "reviews.default",
            "hosts": ["reviews.default.svc.cluster.local"],
            "regions": [HZ, SH, BJ],
            "failover": { HZ: [SH, BJ], SH: [BJ, HZ], BJ: [HZ, SH] },
            "distribute": { HZ: { HZ: 80, SH: 20 } }
        }]
    })
}

/// The proxy's cluster: `CLUSTER_ID` of its node.
const ACK_HANGZHOU: &str = "ack-hangzhou";

/// The sidecar for `upstreams` with `policy`, its node as on ACK (no locality,
/// `CLUSTER_ID` ack-hangzhou).
fn start(upstreams: &[&Upstream], policy: &Value) -> Envoy {
    start_in(NodeLocality::Absent, upstreams, policy)
}

fn start_in(flavour: NodeLocality, upstreams: &[&Upstream], policy: &Value) -> Envoy {
    let cfg = MeshConfig::for_upstreams(upstreams)
        .with_node(ACK_HANGZHOU, flavour)
        .with_wasm(WasmFilter::geolb(&policy.to_string()));
    Envoy::start(&cfg)
}

fn regions_of(results: &[std::io::Result<Response>]) -> Vec<String> {
    results
        .iter()
        .map(|r| match r {
            Ok(resp) if resp.is_success() => resp.served_region().unwrap_or("?").to_owned(),
            Ok(resp) => format!("HTTP {}", resp.status),
            Err(e) => format!("error {e}"),
        })
        .collect()
}

/// Bookinfo's reviews as seed A has them: v1 (no stars) in cn-hangzhou, v2 (two
/// "full stars" lines per page) in cn-shanghai.
fn bookinfo_reviews() -> (Upstream, Upstream) {
    let (hz, sh) = (Upstream::start(HZ), Upstream::start(SH));
    hz.set_body(Body::ReviewsV1);
    sh.set_body(Body::ReviewsV2);
    (hz, sh)
}

/// The seed's own check: `for i in $(seq 10); do curl …; done | grep full.stars | wc -l`.
fn full_stars_lines(results: &[std::io::Result<Response>]) -> usize {
    results
        .iter()
        .flatten()
        .map(|r| {
            r.body_str()
                .lines()
                .filter(|l| l.contains("full stars"))
                .count()
        })
        .sum()
}

fn count(names: &[String], region: &str) -> usize {
    names.iter().filter(|n| *n == region).count()
}

/// A geolb counter, after the filter's next tick has added its counts (every 100 ms).
fn counter(envoy: &Envoy, metric: &str, region: &str) -> u64 {
    std::thread::sleep(TICK);
    envoy.counter(&format!(
        "wasmcustom.geolb.{metric};service=reviews.default;region={region}"
    ))
}

/// More than the filter's tick: its counters are flushed, other workers refreshed
/// their copy of the shared health, and served-region checks are re-armed.
const TICK: Duration = Duration::from_millis(250);

#[test]
fn a_distribution_90_10_is_exact_per_ten_requests_on_a_worker() {
    let (hz, sh) = bookinfo_reviews();
    let envoy = start(&[&hz, &sh], &seed_a_policy("30s", "10s"));
    // Seed A: 10 requests, 1 reaches cn-shanghai's v2: 2 "full stars" lines.
    assert_eq!(
        full_stars_lines(&send_on_one_connection(
            envoy.addr(),
            &Request::reviews(),
            10
        )),
        2
    );
    // One connection = one worker: every 10 consecutive requests, exactly 1 in cn-shanghai.
    let names = regions_of(&send_on_one_connection(
        envoy.addr(),
        &Request::reviews(),
        100,
    ));
    for (i, window) in names.windows(10).enumerate() {
        assert_eq!(
            (count(window, HZ), count(window, SH)),
            (9, 1),
            "window at {i}: {window:?}"
        );
    }
    // 1,000 requests, each on a new connection (spread over both workers): 900 +- 2.
    let names = regions_of(&send_on_new_connections(
        envoy.addr(),
        &Request::reviews(),
        1_000,
    ));
    let (to_hz, to_sh) = (count(&names, HZ), count(&names, SH));
    assert_eq!(to_hz + to_sh, 1_000, "every request answered: {names:?}");
    assert!(
        (898..=902).contains(&to_hz),
        "{to_hz} of 1000 in cn-hangzhou"
    );
    eprintln!("1,000 requests on new connections: {to_hz} cn-hangzhou, {to_sh} cn-shanghai");
    // The routing header never reaches the app.
    let last = send_one(envoy.addr(), &Request::reviews()).unwrap();
    assert_eq!(
        last.seen_routing_header(),
        Some(""),
        "the app saw the routing header"
    );
    assert_eq!(
        counter(&envoy, "routed", HZ) + counter(&envoy, "routed", SH),
        1_111
    );
}

/// The seed A split in the three kinds of clusters: the region from `CLUSTER_ID` in
/// the policy's table (no node locality, as on ACK), and from the node locality istio-agent
/// writes from platform metadata or the `istio-locality` label (the table still names
/// the same region). Without the table, the ACK proxy has no region: the filter passes
/// every request through (counted), the default route keeps it in the proxy's region.
#[test]
fn a_the_split_is_the_same_in_every_kind_of_cluster_and_needs_the_table_without_a_locality() {
    let (hz, sh) = bookinfo_reviews();
    for flavour in NodeLocality::ALL {
        let envoy = start_in(flavour, &[&hz, &sh], &seed_a_policy("30s", "10s"));
        let results = send_on_one_connection(envoy.addr(), &Request::reviews(), 10);
        let names = regions_of(&results);
        assert_eq!(
            (count(&names, HZ), count(&names, SH)),
            (9, 1),
            "{flavour}: {names:?}"
        );
        assert_eq!(full_stars_lines(&results), 2, "{flavour}");
    }
    let mut no_table = seed_a_policy("30s", "10s");
    no_table.as_object_mut().unwrap().remove("clusterRegions");
    let envoy = start_in(NodeLocality::Absent, &[&hz, &sh], &no_table);
    let results = send_on_one_connection(envoy.addr(), &Request::reviews(), 10);
    assert_eq!(count(&regions_of(&results), HZ), 10);
    std::thread::sleep(TICK);
    assert_eq!(
        envoy.counter("wasmcustom.geolb.no_source_region;service=reviews.default"),
        10
    );
    assert_eq!(
        envoy
            .try_counter("wasmcustom.geolb.routed;service=reviews.default;region=cn-hangzhou")
            .unwrap_or(0),
        0
    );
    // The same policy with a node locality (platform metadata): routed again.
    let envoy = start_in(NodeLocality::Platform, &[&hz, &sh], &no_table);
    let names = regions_of(&send_on_one_connection(
        envoy.addr(),
        &Request::reviews(),
        10,
    ));
    assert_eq!((count(&names, HZ), count(&names, SH)), (9, 1), "{names:?}");
}

/// Scenario b: cn-hangzhou fails (`break_it`); every request is answered by
/// cn-shanghai. Returns the client-visible errors.
fn failover_errors(break_it: impl FnOnce(&mut Upstream)) -> usize {
    let (mut hz, sh) = (Upstream::start(HZ), Upstream::start(SH));
    let envoy = start(&[&hz, &sh], &seed_a_policy("30s", "10s"));
    let warm = regions_of(&send_on_one_connection(
        envoy.addr(),
        &Request::reviews(),
        10,
    ));
    assert_eq!((count(&warm, HZ), count(&warm, SH)), (9, 1), "{warm:?}");
    break_it(&mut hz);
    std::thread::sleep(TICK);
    let names = regions_of(&send_on_one_connection(
        envoy.addr(),
        &Request::reviews(),
        100,
    ));
    let errors = names.iter().filter(|n| *n != SH && *n != HZ).count();
    eprintln!(
        "client-visible errors after cn-hangzhou failed: {errors} of 100: {:?}",
        &names[..10]
    );
    assert_eq!(
        count(&names, SH) + errors,
        100,
        "only cn-shanghai answers: {names:?}"
    );
    // The filter, not only Envoy, moved the share: cn-hangzhou ejected, its share failed over.
    assert_eq!(counter(&envoy, "ejections", HZ), 1);
    // The first request of cn-hangzhou's share found it broken; the other 89 of its 90
    // went down its chain.
    assert_eq!(counter(&envoy, "failovers", HZ), 89);
    errors
}

#[test]
fn b_failover_when_the_region_is_stopped() {
    assert_eq!(failover_errors(Upstream::stop), 0, "client-visible errors");
}

#[test]
fn b_failover_when_the_region_answers_503() {
    assert_eq!(
        failover_errors(|u| u.set_failing(503)),
        0,
        "client-visible errors"
    );
}

#[test]
fn c_split_and_failover_at_once_across_three_regions() {
    let (hz, mut sh, bj) = (
        Upstream::start(HZ),
        Upstream::start(SH),
        Upstream::start(BJ),
    );
    let envoy = start(&[&hz, &sh, &bj], &three_region_policy());
    let names = regions_of(&send_on_one_connection(
        envoy.addr(),
        &Request::reviews(),
        100,
    ));
    assert_eq!(
        (count(&names, HZ), count(&names, SH), count(&names, BJ)),
        (80, 20, 0),
        "{names:?}"
    );
    sh.stop();
    std::thread::sleep(TICK);
    // The first request of cn-shanghai's share finds it dead (Envoy's priority failover
    // answers it from some other region); from then on the filter sends the 20% down
    // cn-shanghai's own chain: cn-beijing.
    let mut conn = Connection::open(envoy.addr()).unwrap();
    let warm: Vec<String> = (0..5)
        .map(|_| regions_of(&[conn.send(&Request::reviews())]).remove(0))
        .collect();
    assert!(warm.iter().all(|n| n == HZ || n == BJ), "{warm:?}");
    let names: Vec<String> = (0..100)
        .map(|_| regions_of(&[conn.send(&Request::reviews())]).remove(0))
        .collect();
    assert_eq!(
        (count(&names, HZ), count(&names, BJ), count(&names, SH)),
        (80, 20, 0),
        "{names:?}"
    );
    assert_eq!(counter(&envoy, "ejections", SH), 1);
}

#[test]
fn d_a_restarted_region_gets_its_share_back_after_the_ejection() {
    let (mut hz, sh) = (Upstream::start(HZ), Upstream::start(SH));
    let envoy = start(&[&hz, &sh], &seed_a_policy("2s", "0s"));
    hz.stop();
    let stopped_at = Instant::now();
    let names = regions_of(&send_on_one_connection(
        envoy.addr(),
        &Request::reviews(),
        10,
    ));
    assert_eq!(count(&names, SH), 10, "{names:?}");
    hz.restart();
    // While ejected (2 s), cn-hangzhou gets nothing even though it is back.
    let names = regions_of(&send_on_one_connection(
        envoy.addr(),
        &Request::reviews(),
        10,
    ));
    assert_eq!(count(&names, SH), 10, "still ejected: {names:?}");
    let mut errors = 0;
    let back = wait_until(Duration::from_secs(15), || {
        let names = regions_of(&send_on_one_connection(
            envoy.addr(),
            &Request::reviews(),
            10,
        ));
        errors += names.iter().filter(|n| *n != SH && *n != HZ).count();
        (count(&names, HZ), count(&names, SH)) == (9, 1)
    });
    let took = stopped_at.elapsed();
    assert!(back, "cn-hangzhou never got its 90% back");
    assert!(
        took >= Duration::from_secs(2),
        "share back after {took:?}, before the 2 s ejection ended"
    );
    assert_eq!(errors, 0, "client-visible errors during recovery");
    eprintln!("cn-hangzhou had its share back {took:?} after it was stopped (ejection 2 s)");
}

#[test]
fn e_every_region_down_takes_the_default_route_and_counts() {
    let (mut hz, mut sh) = (Upstream::start(HZ), Upstream::start(SH));
    let envoy = start(&[&hz, &sh], &seed_a_policy("30s", "10s"));
    hz.stop();
    sh.stop();
    let names = regions_of(&send_on_one_connection(
        envoy.addr(),
        &Request::reviews(),
        20,
    ));
    assert!(names.iter().all(|n| n.starts_with("HTTP 503")), "{names:?}");
    assert_eq!(
        (
            counter(&envoy, "ejections", HZ),
            counter(&envoy, "ejections", SH)
        ),
        (1, 1)
    );
    std::thread::sleep(TICK);
    let fallbacks = envoy.counter("wasmcustom.geolb.no_healthy_region;service=reviews.default");
    // Request 1 ejects cn-hangzhou, request 2 (its share failed over) cn-shanghai: the
    // other 18 find no healthy region.
    assert_eq!(fallbacks, 18, "no-healthy-region fallbacks");
    // Those requests took the route without header, to the service's default cluster.
    let default_cluster = envoy.config().default_cluster();
    assert!(wait_until(Duration::from_secs(2), || {
        envoy
            .access_log()
            .iter()
            .filter(|l| l.contains(&default_cluster))
            .count() as u64
            >= fallbacks
    }));
}

#[test]
fn f_a_client_cannot_choose_the_region() {
    let (hz, sh) = (Upstream::start(HZ), Upstream::start(SH));
    let envoy = start(&[&hz, &sh], &seed_a_policy("30s", "10s"));
    let long = SH.repeat(500);
    let attacks = [
        Request::reviews().header("x-geolb-region", SH),
        Request::reviews().header("X-GeoLB-Region", SH),
        Request::reviews()
            .header("x-geolb-region", SH)
            .header("x-geolb-region", SH),
        Request::reviews().header("x-geolb-region", "cn-shanghai,cn-shanghai"),
        Request::reviews().header("x-geolb-region", &long),
    ];
    for attack in &attacks {
        let results = send_on_one_connection(envoy.addr(), attack, 10);
        let names = regions_of(&results);
        assert_eq!(
            (count(&names, HZ), count(&names, SH)),
            (9, 1),
            "{attack:?}: {names:?}"
        );
        assert!(
            results
                .iter()
                .flatten()
                .all(|r| r.seen_routing_header() == Some("")),
            "app saw the header"
        );
    }
}

#[test]
fn g_a_bad_policy_update_keeps_the_previous_split_with_zero_errors() {
    let (hz, sh) = (Upstream::start(HZ), Upstream::start(SH));
    let mut envoy = start(&[&hz, &sh], &seed_a_policy("30s", "10s"));
    let addr = envoy.addr();
    let stop = AtomicBool::new(false);
    let mut bad = seed_a_policy("30s", "10s");
    bad["services"][0]["distribute"][HZ][SH] = json!(20);
    let mut changed = seed_a_policy("30s", "10s");
    changed["services"][0]["distribute"][HZ] = json!({ HZ: 50, SH: 50 });
    let load = std::thread::scope(|s| {
        let load = s.spawn(|| {
            let mut all = Vec::new();
            while !stop.load(Ordering::SeqCst) && all.len() < 20_000 {
                all.extend(send_on_one_connection(addr, &Request::reviews(), 10));
            }
            all
        });
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            envoy.update_plugin_config(&bad.to_string()),
            UpdateOutcome::Rejected
        );
        assert_eq!(
            envoy.update_plugin_config("{not json"),
            UpdateOutcome::Rejected
        );
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::SeqCst);
        load.join().unwrap()
    });
    let names = regions_of(&load);
    assert!(
        names.len() >= 50,
        "too few requests during the updates: {}",
        names.len()
    );
    assert_eq!(
        names.iter().filter(|n| *n != HZ && *n != SH).count(),
        0,
        "non-2xx during the update"
    );
    // Every 10 requests on one connection still split 9/1: the previous policy serves.
    for chunk in names.chunks(10).filter(|c| c.len() == 10) {
        assert_eq!(count(chunk, SH), 1, "{chunk:?}");
    }
    let refusal = r#"services[0].distribute["cn-hangzhou"]: weights from cn-hangzhou sum to 110 (cn-hangzhou=90, cn-shanghai=20), must be 100"#;
    assert!(
        wait_until(Duration::from_secs(3), || envoy.log().contains(refusal)),
        "the refusal names the field: {}",
        envoy.log_tail(20)
    );
    // A good update applies.
    assert_eq!(
        envoy.update_plugin_config(&changed.to_string()),
        UpdateOutcome::Applied
    );
    let names = regions_of(&send_on_one_connection(
        envoy.addr(),
        &Request::reviews(),
        10,
    ));
    assert_eq!((count(&names, HZ), count(&names, SH)), (5, 5), "{names:?}");
}

#[test]
fn g_an_invalid_first_policy_passes_traffic_through_instead_of_stopping_envoy() {
    let (hz, sh) = (Upstream::start(HZ), Upstream::start(SH));
    let mut bad = seed_a_policy("30s", "10s");
    bad["services"][0]["failover"][HZ] = json!([HZ]);
    let envoy = start(&[&hz, &sh], &bad);
    // Default route (proxy's own region first), client header ignored.
    let results = send_on_one_connection(
        envoy.addr(),
        &Request::reviews().header("x-geolb-region", SH),
        10,
    );
    assert_eq!(count(&regions_of(&results), HZ), 10);
    assert_eq!(
        envoy.counter("wasmcustom.geolb.policy_rejected"),
        1,
        "one bad policy, counted once for all VMs"
    );
    assert!(
        wait_until(Duration::from_secs(3), || envoy.log().contains(
            "region cn-hangzhou fails over to itself (service reviews.default)"
        )),
        "{}",
        envoy.log_tail(20)
    );
}

#[test]
fn h_a_region_ejected_through_one_workers_traffic_is_avoided_by_the_other() {
    let (hz, sh) = (Upstream::start(HZ), Upstream::start(SH));
    let mut cfg = MeshConfig::for_upstreams(&[&hz, &sh])
        .with_node(ACK_HANGZHOU, NodeLocality::Absent)
        .with_wasm(WasmFilter::geolb(&seed_a_policy("30s", "0s").to_string()));
    cfg.exact_balance = true; // two open connections land on two different workers
    let envoy = Envoy::start(&cfg);
    let mut first = Connection::open(envoy.addr()).unwrap();
    let mut second = Connection::open(envoy.addr()).unwrap();
    // Both workers route normally.
    for conn in [&mut first, &mut second] {
        let names: Vec<String> = (0..10)
            .map(|_| regions_of(&[conn.send(&Request::reviews())]).remove(0))
            .collect();
        assert_eq!(count(&names, SH), 1, "{names:?}");
    }
    // cn-hangzhou starts failing; only the first connection's worker sees it.
    hz.set_failing(503);
    std::thread::sleep(TICK);
    first.send(&Request::reviews()).unwrap();
    assert_eq!(counter(&envoy, "ejections", HZ), 1);
    let routed_hz = counter(&envoy, "routed", HZ);
    // Other workers re-read the shared health on their next tick (every 100 ms).
    std::thread::sleep(TICK);
    // The second worker never saw a failure, yet sends nothing to cn-hangzhou.
    let names: Vec<String> = (0..10)
        .map(|_| regions_of(&[second.send(&Request::reviews())]).remove(0))
        .collect();
    assert_eq!(count(&names, SH), 10, "{names:?}");
    assert_eq!(
        counter(&envoy, "routed", HZ),
        routed_hz,
        "the other worker still routed to cn-hangzhou"
    );
    let workers = envoy
        .counters_with_prefix("listener.")
        .into_iter()
        .filter(|(k, v)| k.contains("worker_") && k.ends_with("downstream_cx_total") && *v > 0)
        .count();
    assert_eq!(
        workers, 2,
        "the two connections did not land on two workers"
    );
}

/// `explain`: a sidecar tells the calling app, per response, whose share the request
/// was, where it went and why; a gateway (node type `router`) refuses such a policy,
/// passes traffic through and adds nothing.
#[test]
fn explain_tells_the_app_at_a_sidecar_and_is_refused_at_a_gateway() {
    let (mut hz, sh) = bookinfo_reviews();
    let mut policy = seed_a_policy("30s", "10s");
    policy["explain"] = json!(true);
    let cfg = MeshConfig::for_upstreams(&[&hz, &sh])
        .with_node(ACK_HANGZHOU, NodeLocality::Absent)
        .with_wasm(WasmFilter::geolb(&policy.to_string()));
    assert!(cfg.node_id.starts_with("sidecar~"), "{}", cfg.node_id);
    let envoy = Envoy::start(&cfg);
    let explained = |results: &[std::io::Result<Response>]| -> Vec<String> {
        results
            .iter()
            .map(|r| match r {
                Ok(resp) => resp.header("x-geolb-explain").unwrap_or("-").to_owned(),
                Err(e) => format!("error {e}"),
            })
            .collect()
    };
    let said = explained(&send_on_one_connection(
        envoy.addr(),
        &Request::reviews(),
        10,
    ));
    let split = |r: &str| format!("share={r}; region={r}; reason=split");
    assert_eq!(count(&said, &split(HZ)), 9, "{said:?}");
    assert_eq!(count(&said, &split(SH)), 1, "{said:?}");

    // cn-hangzhou dies. Until the filter ejects it, cn-hangzhou's prefer subset answers
    // from cn-shanghai; after, its 90% says where it went instead.
    hz.stop();
    let mut sent = 0;
    while counter(&envoy, "ejections", HZ) == 0 {
        assert!(sent < 200, "cn-hangzhou not ejected after {sent} requests");
        send_on_new_connections(envoy.addr(), &Request::reviews(), 10);
        sent += 10;
    }
    // One connection, one worker: its round robin is exact per 10 requests.
    let said = explained(&send_on_one_connection(
        envoy.addr(),
        &Request::reviews(),
        20,
    ));
    let failover = format!("share={HZ}; region={SH}; reason=failover");
    assert_eq!(
        (count(&said, &failover), count(&said, &split(SH))),
        (18, 2),
        "{said:?}"
    );

    // A request for a service the policy does not steer.
    let other = send_one(
        envoy.addr(),
        &Request::reviews().host("ratings.default.svc.cluster.local:9080"),
    )
    .unwrap();
    assert_eq!(
        other.header("x-geolb-explain"),
        Some("reason=pass-through; cause=not-in-policy")
    );

    // The same policy at an ingress gateway's Envoy.
    hz.restart();
    let mut cfg = cfg;
    cfg.node_id =
        "router~127.0.0.1~istio-ingressgateway-1.istio-system~istio-system.svc.cluster.local"
            .into();
    let gateway = Envoy::start(&cfg);
    let results = send_on_one_connection(gateway.addr(), &Request::reviews(), 10);
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.is_success())),
        "{results:?}"
    );
    assert_eq!(explained(&results), vec!["-"; 10]);
    // Passed through: the default route keeps every request in the proxy's region.
    assert_eq!(count(&regions_of(&results), HZ), 10);
    std::thread::sleep(TICK);
    assert_eq!(gateway.counter("wasmcustom.geolb.policy_rejected"), 1);
    assert!(
        gateway
            .log()
            .contains("explain: is for sidecars only, and this proxy is a \"router\""),
        "the refusal is logged"
    );
}
