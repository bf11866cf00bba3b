//! A client cannot pick the region, whatever state the ingress gateway's filter is in.
//!
//! Seed A's plan with a custom `routingHeader` (`x-bookinfo-region`), rendered with the
//! geolb library, translated by the istiod stand-in for ack-hangzhou's ingress gateway
//! (one worker), and in front of it Bookinfo's productpage fakes of both regions. The
//! region routes match only `<region>.<route token>`; every route removes the header.
//!
//! Five states of the gateway's filter, each sent the same thirteen spoofed requests:
//! * `absent` — no WasmPlugin selects the gateway;
//! * `crashed` — a test build that panics on `x-geolb-test-panic`, FAIL_OPEN: after the
//!   panic Envoy skips the filter on that worker;
//! * `pass-through` — an invalid first policy (a route token too short): the filter
//!   routes nothing and strips the header the refused configuration names;
//! * `unconfigured` — a WasmPlugin without `pluginConfig`;
//! * `active` — the policy as rendered.
//!
//! A request is "routed by the client" when the route Envoy selected (the access log's
//! `route=`) is a region route the filter did not pick: any region route while the
//! filter is not active, another than the filter's while it is. A control request that
//! carries the real token with the filter absent shows the check can see one.
//!
//! Run: `cargo test -p geolb-e2e --test spoofing`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use std::path::Path;
use std::time::Duration;

use geolb_e2e::bookinfo::{Bookinfo, productpage_request};
use geolb_e2e::from_plan::{RenderedPlan, example_plan};
use geolb_e2e::istiod::ClusterManifests;
use geolb_e2e::istiod::translate::translate;
use geolb_e2e::*;

const HEADER: &str = "x-bookinfo-region";
const ACK_HANGZHOU: &str = "ack-hangzhou";
const GATEWAY_PLUGIN: &str = "mesh/istio-system/wasmplugin-geolb-bookinfo-gateway.yaml";
/// The route the gateway's active filter picks for productpage from cn-hangzhou (for a
/// GET: the idempotent methods' route).
const FILTER_ROUTE: &str = "productpage-geolb-cn-hangzhou-idempotent";
/// Where the crashed state's WasmPlugin names the test build of the filter.
const PANIC_MODULE_URL: &str = "file:///var/lib/geolb/geolb_filter_test_panic.wasm";
/// The route without a header match: the mesh's own load balancing.
const FALLBACK_ROUTE: &str = "productpage-geolb-fallback-idempotent";

