//! Seed scenarios A and B end to end: the committed example plan, rendered in the test
//! with the geolb library, read back by the istiod stand-in for one cluster, translated
//! into the Envoys of Bookinfo's request chain, and real traffic through them:
//!
//! client → ingress gateway Envoy (the gateway WasmPlugin; a browser's Host names no
//! service, so it finds productpage by the cluster of the route Envoy selected) →
//! productpage (fake) → productpage's sidecar Envoy (the mesh WasmPlugin) → reviews v1 /
//! v2 / v3 (fakes, one per plan placement).
//!
//! The proxies run as on ACK unless a test says otherwise: istio-agent writes no node
//! locality, so both filters take their region from `CLUSTER_ID` in the policy's
//! `clusterRegions` (the full seed A matrix runs so). The split is also checked with the
//! locality from platform metadata and from the `istio-locality` pod label, and a
//! negative control shows that without the table the ACK proxies have no region.
//!
//! Counts use the seed's own check: lines containing "full stars" over 10 pages. An error
//! a user would see is a non-2xx page, no answer, or a page saying reviews are
//! unavailable (productpage answers 200 then, as Bookinfo does).
//!
//! The filter's split is exact per wasm VM (worker): the productpage fake calls reviews on
//! ONE keep-alive connection, so every reviews call of a test is decided by one VM; the
//! tests check that it stayed one connection.
//!
//! Run one: `cargo test -p geolb-e2e --test plan_to_traffic <name>`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use std::time::Duration;

use geolb_e2e::apps::PageSummary;
use geolb_e2e::bookinfo::{Bookinfo, Chain, productpage_request};
use geolb_e2e::from_plan::{Placement, RenderedPlan};
use geolb_e2e::istiod::NodeLocality;
use geolb_e2e::*;
use geolb_policy::testing::{HZ, SH};
use serde_json::json;

/// Seed A's plan and the cluster whose ingress the requests enter.
const SEED_A: &str = "a-failover-distribution";
const ACK_HANGZHOU: &str = "ack-hangzhou";
/// Seed B's plan; productpage and reviews v1/v2 run in m1c1 (cn-hangzhou), v3 in m1c2.
const SEED_B: &str = "b-locality-preferred";
const M1C1: &str = "m1c1";

/// More than the filter's 100 ms tick: its counters are in Envoy's stats by then.
const TICK: Duration = Duration::from_millis(250);

/// The seed's loop: 10 requests through the ingress, on one client connection.
fn ten_pages(chain: &Chain) -> PageSummary {
    PageSummary::of(&send_on_one_connection(
        chain.entry,
        &productpage_request(),
        10,
    ))
}

/// A geolb counter of reviews in productpage's sidecar in `cluster`.
fn reviews_counter(chain: &Chain, cluster: &str, metric: &str, region: &str) -> u64 {
    std::thread::sleep(TICK);
    chain.sidecar(cluster).counter(&format!(
        "wasmcustom.geolb.{metric};service=reviews.default;region={region}"
    ))
}

/// A geolb counter of productpage in the ingress gateway.
fn gateway_productpage_counter(chain: &Chain, metric: &str, region: &str) -> u64 {
    std::thread::sleep(TICK);
    chain.gateway.counter(&format!(
        "wasmcustom.geolb.{metric};service=productpage.default;region={region}"
    ))
}

/// The gateway's access log once it has `n` lines: the route each page took.
fn gateway_routes(chain: &Chain, n: usize) -> Vec<String> {
    let complete = wait_until(Duration::from_secs(2), || {
        chain.gateway.access_log().len() >= n
    });
    assert!(
        complete,
        "{n} lines expected: {:?}",
        chain.gateway.access_log()
    );
    chain.gateway.access_log_field("route=")
}

fn nothing_scaled_to_zero(_: &Placement) -> bool {
    false
}

/// Every productpage called reviews on a single connection (one sidecar worker).
fn assert_one_reviews_connection_each(bookinfo: &Bookinfo) {
    for (p, page) in bookinfo.productpages() {
        assert!(
            page.reviews_connections_opened() <= 1,
            "productpage in {} opened {} connections to its sidecar",
            p.cluster,
            page.reviews_connections_opened()
        );
    }
}

