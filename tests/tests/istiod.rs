//! The istiod stand-in (`tests/src/istiod/`): the Envoy configuration it builds from
//! the manifests `geolb render` writes for the example plans, checked natively (the
//! mapping, field by field), for strictness (what it does not understand is an error
//! naming file and field), and in a real Envoy (validate mode for every cluster and
//! proxy of scenarios A and B; traffic through a translated sidecar).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use std::collections::BTreeMap;
use std::net::SocketAddr;

use geolb_e2e::istiod::*;
use geolb_e2e::*;
use serde_json::Value;

/// `manifests/examples/<scenario>/plan.yaml` rendered with the geolb library into a
/// temporary directory (what `geolb render` writes).
fn render(scenario: &str) -> tempfile::TempDir {
    let plan = repo_root()
        .join("manifests/examples")
        .join(scenario)
        .join("plan.yaml");
    let files = geolb::render_file(&plan, geolb::render::ExtensionApi::Wasmplugin)
        .unwrap_or_else(|e| panic!("render {}:\n{e}", plan.display()));
    let dir = tempfile::Builder::new()
        .prefix(&format!("geolb-istiod-{scenario}-"))
        .tempdir()
        .unwrap();
    for (rel, text) in &files {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    dir
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn workload(
    host: &str,
    version: &str,
    cluster: &str,
    region: &str,
    address: SocketAddr,
) -> Workload {
    let app = host.split('.').next().unwrap();
    Workload {
        service: host.to_string(),
        port: 9080,
        address,
        labels: BTreeMap::from([
            ("app".to_string(), app.to_string()),
            ("version".to_string(), version.to_string()),
        ]),
        cluster: cluster.to_string(),
        network: String::new(),
        locality: Locality::new(region, &format!("{region}-a")),
        sidecar: false,
    }
}

const PRODUCTPAGE: &str = "productpage.default.svc.cluster.local";
const DETAILS: &str = "details.default.svc.cluster.local";
const RATINGS: &str = "ratings.default.svc.cluster.local";
const REVIEWS: &str = "reviews.default.svc.cluster.local";

/// Scenario A's pods (the plan's services/versions/clusters): productpage, details,
/// ratings v1 in both clusters; reviews v1 in ack-hangzhou, v2 in ack-shanghai.
/// `reviews` gives the reviews pods' addresses (v1, v2).
fn registry_a(reviews: (SocketAddr, SocketAddr)) -> Registry {
    let mut workloads = Vec::new();
    let mut port = 20_000;
    for host in [PRODUCTPAGE, DETAILS, RATINGS] {
        for (cluster, region) in [
            ("ack-hangzhou", "cn-hangzhou"),
            ("ack-shanghai", "cn-shanghai"),
        ] {
            port += 1;
            workloads.push(workload(host, "v1", cluster, region, addr(port)));
        }
    }
    workloads.push(workload(
        REVIEWS,
        "v1",
        "ack-hangzhou",
        "cn-hangzhou",
        reviews.0,
    ));
    workloads.push(workload(
        REVIEWS,
        "v2",
        "ack-shanghai",
        "cn-shanghai",
        reviews.1,
    ));
    Registry { workloads }
}

fn hangzhou() -> Locality {
    Locality::new("cn-hangzhou", "cn-hangzhou-a")
}

fn productpage_sidecar() -> Proxy {
    Proxy::sidecar("productpage-v1", "default", &hangzhou(), "ack-hangzhou", "")
}

fn cluster<'a>(t: &'a Translated, name: &str) -> &'a Value {
    t.bootstrap["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no cluster {name}"))
}

#[test]
fn a_sidecar_starts_in_envoy_and_routes_by_the_region_header() {
    let dir = render("a-failover-distribution");
    let v1 = Upstream::start("cn-hangzhou");
    let v2 = Upstream::start("cn-shanghai");
    let manifests = ClusterManifests::load(dir.path(), "ack-hangzhou").unwrap();
    let t = translate(
        &manifests,
        &registry_a((v1.addr(), v2.addr())),
        &productpage_sidecar(),
        &Environment::local(),
    )
    .unwrap();
    let envoy = Envoy::start_translated(&t);
    let listener = envoy.listener_addr("0.0.0.0_9080");
    let r = send_one(
        listener,
        &Request::reviews().header("x-geolb-region", "cn-beijing"),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", envoy.log_tail(20));
    assert_eq!(
        r.seen_routing_header(),
        Some(""),
        "header removed before the app"
    );
    // The filter chose a region and the VirtualService route sent it to that subset.
    let region = r.served_region().unwrap().to_string();
    assert!(wait_until(std::time::Duration::from_secs(2), || !envoy
        .access_log()
        .is_empty()));
    let line = envoy.access_log().pop().unwrap();
    assert!(
        line.contains(&format!("outbound|9080|geolb-{region}|{REVIEWS}")),
        "{line}"
    );
}