/// The thirteen ways a client sends the routing header.
fn variants() -> Vec<(&'static str, Vec<(String, String)>)> {
    let h = |name: &str, value: &str| (name.to_string(), value.to_string());
    vec![
        ("exact, the other region", vec![h(HEADER, "cn-shanghai")]),
        ("exact, the home region", vec![h(HEADER, "cn-hangzhou")]),
        (
            "mixed-case name",
            vec![h("X-Bookinfo-Region", "cn-shanghai")],
        ),
        ("upper-case value", vec![h(HEADER, "CN-SHANGHAI")]),
        (
            "duplicated",
            vec![h(HEADER, "cn-shanghai"), h(HEADER, "cn-shanghai")],
        ),
        (
            "duplicated, two regions",
            vec![h(HEADER, "cn-shanghai"), h(HEADER, "cn-hangzhou")],
        ),
        ("padded with spaces", vec![h(HEADER, "  cn-shanghai  ")]),
        ("padded with tabs", vec![h(HEADER, "\tcn-shanghai\t")]),
        ("comma-joined", vec![h(HEADER, "cn-shanghai,cn-hangzhou")]),
        ("a region no route has", vec![h(HEADER, "eu-west-1")]),
        ("empty", vec![h(HEADER, "")]),
        (
            "a guessed token",
            vec![h(HEADER, "cn-shanghai.AAAAAAAAAAAAAAAAAAAAAA")],
        ),
        (
            "the default header name",
            vec![h("x-geolb-region", "cn-shanghai")],
        ),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Absent,
    Crashed,
    PassThrough,
    Unconfigured,
    Active,
}

/// Seed A with the custom routing header, rendered into a temporary directory.
fn rendered(dir: &Path) -> RenderedPlan {
    let text = std::fs::read_to_string(example_plan("a-failover-distribution")).unwrap();
    let text = text.replacen(
        "\nfilter:\n",
        &format!("\nfilter:\n  routingHeader: {HEADER}\n"),
        1,
    );
    assert!(text.contains(HEADER), "the plan has a filter section");
    let plan = dir.join("plan.yaml");
    std::fs::write(&plan, text).unwrap();
    RenderedPlan::render_into(&plan, &dir.join("out"))
}

/// The gateway WasmPlugin for `state`, from the rendered one.
fn gateway_plugin(rendered: &str, state: State) -> Option<String> {
    match state {
        State::Absent => None,
        State::Active => Some(rendered.to_string()),
        State::Unconfigured => {
            let at = rendered.find("  pluginConfig:").expect("pluginConfig");
            Some(rendered[..at].to_string())
        }
        State::PassThrough => {
            let start = rendered.find("routeToken: \"").expect("routeToken") + 12;
            let end = start + 1 + rendered[start + 1..].find('"').unwrap();
            Some(format!(
                "{}\"short\"{}",
                &rendered[..start],
                &rendered[end + 1..]
            ))
        }
        State::Crashed => {
            let module = wasm_module("geolb_filter_test_panic.wasm");
            let sha = std::fs::read_to_string(module.with_extension("wasm.sha256")).unwrap();
            let sha = sha.split_whitespace().next().unwrap();
            let mut out = String::new();
            for line in rendered.lines() {
                if line.starts_with("  url: ") {
                    out.push_str(&format!("  url: \"{PANIC_MODULE_URL}\"\n"));
                } else if line.starts_with("  sha256: ") {
                    out.push_str(&format!("  sha256: \"{sha}\"\n"));
                } else if line.starts_with("  imagePullPolicy: ") {
                    continue;
                } else {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            Some(out)
        }
    }
}

/// The gateway of ack-hangzhou with its filter in `state` (one worker).
fn gateway(bookinfo: &Bookinfo, original: &str, state: State) -> Envoy {
    let path = bookinfo.plan.root().join(GATEWAY_PLUGIN);
    let kustomization = bookinfo.plan.root().join("mesh/kustomization.yaml");
    let listed = std::fs::read_to_string(&kustomization).unwrap();
    match gateway_plugin(original, state) {
        Some(text) => std::fs::write(&path, text).unwrap(),
        // Not applied at all: neither the file nor its kustomization entry.
        None => bookinfo.plan.unapply(Path::new(GATEWAY_PLUGIN)),
    }
    let manifests = ClusterManifests::load(bookinfo.plan.root(), ACK_HANGZHOU).unwrap();
    let registry = bookinfo.registry(|_| false);
    let proxy = bookinfo.plan.ingress_gateway(ACK_HANGZHOU);
    let env = bookinfo.plan.environment(1).with_wasm_file(
        PANIC_MODULE_URL,
        wasm_module("geolb_filter_test_panic.wasm"),
    );
    let translated =
        translate(&manifests, &registry, &proxy, &env).unwrap_or_else(|e| panic!("{state:?}: {e}"));
    std::fs::write(&path, original).unwrap();
    std::fs::write(&kustomization, listed).unwrap();
    Envoy::start_translated(&translated)
}

fn entry(bookinfo: &Bookinfo, envoy: &Envoy) -> std::net::SocketAddr {
    let port = bookinfo.plan.plan.gateways[0].port.unwrap_or(80);
    envoy.listener_addr(&format!("0.0.0.0_{port}"))
}

/// The access log's `route=` of the gateway's last `n` lines, once it has `total`.
fn routes(envoy: &Envoy, total: usize, n: usize) -> Vec<String> {
    assert!(
        wait_until(Duration::from_secs(2), || envoy.access_log().len() >= total),
        "{total} access log lines expected: {:?}",
        envoy.access_log()
    );
    let routes = envoy.access_log_field("route=");
    routes[routes.len() - n..].to_vec()
}

/// Whether the app behind the gateway saw the routing header on its last request.
fn app_saw_header(bookinfo: &Bookinfo) -> Vec<String> {
    bookinfo
        .productpages()
        .iter()
        .flat_map(|(p, page)| {
            page.last_request_headers()
                .into_iter()
                .filter(|(name, _)| name == HEADER)
                .map(|(_, value)| format!("{}: {HEADER}: {value}", p.cluster))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn no_client_chosen_value_routes_a_request_in_any_filter_state() {
    let dir = tempfile::tempdir().unwrap();
    let bookinfo = Bookinfo::start(rendered(dir.path()));
    let original = std::fs::read_to_string(bookinfo.plan.root().join(GATEWAY_PLUGIN)).unwrap();
    let token = original
        .split("routeToken: \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the rendered gateway policy carries a route token")
        .to_string();

    let mut routed_by_client = Vec::new();
    let mut header_reached_app = Vec::new();
    let mut sent = 0;
    let states = [
        State::Absent,
        State::Crashed,
        State::PassThrough,
        State::Unconfigured,
        State::Active,
    ];
    for state in states {
        let envoy = gateway(&bookinfo, &original, state);
        let addr = entry(&bookinfo, &envoy);
        let mut before = 0;
        if state == State::Crashed {
            let panic = productpage_request().header("x-geolb-test-panic", "1");
            let _ = Connection::open(addr).unwrap().send(&panic);
            before = 1;
        }
        let expected = if state == State::Active {
            FILTER_ROUTE
        } else {
            FALLBACK_ROUTE
        };
        let variants = variants();
        for (i, (name, headers)) in variants.iter().enumerate() {
            let mut request = productpage_request();
            for (n, v) in headers {
                request = request.header(n, v);
            }
            let response = Connection::open(addr).unwrap().send(&request).unwrap();
            sent += 1;
            assert_eq!(response.status, 200, "{state:?} {name}");
            let route = routes(&envoy, before + i + 1, 1).remove(0);
            if route != expected {
                routed_by_client.push(format!("{state:?} / {name}: route {route}"));
            }
            for seen in app_saw_header(&bookinfo) {
                header_reached_app.push(format!("{state:?} / {name}: {seen}"));
            }
        }
        if state == State::Absent {
            // The control: the value only the filter knows does pick the region.
            let real = productpage_request().header(HEADER, &format!("cn-shanghai.{token}"));
            let response = Connection::open(addr).unwrap().send(&real).unwrap();
            assert_eq!(response.header("x-served-region"), Some("cn-shanghai"));
            let route = routes(&envoy, before + variants.len() + 1, 1).remove(0);
            assert_eq!(
                route, "productpage-geolb-cn-shanghai-idempotent",
                "the control"
            );
            assert!(app_saw_header(&bookinfo).is_empty(), "the route removes it");
        }
    }
    eprintln!(
        "spoofing: {} of {sent} requests routed by a client-chosen value",
        routed_by_client.len()
    );
    assert_eq!(sent, 65);
    assert!(routed_by_client.is_empty(), "{routed_by_client:#?}");
    assert!(header_reached_app.is_empty(), "{header_reached_app:#?}");
}