/// How cn-hangzhou's (or another region's) reviews is down for a seed A run.
#[derive(Clone, Copy, Debug)]
enum Down {
    Nothing,
    /// Its pods crashed: stopped once the chain runs (Kubernetes still lists them).
    Stopped(&'static str),
    /// Its pods answer 503.
    Answers503(&'static str),
    /// No pods: not in the registry, so istiod has no endpoints for it.
    ScaledToZero(&'static str),
}

/// Seed A rendered, its proxies on clusters of kind `flavour`.
fn seed_a_plan(flavour: NodeLocality) -> RenderedPlan {
    RenderedPlan::example(SEED_A).with_node_locality(flavour)
}

/// Seed A's chain from `plan` with its reviews `down`; then the seed's 10 pages.
fn seed_a_with(plan: RenderedPlan, down: Down) -> (PageSummary, Bookinfo, Chain) {
    let mut bookinfo = Bookinfo::start(plan);
    let plan = &bookinfo.plan;
    let registry = bookinfo.registry(|p: &Placement| match down {
        Down::ScaledToZero(region) => p.is("reviews", None) && plan.region_of(&p.cluster) == region,
        _ => false,
    });
    let chain = Chain::start(&bookinfo, ACK_HANGZHOU, &registry);
    match down {
        Down::Stopped(region) => {
            for u in bookinfo.upstreams_in_region("reviews", region) {
                u.stop();
            }
        }
        Down::Answers503(region) => {
            for u in bookinfo.upstreams_in_region("reviews", region) {
                u.set_failing(503);
            }
        }
        Down::Nothing | Down::ScaledToZero(_) => {}
    }
    let pages = ten_pages(&chain);
    (pages, bookinfo, chain)
}

/// Seed A on ACK-like clusters (no node locality).
fn seed_a(down: Down) -> (PageSummary, Bookinfo, Chain) {
    seed_a_with(seed_a_plan(NodeLocality::Absent), down)
}

/// Seed A's failover check: 10 pages, all with cn-shanghai's reviews (20 "full stars"
/// lines), 0 errors; the filter ejected cn-hangzhou once: the first request of its
/// share came back from cn-shanghai, and the rest of its share went down its chain.
fn assert_all_pages_from_shanghai(
    case: &str,
    (pages, bookinfo, chain): (PageSummary, Bookinfo, Chain),
) {
    eprintln!("{case}: {pages}");
    assert_eq!(pages.errors(), 0, "{pages}");
    assert_eq!(pages.full_stars_lines, 20, "{pages}");
    assert_eq!(pages.reviews_from(SH), 10, "{pages}");
    assert_one_reviews_connection_each(&bookinfo);
    assert_eq!(reviews_counter(&chain, ACK_HANGZHOU, "ejections", HZ), 1);
    assert_region_from_the_cluster_table(&chain);
}

/// The proxies of the chain had no node locality (ACK): the filters' region came from
/// `CLUSTER_ID` in `clusterRegions`; none ever lacked a region.
fn assert_region_from_the_cluster_table(chain: &Chain) {
    for envoy in [&chain.gateway, chain.sidecar(ACK_HANGZHOU)] {
        let node = &envoy.translated().unwrap().bootstrap["node"];
        assert_eq!(node["locality"], json!({}), "no node locality on ACK");
        // The ID the vendor gives the cluster (the plan's clusterId), not its name.
        let id = RenderedPlan::example(SEED_A).cluster_id(ACK_HANGZHOU);
        assert_ne!(id, ACK_HANGZHOU);
        assert_eq!(node["metadata"]["CLUSTER_ID"], id.as_str());
        assert_eq!(
            envoy
                .counters_with_prefix("wasmcustom.geolb.no_source_region")
                .values()
                .sum::<u64>(),
            0
        );
    }
}

#[test]
fn a_failover_reviews_in_hangzhou_scaled_to_zero_all_pages_from_shanghai() {
    assert_all_pages_from_shanghai(
        "reviews in cn-hangzhou scaled to zero",
        seed_a(Down::ScaledToZero(HZ)),
    );
}

#[test]
fn a_failover_reviews_in_hangzhou_stopped_all_pages_from_shanghai() {
    assert_all_pages_from_shanghai("reviews in cn-hangzhou stopped", seed_a(Down::Stopped(HZ)));
}

#[test]
fn a_failover_reviews_in_hangzhou_answering_503_all_pages_from_shanghai() {
    assert_all_pages_from_shanghai(
        "reviews in cn-hangzhou answering 503",
        seed_a(Down::Answers503(HZ)),
    );
}

/// Seed A's distribution check: "of 10 requests, 9 land in cn-hangzhou (v1) and 1 in
/// cn-shanghai (2 full stars lines)", decided by the sidecar's filter, every page from
/// cn-hangzhou's productpage (the gateway's filter).
fn assert_distribution(case: &str, (pages, bookinfo, chain): &(PageSummary, Bookinfo, Chain)) {
    eprintln!("{case}: {pages}");
    assert_eq!(pages.errors(), 0, "{pages}");
    assert_eq!(pages.full_stars_lines, 2, "{pages}");
    assert_eq!(
        (pages.reviews_from(HZ), pages.reviews_from(SH)),
        (9, 1),
        "{pages}"
    );
    assert_one_reviews_connection_each(bookinfo);
    // The split is the sidecar filter's, not Envoy's: it routed 9 and 1.
    assert_eq!(reviews_counter(chain, ACK_HANGZHOU, "routed", HZ), 9);
    assert_eq!(reviews_counter(chain, ACK_HANGZHOU, "routed", SH), 1);
    assert_eq!(gateway_productpage_counter(chain, "routed", HZ), 10);
    for (p, page) in bookinfo.productpages() {
        let expected = if p.cluster == ACK_HANGZHOU { 10 } else { 0 };
        assert_eq!(
            page.pages(),
            expected,
            "pages from productpage in {}",
            p.cluster
        );
    }
}

#[test]
fn a_distribution_one_page_in_ten_from_shanghai() {
    let run = seed_a(Down::Nothing);
    assert_distribution("all healthy", &run);
    let (pages, _, chain) = &run;
    assert_region_from_the_cluster_table(chain);
    // Every page from cn-hangzhou's productpage, chosen by the gateway's geolb filter
    // (ack-hangzhou is in cn-hangzhou, productpage runs there). The browser's Host
    // (bookinfo.example.com; the seed curls the ingress IP) names no service: the filter
    // found productpage by the cluster of the fallback route Envoy selected, and its
    // header moved every page to cn-hangzhou's region route.
    assert_eq!(pages.pages, 10, "{pages}");
    assert_eq!(gateway_productpage_counter(chain, "routed", SH), 0);
    let routes = gateway_routes(chain, pages.pages);
    assert!(
        routes
            .iter()
            .all(|r| r == "productpage-geolb-cn-hangzhou-idempotent"),
        "{routes:?}"
    );
    // The RBAC filter before geolb (Istio's authorization place) had resolved the route
    // for the request as it arrived, the fallback: geolb's header still re-routed it.
    let seen: Vec<String> = access_log_field(&chain.gateway, "rbac=");
    assert!(
        seen.iter()
            .all(|r| r == "route:productpage-geolb-fallback-idempotent"),
        "{seen:?}"
    );
    let seen = access_log_field(chain.sidecar(ACK_HANGZHOU), "rbac=");
    assert_eq!(seen.len(), 10, "{seen:?}");
    assert!(
        seen.iter().all(|r| r == "route:geolb-fallback-idempotent"),
        "{seen:?}"
    );
    let routes = access_log_field(chain.sidecar(ACK_HANGZHOU), "route=");
    assert_eq!(
        routes
            .iter()
            .filter(|r| *r == "geolb-cn-shanghai-idempotent")
            .count(),
        1,
        "{routes:?}"
    );
}

#[test]
fn a_distribution_with_the_node_locality_from_platform_metadata_or_the_pod_label() {
    for flavour in [NodeLocality::Platform, NodeLocality::PodLabel] {
        let run = seed_a_with(seed_a_plan(flavour), Down::Nothing);
        let node = &run.2.sidecar(ACK_HANGZHOU).translated().unwrap().bootstrap["node"];
        assert_eq!(node["locality"]["region"], HZ, "{flavour}");
        assert_distribution(&flavour.to_string(), &run);
    }
}

/// The negative control: the same manifests without `clusterRegions`. On ACK (no node
/// locality) neither filter has a region: every request passes through (counted), the
/// mesh's own locality load balancing keeps pages and reviews in cn-hangzhou (no full
/// stars). With the locality from platform metadata, the same manifests split again.
#[test]
fn a_without_cluster_regions_an_ack_proxy_has_no_region_and_passes_through() {
    let without_table = |flavour| {
        let plan = seed_a_plan(flavour);
        for file in [
            "mesh/default/wasmplugin-geolb.yaml",
            "mesh/istio-system/wasmplugin-geolb-bookinfo-gateway.yaml",
        ] {
            let path = plan.root().join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            let table = format!(
                "    clusterRegions:\n      {}: \"cn-shanghai\"\n      {}: \"cn-hangzhou\"\n",
                plan.cluster_id("ack-shanghai"),
                plan.cluster_id(ACK_HANGZHOU)
            );
            let table = table.as_str();
            assert!(text.contains(table), "{file}: {text}");
            std::fs::write(&path, text.replace(table, "")).unwrap();
        }
        plan
    };
    let (pages, _, chain) = seed_a_with(without_table(NodeLocality::Absent), Down::Nothing);
    eprintln!("no clusterRegions, no node locality: {pages}");
    assert_eq!(pages.errors(), 0, "{pages}");
    assert_eq!(pages.full_stars_lines, 0, "{pages}");
    assert_eq!(pages.reviews_from(HZ), 10, "{pages}");
    std::thread::sleep(TICK);
    assert_eq!(
        chain
            .sidecar(ACK_HANGZHOU)
            .counter("wasmcustom.geolb.no_source_region;service=reviews.default"),
        10
    );
    assert_eq!(
        chain
            .gateway
            .counter("wasmcustom.geolb.no_source_region;service=productpage.default"),
        10
    );
    assert_eq!(reviews_counter(&chain, ACK_HANGZHOU, "routed", HZ), 0);
    assert!(
        gateway_routes(&chain, 10)
            .iter()
            .all(|r| r == "productpage-geolb-fallback-idempotent")
    );
    let run = seed_a_with(without_table(NodeLocality::Platform), Down::Nothing);
    assert_distribution("no clusterRegions, locality from platform metadata", &run);
}

/// The values of one `key=` field of every access log line of `envoy`.
fn access_log_field(envoy: &Envoy, key: &str) -> Vec<String> {
    wait_until(Duration::from_secs(2), || !envoy.access_log().is_empty());
    envoy.access_log_field(key)
}

#[test]
fn a_both_rules_split_while_healthy_and_failover_either_way() {
    // Healthy: the 90/10 split.
    let (healthy, ..) = seed_a(Down::Nothing);
    // cn-shanghai down: its tenth goes back along "cn-shanghai fails -> cn-hangzhou".
    let (sh_down, ..) = seed_a(Down::Stopped(SH));
    // cn-hangzhou down: everything along "cn-hangzhou fails -> cn-shanghai".
    let (hz_down, ..) = seed_a(Down::Stopped(HZ));
    eprintln!(
        "healthy:          {healthy}\ncn-shanghai down: {sh_down}\ncn-hangzhou down: {hz_down}"
    );
    let split = |s: &PageSummary| (s.reviews_from(HZ), s.reviews_from(SH), s.errors());
    assert_eq!(split(&healthy), (9, 1, 0), "healthy: {healthy}");
    assert_eq!(split(&sh_down), (10, 0, 0), "cn-shanghai down: {sh_down}");
    assert_eq!(split(&hz_down), (0, 10, 0), "cn-hangzhou down: {hz_down}");
}

#[test]
fn b_locality_preferred_stays_local_and_fails_over_to_v3() {
    let mut bookinfo = Bookinfo::start(RenderedPlan::example(SEED_B));
    let registry = bookinfo.registry(nothing_scaled_to_zero);
    let chain = Chain::start(&bookinfo, M1C1, &registry);
    let local = bookinfo.plan.region_of(M1C1).to_string();
    let remote: Vec<String> = bookinfo
        .plan
        .placements()
        .iter()
        .filter(|p| p.is("reviews", Some("v3")))
        .map(|p| bookinfo.plan.region_of(&p.cluster).to_string())
        .collect();
    assert_eq!(
        (local.as_str(), remote.as_slice()),
        (HZ, [SH.to_string()].as_slice())
    );

    let healthy = ten_pages(&chain);
    eprintln!("all healthy: {healthy}");
    assert_eq!(healthy.errors(), 0, "{healthy}");
    assert_eq!(
        healthy.reviews_from(HZ),
        10,
        "no request left {local}: {healthy}"
    );
    assert_eq!(healthy.red_stars_lines, 0, "{healthy}");
    assert_eq!(reviews_counter(&chain, M1C1, "routed", SH), 0);

    // The local reviews (v1 and v2) fail: v3 in the remote region answers. Here Envoy's
    // priority failover inside the subset geolb-cn-hangzhou does it from the first
    // request (v1, v2 at priority 0, v3 at 1; retries with previous_priorities). The
    // filter's own ejection needs the plan's consecutive5xxErrors (5) answers from
    // elsewhere, and it reads the served region on the first success after each 100 ms
    // tick (or every 16th), so whether it ejects within these 10 requests depends on
    // their speed: not asserted.
    let stopped = bookinfo
        .upstreams_in_region("reviews", HZ)
        .into_iter()
        .map(|u| u.stop())
        .count();
    assert_eq!(stopped, 2, "reviews v1 and v2 in {local}");
    let failed_over = ten_pages(&chain);
    eprintln!("local reviews stopped: {failed_over}");
    assert_eq!(failed_over.errors(), 0, "{failed_over}");
    assert_eq!(failed_over.reviews_from(SH), 10, "{failed_over}");
    assert_eq!(failed_over.red_stars_lines, 20, "{failed_over}");
    assert_one_reviews_connection_each(&bookinfo);
}

#[test]
fn a_client_sent_routing_header_at_the_ingress_changes_nothing() {
    // A browser that sends the routing header itself, naming the region it should not
    // get, in the ways a client can (single, mixed case, duplicated, comma-joined).
    // Without the gateway's filter, the header would match the cn-shanghai route.
    let bookinfo = Bookinfo::start(seed_a_plan(NodeLocality::Absent));
    let registry = bookinfo.registry(nothing_scaled_to_zero);
    let chain = Chain::start(&bookinfo, ACK_HANGZHOU, &registry);
    let spoofs: [&[(&str, &str)]; 4] = [
        &[("x-geolb-region", SH)],
        &[("X-GeoLB-Region", SH)],
        &[("x-geolb-region", SH), ("x-geolb-region", SH)],
        &[("x-geolb-region", "cn-shanghai,cn-hangzhou")],
    ];
    let mut conn = Connection::open(chain.entry).unwrap();
    let mut pages = PageSummary::default();
    for i in 0..20 {
        let mut request = productpage_request();
        for (name, value) in spoofs[i % spoofs.len()] {
            request = request.header(name, value);
        }
        pages.add(&geolb_e2e::apps::Page::of(&conn.send(&request).unwrap()));
    }
    eprintln!("spoofed: {pages}");
    assert_eq!(pages.errors(), 0, "{pages}");
    // The gateway's filter replaced the header: every page from cn-hangzhou's
    // productpage over its region route, as without the header.
    assert_eq!(gateway_productpage_counter(&chain, "routed", HZ), 20);
    let routes = gateway_routes(&chain, 20);
    assert!(
        routes
            .iter()
            .all(|r| r == "productpage-geolb-cn-hangzhou-idempotent"),
        "{routes:?}"
    );
    for (p, page) in bookinfo.productpages() {
        let expected = if p.cluster == ACK_HANGZHOU { 20 } else { 0 };
        assert_eq!(
            page.pages(),
            expected,
            "pages from productpage in {}",
            p.cluster
        );
    }
    // And the reviews split behind it is the policy's 90/10, exactly, per 10 calls.
    assert_eq!(
        (pages.reviews_from(HZ), pages.reviews_from(SH)),
        (18, 2),
        "{pages}"
    );
    assert_one_reviews_connection_each(&bookinfo);
}
