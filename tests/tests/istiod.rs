//! The istiod stand-in (`tests/src/istiod/`): the Envoy configuration it builds from
//! the manifests `geolb render` writes for the example plans, checked natively (the
//! mapping, field by field), for strictness (what it does not understand is an error
//! naming file and field), and in a real Envoy (validate mode for every cluster and
//! proxy of scenarios A and B; traffic and an ECDS push through a translated sidecar).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use geolb::plan::Plan;
use geolb_e2e::istiod::*;
use geolb_e2e::*;
use serde_json::{Value, json};

const REVIEWS: &str = "reviews.default.svc.cluster.local";
const PRODUCTPAGE: &str = "productpage.default.svc.cluster.local";

/// An example plan rendered with the geolb library into a temporary directory (what
/// `geolb render` writes), and the plan itself.
struct Rendered {
    dir: tempfile::TempDir,
    plan: Plan,
}

fn plan_path(scenario: &str) -> PathBuf {
    repo_root()
        .join("manifests/examples")
        .join(scenario)
        .join("plan.yaml")
}

fn render(scenario: &str) -> Rendered {
    let path = plan_path(scenario);
    let files = geolb::render_file(
        &path,
        geolb::render::ExtensionApi::Wasmplugin,
        &geolb::secret::RouteSecrets::example().unwrap(),
    )
    .unwrap_or_else(|e| panic!("render {}:\n{e}", path.display()));
    let dir = tempfile::Builder::new()
        .prefix(&format!("geolb-istiod-{scenario}-"))
        .tempdir()
        .unwrap();
    for (rel, text) in &files {
        let file = dir.path().join(rel);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, text).unwrap();
    }
    let plan = Plan::from_text(&std::fs::read_to_string(&path).unwrap()).unwrap();
    Rendered { dir, plan }
}

impl Rendered {
    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The routing header value a region route of this render matches: the region with
    /// the example secret's route token.
    fn routed(&self, region: &str) -> String {
        let tokens = geolb::secret::RouteSecrets::example()
            .unwrap()
            .tokens(&self.plan);
        geolb_policy::token::route_header_value(region, &tokens[0])
    }

    fn load(&self, cluster: &str) -> ClusterManifests {
        ClusterManifests::load(self.root(), cluster).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The plan's cluster named `cluster`.
    fn plan_cluster(&self, cluster: &str) -> &geolb::plan::Cluster {
        self.plan
            .clusters
            .iter()
            .find(|c| c.name == cluster)
            .unwrap_or_else(|| panic!("no cluster {cluster} in the plan"))
    }

    fn locality(&self, cluster: &str) -> Locality {
        let c = self.plan_cluster(cluster);
        Locality {
            region: c.region.clone(),
            zone: c.zone.clone().unwrap_or_default(),
            subzone: c.subzone.clone().unwrap_or_default(),
        }
    }

    /// The plan's pods as the registry: one workload per service version and cluster,
    /// addresses from `address_of(service, version, cluster)` (`None` = scaled to zero).
    fn registry(
        &self,
        mut address_of: impl FnMut(&str, &str, &str) -> Option<SocketAddr>,
    ) -> Registry {
        let mut workloads = Vec::new();
        for s in &self.plan.services {
            for v in &s.versions {
                for c in &v.clusters {
                    let Some(address) = address_of(&s.name, &v.name, c) else {
                        continue;
                    };
                    let mut labels = BTreeMap::from([("app".to_string(), s.name.clone())]);
                    if v.labels.is_empty() {
                        labels.insert("version".into(), v.name.clone());
                    } else {
                        labels.extend(v.labels.clone());
                    }
                    workloads.push(Workload {
                        service: format!("{}.{}.svc.cluster.local", s.name, s.namespace),
                        port: s.port,
                        address,
                        labels,
                        cluster: self.cluster_id(c),
                        network: String::new(),
                        locality: self.locality(c),
                        sidecar: false,
                        service_account: DEFAULT_SERVICE_ACCOUNT.into(),
                    });
                }
            }
        }
        Registry::new(workloads)
    }

    /// Every pod at a distinct (unused) loopback port: enough for translating.
    fn any_registry(&self) -> Registry {
        let mut port = 20_000;
        self.registry(|_, _, _| {
            port += 1;
            Some(SocketAddr::from(([127, 0, 0, 1], port)))
        })
    }

    /// The Istio cluster ID of the plan's cluster `cluster` (what its proxies and
    /// istiod's registry call it).
    fn cluster_id(&self, cluster: &str) -> String {
        let c = self
            .plan
            .clusters
            .iter()
            .find(|c| c.name == cluster)
            .unwrap();
        geolb::topology::Topology::cluster_id(c).to_owned()
    }

    fn sidecar(&self, cluster: &str) -> Proxy {
        Proxy::sidecar(
            "productpage-v1",
            "default",
            &self.locality(cluster),
            &self.cluster_id(cluster),
            "",
        )
    }

    fn gateway(&self, cluster: &str) -> Proxy {
        Proxy::ingress_gateway(&self.locality(cluster), &self.cluster_id(cluster), "")
    }

    fn translate(&self, cluster: &str, registry: &Registry, proxy: &Proxy) -> Translated {
        translate(&self.load(cluster), registry, proxy, &Environment::local())
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

fn clusters(t: &Translated) -> &Vec<Value> {
    t.bootstrap["static_resources"]["clusters"]
        .as_array()
        .unwrap()
}

fn cluster<'a>(t: &'a Translated, name: &str) -> &'a Value {
    clusters(t)
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no cluster {name}"))
}

/// `(region, priority)` of every endpoint of a cluster, sorted.
fn priorities(c: &Value) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = c["load_assignment"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| {
            let region = g["locality"]["region"].as_str().unwrap().to_string();
            let p = g["priority"].as_u64().unwrap();
            g["lb_endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |_| (region.clone(), p))
        })
        .collect();
    out.sort();
    out
}

fn pairs(v: &[(&str, u64)]) -> Vec<(String, u64)> {
    v.iter().map(|(r, p)| (r.to_string(), *p)).collect()
}

/// The HTTP connection manager of listener `name`.
fn hcm<'a>(t: &'a Translated, name: &str) -> &'a Value {
    let l = t.bootstrap["static_resources"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no listener {name}"));
    &l["filter_chains"][0]["filters"][0]["typed_config"]
}

fn vhost<'a>(t: &'a Translated, listener: &str, name: &str) -> &'a Value {
    hcm(t, listener)["route_config"]["virtual_hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no virtual host {name}"))
}

/// The pluginConfig of a rendered WasmPlugin as JSON (read from the YAML itself).
fn plugin_config(root: &Path, file: &str) -> Value {
    let yaml: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(root.join(file)).unwrap()).unwrap();
    serde_json::to_value(&yaml["spec"]["pluginConfig"]).unwrap()
}

// ---- native: every cluster loads and translates ------------------------------------

#[test]
fn every_scenario_cluster_loads_and_a_and_b_translate_for_sidecar_and_ingress_gateway() {
    for scenario in [
        "a-failover-distribution",
        "b-locality-preferred",
        "c-multi-primary",
        "d-multi-network",
    ] {
        let r = render(scenario);
        // The tests run on exactly what is committed.
        let drift = geolb::drift::compare(
            &geolb::render_file(
                &plan_path(scenario),
                geolb::render::ExtensionApi::Wasmplugin,
                &geolb::secret::RouteSecrets::example().unwrap(),
            )
            .unwrap(),
            &repo_root().join("manifests").join(scenario),
        )
        .unwrap();
        assert!(drift.is_clean(), "{scenario}: {}", drift.diffs.concat());
        for c in &r.plan.clusters {
            let m = r.load(&c.name);
            assert!(
                !m.install.operators.is_empty(),
                "{scenario}/{}: the cluster's IstioOperator is loaded",
                c.name
            );
            assert!(!m.destination_rules.is_empty(), "{scenario}/{}", c.name);
            if scenario.starts_with('a') || scenario.starts_with('b') {
                let registry = r.any_registry();
                for proxy in [r.sidecar(&c.name), r.gateway(&c.name)] {
                    let t = r.translate(&c.name, &registry, &proxy);
                    assert!(!t.listeners.is_empty(), "{scenario}/{}", c.name);
                    assert_eq!(t.ecds.len(), 1, "{scenario}/{}: one geolb filter", c.name);
                }
            }
        }
    }
}

#[test]
fn multi_network_install_inputs_are_typed() {
    let r = render("c-multi-primary");
    let m = r.load("cluster-1");
    let (source, networks) = geolb_e2e::istiod::network::mesh_networks_of(&m)
        .unwrap()
        .unwrap();
    assert_eq!(
        source,
        "clusters/cluster-1/install/istiooperator.yaml: spec.values.global.meshNetworks"
    );
    let networks = &networks.networks;
    assert_eq!(
        networks.keys().collect::<Vec<_>>(),
        ["network1", "network2"]
    );
    assert_eq!(networks["network2"].gateways[0].address, "47.100.20.22");
    assert_eq!(networks["network2"].gateways[0].port, 15443);
    let files: Vec<&str> = m
        .install
        .operators
        .iter()
        .map(|o| o.file.as_str())
        .collect();
    assert_eq!(
        files,
        [
            "clusters/cluster-1/install/eastwest-gateway.yaml",
            "clusters/cluster-1/install/istiooperator.yaml"
        ]
    );
    assert_eq!(
        m.namespaces[0].value.metadata.labels["topology.istio.io/network"],
        "network1"
    );
    assert_eq!(
        m.gateways[0].value.spec.servers[0]
            .tls
            .as_ref()
            .unwrap()
            .mode,
        "AUTO_PASSTHROUGH"
    );
}

// ---- native: the mapping -----------------------------------------------------------

#[test]
fn a_reviews_clusters_and_priorities_follow_the_subsets() {
    let r = render("a-failover-distribution");
    let t = r.translate(
        "ack-hangzhou",
        &r.any_registry(),
        &r.sidecar("ack-hangzhou"),
    );
    let reviews: Vec<&str> = clusters(&t)
        .iter()
        .filter_map(|c| c["name"].as_str())
        .filter(|n| n.ends_with(REVIEWS))
        .collect();
    assert_eq!(
        reviews,
        [
            format!("outbound|9080||{REVIEWS}"),
            format!("outbound|9080|geolb-cn-hangzhou|{REVIEWS}"),
            format!("outbound|9080|geolb-cn-shanghai|{REVIEWS}"),
            format!("outbound|9080|v1|{REVIEWS}"),
            format!("outbound|9080|v2|{REVIEWS}"),
        ]
    );
    // prefer-R: every endpoint, R's at priority 0 (failoverPriority region=R).
    let hz = cluster(&t, &format!("outbound|9080|geolb-cn-hangzhou|{REVIEWS}"));
    assert_eq!(
        priorities(hz),
        pairs(&[("cn-hangzhou", 0), ("cn-shanghai", 1)])
    );
    let sh = cluster(&t, &format!("outbound|9080|geolb-cn-shanghai|{REVIEWS}"));
    assert_eq!(
        priorities(sh),
        pairs(&[("cn-hangzhou", 1), ("cn-shanghai", 0)])
    );
    // The fail-open cluster: Istio's region failover from the proxy (cn-hangzhou).
    let default = cluster(&t, &format!("outbound|9080||{REVIEWS}"));
    assert_eq!(
        priorities(default),
        pairs(&[("cn-hangzhou", 0), ("cn-shanghai", 1)])
    );
    // Version subsets select by label (v1 lives in cn-hangzhou only).
    let v1 = cluster(&t, &format!("outbound|9080|v1|{REVIEWS}"));
    assert_eq!(priorities(v1), pairs(&[("cn-hangzhou", 0)]));
    // From cn-shanghai the fail-open cluster's order flips; the subsets' does not.
    let t = r.translate(
        "ack-shanghai",
        &r.any_registry(),
        &r.sidecar("ack-shanghai"),
    );
    let default = cluster(&t, &format!("outbound|9080||{REVIEWS}"));
    assert_eq!(
        priorities(default),
        pairs(&[("cn-hangzhou", 1), ("cn-shanghai", 0)])
    );
    let hz = cluster(&t, &format!("outbound|9080|geolb-cn-hangzhou|{REVIEWS}"));
    assert_eq!(
        priorities(hz),
        pairs(&[("cn-hangzhou", 0), ("cn-shanghai", 1)])
    );
}

#[test]
fn a_reviews_traffic_policy_is_mapped_field_by_field() {
    let r = render("a-failover-distribution");
    let t = r.translate(
        "ack-hangzhou",
        &r.any_registry(),
        &r.sidecar("ack-hangzhou"),
    );
    let c = cluster(&t, &format!("outbound|9080|geolb-cn-shanghai|{REVIEWS}"));
    // outlierDetection {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 1m,
    // maxEjectionPercent: 100}
    assert_eq!(
        c["outlier_detection"],
        json!({
            "consecutive_5xx": 1, "enforcing_consecutive_5xx": 100, "enforcing_success_rate": 0,
            "interval": "1s", "base_ejection_time": "60s", "max_ejection_percent": 100,
        })
    );
    assert_eq!(
        c["common_lb_config"]["healthy_panic_threshold"],
        json!({ "value": 0.0 })
    );
    assert_eq!(
        c["common_lb_config"]["locality_weighted_lb_config"],
        json!({})
    );
    // connectionPool.http.maxRequestsPerConnection: 1
    let opts = &c["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    assert_eq!(
        opts["common_http_protocol_options"]["max_requests_per_connection"],
        1
    );
    assert_eq!(
        opts["explicit_http_config"],
        json!({ "http_protocol_options": {} })
    );
    assert_eq!(c["connect_timeout"], "10s");
    assert_eq!(c["lb_policy"], "LEAST_REQUEST");
    // A version subset without its own policy inherits the top-level one.
    let v2 = cluster(&t, &format!("outbound|9080|v2|{REVIEWS}"));
    assert_eq!(v2["outlier_detection"], c["outlier_detection"]);
    // details has no connection pool: no protocol options, Istio's default breakers.
    let d = cluster(&t, "outbound|9080||details.default.svc.cluster.local");
    assert!(d.get("typed_extension_protocol_options").is_none());
    assert_eq!(
        d["circuit_breakers"]["thresholds"][0]["max_requests"],
        u64::from(u32::MAX)
    );
    assert_eq!(d["outlier_detection"]["consecutive_5xx"], 5);
    assert_eq!(d["outlier_detection"]["base_ejection_time"], "30s");
}

#[test]
fn a_base_ejection_time_above_five_minutes_raises_envoys_ejection_cap() {
    // B: 5m is Envoy's default cap already; nothing to raise.
    let r = render("b-locality-preferred");
    let t = r.translate("m1c1", &r.any_registry(), &r.sidecar("m1c1"));
    let od = &cluster(&t, &format!("outbound|9080||{REVIEWS}"))["outlier_detection"];
    assert_eq!(od["base_ejection_time"], "300s");
    assert!(od.get("max_ejection_time").is_none(), "{od}");
    // 10m: Envoy would cap it at 300 s; istiod sets max_ejection_time to the base.
    let r = render("a-failover-distribution");
    edit(
        r.root(),
        "mesh/default/destinationrule-reviews.yaml",
        "baseEjectionTime: \"1m\"",
        "baseEjectionTime: \"10m\"",
    );
    let t = r.translate(
        "ack-hangzhou",
        &r.any_registry(),
        &r.sidecar("ack-hangzhou"),
    );
    let od = &cluster(&t, &format!("outbound|9080||{REVIEWS}"))["outlier_detection"];
    assert_eq!(od["base_ejection_time"], "600s");
    assert_eq!(od["max_ejection_time"], "600s");
}

#[test]
fn a_sidecar_routes_match_the_header_remove_it_and_retry_like_istio() {
    let r = render("a-failover-distribution");
    let t = r.translate(
        "ack-hangzhou",
        &r.any_registry(),
        &r.sidecar("ack-hangzhou"),
    );
    assert_eq!(t.listeners, [("0.0.0.0_9080".to_string(), 9080)]);
    let rc = &hcm(&t, "0.0.0.0_9080")["route_config"];
    assert_eq!(rc["name"], "9080");
    assert_eq!(rc["ignore_port_in_host_matching"], true);
    let vh = vhost(&t, "0.0.0.0_9080", &format!("{REVIEWS}:9080"));
    assert_eq!(
        vh["domains"],
        json!([REVIEWS, "reviews", "reviews.default.svc", "reviews.default"])
    );
    let all = vh["routes"].as_array().unwrap();
    let names: Vec<&str> = all.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "geolb-cn-hangzhou-idempotent",
            "geolb-cn-hangzhou",
            "geolb-cn-shanghai-idempotent",
            "geolb-cn-shanghai",
            "geolb-fallback-idempotent",
            "geolb-fallback"
        ]
    );
    // Idempotent methods first: the `:method` match, and `reset` among the conditions.
    for idem in all.iter().step_by(2) {
        let headers = idem["match"]["headers"].as_array().unwrap();
        assert_eq!(
            headers.last().unwrap(),
            &json!({ "name": ":method", "string_match": { "safe_regex": { "regex": "GET|HEAD|OPTIONS|PUT|DELETE|TRACE" } } })
        );
        assert_eq!(
            idem["route"]["retry_policy"]["retry_on"],
            "connect-failure,refused-stream,unavailable,cancelled,reset,retriable-status-codes"
        );
    }
    let routes: Vec<Value> = all.iter().skip(1).step_by(2).cloned().collect();
    assert_eq!(
        routes[1]["match"],
        json!({ "prefix": "/", "headers": [{ "name": "x-geolb-region", "string_match": { "exact": r.routed("cn-shanghai") } }] })
    );
    assert_eq!(routes[2]["match"], json!({ "prefix": "/" }));
    assert_eq!(
        routes[1]["route"]["cluster"],
        format!("outbound|9080|geolb-cn-shanghai|{REVIEWS}")
    );
    assert_eq!(
        routes[2]["route"]["cluster"],
        format!("outbound|9080||{REVIEWS}")
    );
    for route in &routes {
        assert_eq!(
            route["request_headers_to_remove"],
            json!(["x-geolb-region"])
        );
        assert_eq!(route["route"]["timeout"], "0s");
        // retries {attempts: 2, retryOn: "...,503", retryRemoteLocalities: true}
        assert_eq!(
            route["route"]["retry_policy"],
            json!({
                "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
                "num_retries": 2,
                "retriable_status_codes": [503],
                "retry_host_predicate": [{
                    "name": "envoy.retry_host_predicates.previous_hosts",
                    "typed_config": { "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate" },
                }],
                "host_selection_retry_max_attempts": 5,
                "retry_priority": {
                    "name": "envoy.retry_priorities.previous_priorities",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
                        "update_frequency": 2,
                    },
                },
            })
        );
    }
}

#[test]
fn a_service_without_virtual_service_gets_istios_default_route() {
    let r = render("a-failover-distribution");
    let mut registry = r.any_registry();
    registry.workloads.push(Workload {
        service: "extra.other.svc.cluster.local".into(),
        port: 9080,
        address: SocketAddr::from(([127, 0, 0, 1], 29_999)),
        labels: BTreeMap::from([("app".into(), "extra".into())]),
        cluster: "ack-hangzhou".into(),
        network: String::new(),
        locality: r.locality("ack-hangzhou"),
        sidecar: false,
        service_account: DEFAULT_SERVICE_ACCOUNT.into(),
    });
    let t = r.translate("ack-hangzhou", &registry, &r.sidecar("ack-hangzhou"));
    let vh = vhost(&t, "0.0.0.0_9080", "extra.other.svc.cluster.local:9080");
    // Another namespace: no short name.
    assert_eq!(
        vh["domains"],
        json!([
            "extra.other.svc.cluster.local",
            "extra.other",
            "extra.other.svc"
        ])
    );
    let route = &vh["routes"][0];
    assert_eq!(route["name"], "default");
    assert_eq!(route["match"], json!({ "prefix": "/" }));
    assert_eq!(
        route["route"]["cluster"],
        "outbound|9080||extra.other.svc.cluster.local"
    );
    // Istio's DefaultPolicy exactly: `retriable-status-codes` without codes, so a 503
    // answer is not retried (only a VirtualService retryOn with codes adds them).
    assert_eq!(
        route["route"]["retry_policy"],
        json!({
            "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
            "num_retries": 2,
            "retry_host_predicate": [{
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": { "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate" },
            }],
            "host_selection_retry_max_attempts": 5,
        })
    );
    // No DestinationRule: no outlier detection, so no priorities and Envoy's panic default.
    let c = cluster(&t, "outbound|9080||extra.other.svc.cluster.local");
    assert!(c.get("outlier_detection").is_none());
    assert!(c.get("common_lb_config").is_none());
}

#[test]
fn a_ingress_gateway_serves_the_gateway_virtual_service_on_port_80() {
    let r = render("a-failover-distribution");
    let t = r.translate(
        "ack-hangzhou",
        &r.any_registry(),
        &r.gateway("ack-hangzhou"),
    );
    assert_eq!(t.listeners, [("0.0.0.0_80".to_string(), 80)]);
    assert_eq!(hcm(&t, "0.0.0.0_80")["use_remote_address"], true);
    assert_eq!(hcm(&t, "0.0.0.0_80")["route_config"]["name"], "http.80");
    let vh = vhost(&t, "0.0.0.0_80", "*:80");
    assert_eq!(vh["domains"], json!(["*"]));
    let all = vh["routes"].as_array().unwrap();
    // 3 http routes (2 regions + fallback), each split by method, × 5 match blocks.
    assert_eq!(all.len(), 30);
    let routes: Vec<Value> = all
        .iter()
        .filter(|r| !r["name"].as_str().unwrap().ends_with("-idempotent"))
        .cloned()
        .collect();
    assert_eq!(routes.len(), 15);
    assert_eq!(routes[0]["name"], "productpage-geolb-cn-hangzhou");
    assert_eq!(
        routes[0]["match"],
        json!({ "path": "/productpage", "headers": [{ "name": "x-geolb-region", "string_match": { "exact": r.routed("cn-hangzhou") } }] })
    );
    assert_eq!(routes[3]["match"]["prefix"], "/static");
    assert_eq!(
        routes[14]["route"]["cluster"],
        format!("outbound|9080||{PRODUCTPAGE}")
    );
    assert!(routes[14]["match"].get("headers").is_none());
    // The node is a router in istio-system.
    let node = &t.bootstrap["node"];
    assert_eq!(
        node["id"],
        "router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
    );
    assert_eq!(node["cluster"], "istio-ingressgateway.istio-system");
}

/// The names of a connection manager's HTTP filters, in order.
fn filter_names(t: &Translated, listener: &str) -> Vec<String> {
    hcm(t, listener)["http_filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

/// Istio's HTTP filters after the STATS-phase extensions (upstream Envoy's, the
/// Istio-only alpn and stats left out).
const AFTER_EXTENSIONS: [&str; 4] = [
    "envoy.filters.http.grpc_stats",
    "envoy.filters.http.fault",
    "envoy.filters.http.cors",
    "envoy.filters.http.router",
];

#[test]
fn wasm_plugins_become_ecds_filters_named_as_istio_translates_them() {
    let r = render("a-failover-distribution");
    let registry = r.any_registry();
    // The sidecar in `default` gets the namespace's plugin, not the gateway's: istiod
    // translated the WasmPlugin into the TrafficExtension `geolb~istio-translated-wasmplugin`.
    let t = r.translate("ack-hangzhou", &registry, &r.sidecar("ack-hangzhou"));
    let geolb = "extensions.istio.io/trafficextension/default.geolb~istio-translated-wasmplugin";
    // Phase STATS: after the route-reading authorization place, before Istio's others.
    let mut want = vec!["envoy.filters.http.rbac", geolb];
    want.extend(AFTER_EXTENSIONS);
    assert_eq!(filter_names(&t, "0.0.0.0_9080"), want);
    let filters = hcm(&t, "0.0.0.0_9080")["http_filters"].as_array().unwrap();
    let discovery = &filters[1]["config_discovery"];
    assert_eq!(
        discovery["type_urls"],
        json!([
            "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
        ])
    );
    assert_eq!(discovery["config_source"]["initial_fetch_timeout"], "0s");
    let file = discovery["config_source"]["path_config_source"]["path"]
        .as_str()
        .unwrap();
    assert_eq!(file, "ecds/default.geolb~istio-translated-wasmplugin.json");
    assert_eq!(t.ecds[file]["resources"][0]["name"], geolb);
    let config = &t.ecds[file]["resources"][0]["typed_config"]["config"];
    assert_eq!(config["name"], "default.geolb~istio-translated-wasmplugin");
    assert_eq!(config["root_id"], "geolb");
    assert_eq!(config["failure_policy"], "FAIL_OPEN");
    assert_eq!(config["vm_config"]["runtime"], "envoy.wasm.runtime.v8");
    assert!(config["vm_config"].get("vm_id").is_none());
    assert_eq!(
        config["vm_config"]["code"]["local"]["filename"],
        geolb_wasm().to_string_lossy().as_ref()
    );
    // istio-agent pulled the oci:// module and stripped istiod's ISTIO_META_* VM
    // variables: none is left, so the VM has no environment.
    assert!(
        config["vm_config"].get("environment_variables").is_none(),
        "{config}"
    );
    assert_eq!(
        config["configuration"]["@type"],
        "type.googleapis.com/google.protobuf.StringValue"
    );
    let sent: Value =
        serde_json::from_str(config["configuration"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(
        sent,
        plugin_config(r.root(), "mesh/default/wasmplugin-geolb.yaml")
    );
    // The ingress gateway gets the root-namespace plugin its selector matches: ONE
    // object for every cluster, so both clusters' gateways get the same resource.
    let gateway_ecds = |cluster: &str| {
        let t = r.translate(cluster, &registry, &r.gateway(cluster));
        let name = "extensions.istio.io/trafficextension/istio-system.geolb-bookinfo-gateway~istio-translated-wasmplugin";
        let mut want = vec!["envoy.filters.http.rbac", name];
        want.extend(AFTER_EXTENSIONS);
        assert_eq!(filter_names(&t, "0.0.0.0_80"), want, "{cluster}");
        t.ecds
    };
    let ecds = gateway_ecds("ack-shanghai");
    assert_eq!(ecds, gateway_ecds("ack-hangzhou"));
    let config = &ecds["ecds/istio-system.geolb-bookinfo-gateway~istio-translated-wasmplugin.json"]
        ["resources"][0]["typed_config"]["config"];
    let sent: Value =
        serde_json::from_str(config["configuration"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(
        sent,
        plugin_config(
            r.root(),
            "mesh/istio-system/wasmplugin-geolb-bookinfo-gateway.yaml"
        )
    );
    assert!(sent.get("sourceRegion").is_none(), "{sent}");
    assert_eq!(
        sent["clusterRegions"][r.cluster_id("ack-shanghai")],
        "cn-shanghai"
    );
}

#[test]
fn a_plugins_phase_places_it_among_istios_filters() {
    let place = |phase: &str| {
        let r = render("a-failover-distribution");
        edit(
            r.root(),
            "mesh/default/wasmplugin-geolb.yaml",
            "phase: \"STATS\"",
            &format!("phase: \"{phase}\""),
        );
        let t = r.translate(
            "ack-hangzhou",
            &r.any_registry(),
            &r.sidecar("ack-hangzhou"),
        );
        let names = filter_names(&t, "0.0.0.0_9080");
        let geolb = names.iter().position(|n| n.contains("geolb")).unwrap();
        let rbac = names
            .iter()
            .position(|n| n == "envoy.filters.http.rbac")
            .unwrap();
        assert_eq!(
            names[names.len() - AFTER_EXTENSIONS.len()..],
            AFTER_EXTENSIONS
        );
        geolb < rbac
    };
    assert!(place("AUTHN"), "AUTHN runs before authorization");
    assert!(
        place("AUTHZ"),
        "AUTHZ runs before Istio's authorization filters"
    );
    assert!(!place("STATS"));
    assert!(!place("UNSPECIFIED_PHASE"));
}

#[test]
fn the_bootstrap_node_is_what_istio_agent_writes_in_each_kind_of_cluster() {
    let r = render("a-failover-distribution");
    let registry = r.any_registry();
    let node =
        |proxy: Proxy| r.translate("ack-hangzhou", &registry, &proxy).bootstrap["node"].clone();
    // ACK: no istio-locality label, no GCP/AWS/Azure metadata: no locality at all.
    let n = node(r.sidecar("ack-hangzhou"));
    assert_eq!(n["locality"], json!({}));
    // The injector's ISTIO_META_*: the cluster ID the vendor gives the cluster (ASM:
    // the ACK cluster ID, the plan's clusterId), as the cluster's console note says.
    assert_eq!(
        n["metadata"]["CLUSTER_ID"],
        r.cluster_id("ack-hangzhou").as_str()
    );
    assert_ne!(r.cluster_id("ack-hangzhou"), "ack-hangzhou");
    assert_eq!(n["metadata"]["MESH_ID"], "asm-bookinfo");
    assert!(n["metadata"].get("NETWORK").is_none(), "single network");
    // LABELS are the pod's labels: the node's topology is not among them.
    assert_eq!(
        n["metadata"]["LABELS"],
        json!({ "app": "productpage", "version": "v1" })
    );
    // GKE-like: the platform gives region and zone.
    let n = node(
        r.sidecar("ack-hangzhou")
            .with_node_locality(NodeLocality::Platform),
    );
    assert_eq!(n["locality"], json!({ "region": "cn-hangzhou" }));
    // The pod label: sanitized into LABELS and the node locality.
    let mut labelled = r
        .sidecar("ack-hangzhou")
        .with_node_locality(NodeLocality::PodLabel);
    labelled
        .labels
        .insert("istio-locality".into(), "cn-hangzhou.cn-hangzhou-h".into());
    let n = node(labelled);
    assert_eq!(
        n["locality"],
        json!({ "region": "cn-hangzhou", "zone": "cn-hangzhou-h" })
    );
    assert_eq!(
        n["metadata"]["LABELS"]["istio-locality"],
        "cn-hangzhou/cn-hangzhou-h"
    );
    // A proxy whose registry cluster is not what the injector gives it is refused.
    let mut elsewhere = r.sidecar("ack-hangzhou");
    elsewhere.cluster = r.cluster_id("ack-shanghai");
    let e = translate(
        &r.load("ack-hangzhou"),
        &registry,
        &elsewhere,
        &Environment::local(),
    )
    .unwrap_err();
    assert_eq!(
        e.at,
        "clusters/ack-hangzhou/vendor-console.md: spec.values.global"
    );
}

#[test]
fn istiod_computes_priorities_from_the_kubernetes_locality_whatever_the_bootstrap_says() {
    let r = render("a-failover-distribution");
    let registry = r.any_registry();
    let fail_open = format!("outbound|9080||{REVIEWS}");
    for flavour in NodeLocality::ALL {
        for (proxy_cluster, hz, sh) in [("ack-hangzhou", 0, 1), ("ack-shanghai", 1, 0)] {
            let proxy = r.sidecar(proxy_cluster).with_node_locality(flavour);
            let t = r.translate(proxy_cluster, &registry, &proxy);
            assert_eq!(
                priorities(cluster(&t, &fail_open)),
                pairs(&[("cn-hangzhou", hz), ("cn-shanghai", sh)]),
                "{flavour}, proxy in {proxy_cluster}"
            );
        }
    }
}

#[test]
fn a_traffic_extension_render_gives_the_same_filter_as_the_wasm_plugin() {
    let r = render("a-failover-distribution");
    let files = geolb::render_file(
        &plan_path("a-failover-distribution"),
        geolb::render::ExtensionApi::Trafficextension,
        &geolb::secret::RouteSecrets::example().unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in &files {
        let file = dir.path().join(rel);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, text).unwrap();
    }
    let registry = r.any_registry();
    let proxy = r.sidecar("ack-hangzhou");
    let via_traffic_extension = translate(
        &ClusterManifests::load(dir.path(), "ack-hangzhou").unwrap(),
        &registry,
        &proxy,
        &Environment::local(),
    )
    .unwrap();
    // The same filter, but a real TrafficExtension keeps its own name (no marker) and
    // has its own resourceVersion.
    let normalized = |t: &Translated| {
        let mut out = Vec::new();
        for response in t.ecds.values() {
            let mut r = response["resources"][0].clone();
            let name = r["name"]
                .as_str()
                .unwrap()
                .replace("~istio-translated-wasmplugin", "");
            r["name"] = json!(name);
            let config = &mut r["typed_config"]["config"];
            config["name"] = json!(
                config["name"]
                    .as_str()
                    .unwrap()
                    .replace("~istio-translated-wasmplugin", "")
            );
            if let Some(env) =
                config["vm_config"]["environment_variables"]["key_values"].as_object_mut()
            {
                env.remove("ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION");
            }
            out.push(r);
        }
        out
    };
    assert_eq!(
        via_traffic_extension.ecds.keys().collect::<Vec<_>>(),
        ["ecds/default.geolb.json"]
    );
    assert_eq!(
        normalized(&via_traffic_extension),
        normalized(&r.translate("ack-hangzhou", &registry, &proxy))
    );
}

// ---- strictness --------------------------------------------------------------------

/// Rewrites one rendered file (the first occurrence of `from` becomes `to`).
fn edit(root: &Path, file: &str, from: &str, to: &str) {
    let path = root.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

fn load_error(root: &Path, cluster: &str) -> TranslateError {
    match ClusterManifests::load(root, cluster) {
        Ok(_) => panic!("the edited manifests loaded"),
        Err(e) => e,
    }
}

#[test]
fn an_unknown_field_is_an_error_naming_file_and_field() {
    let r = render("a-failover-distribution");
    let dr = "mesh/default/destinationrule-reviews.yaml";
    edit(
        r.root(),
        dr,
        "  trafficPolicy:\n",
        "  trafficPolicy:\n    tls:\n      mode: ISTIO_MUTUAL\n",
    );
    let e = load_error(r.root(), "ack-hangzhou");
    assert_eq!(e.at, format!("{dr}: spec.trafficPolicy.tls"), "{e}");
    assert!(e.message.contains("unknown field `tls`"), "{e}");

    let r = render("a-failover-distribution");
    edit(
        r.root(),
        dr,
        "  - name: \"geolb-cn-hangzhou\"\n    trafficPolicy:\n",
        "  - name: \"geolb-cn-hangzhou\"\n    trafficPolicy:\n      portLevelSettings: []\n",
    );
    let e = load_error(r.root(), "ack-shanghai");
    assert_eq!(
        e.at,
        format!("{dr}: spec.subsets[0].trafficPolicy.portLevelSettings"),
        "{e}"
    );

    // A StringMatch form geolb never renders.
    let r = render("a-failover-distribution");
    let vs = "mesh/default/virtualservice-reviews.yaml";
    let exact = format!("exact: \"{}\"", r.routed("cn-shanghai"));
    edit(r.root(), vs, &exact, "regex: \"cn-.*\"");
    let e = load_error(r.root(), "ack-hangzhou");
    assert_eq!(
        e.at,
        format!("{vs}: spec.http[1].match[0].headers.x-geolb-region.regex"),
        "{e}"
    );
}

#[test]
fn an_unknown_kind_is_an_error() {
    let r = render("a-failover-distribution");
    std::fs::write(
        r.root().join("mesh/default/serviceentry-x.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: x\nspec:\n  hosts: [x.example]\n",
    )
    .unwrap();
    edit(
        r.root(),
        "mesh/kustomization.yaml",
        "resources:\n",
        "resources:\n- \"default/serviceentry-x.yaml\"\n",
    );
    let e = load_error(r.root(), "ack-hangzhou");
    assert_eq!(e.at, "mesh/default/serviceentry-x.yaml: kind", "{e}");
    assert!(e.message.contains("unknown kind `ServiceEntry`"), "{e}");
}

#[test]
fn a_resource_applied_twice_is_an_error() {
    let r = render("a-failover-distribution");
    edit(
        r.root(),
        "control-plane/asm-bookinfo/kustomization.yaml",
        "resources:\n",
        "resources:\n- \"../../mesh/default/gateway-bookinfo-gateway.yaml\"\n",
    );
    let e = load_error(r.root(), "ack-hangzhou");
    assert_eq!(e.at, "mesh/default/gateway-bookinfo-gateway.yaml", "{e}");
    assert!(
        e.message
            .contains("Gateway/default/bookinfo-gateway is applied twice"),
        "{e}"
    );
}

/// The image of `module` as an OCI layout in a fresh temporary directory.
fn image_of(module: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oci");
    geolb_image::Image::build(&std::fs::read(module).unwrap(), "0.1.0")
        .unwrap()
        .write_layout(&layout)
        .unwrap();
    (dir, layout)
}

fn translate_error(r: &Rendered, env: &Environment) -> TranslateError {
    translate(
        &r.load("ack-hangzhou"),
        &r.any_registry(),
        &r.sidecar("ack-hangzhou"),
        env,
    )
    .unwrap_err()
}

#[test]
fn an_image_whose_manifest_digest_is_not_the_pin_is_refused() {
    let r = render("a-failover-distribution");
    let (_dir, layout) = image_of(&empty_wasm());
    let env = Environment::local().with_wasm_image(GEOLB_MODULE_URL, layout.clone(), empty_wasm());
    let e = translate_error(&r, &env);
    assert_eq!(
        e.at, "mesh/default/wasmplugin-geolb.yaml: spec.sha256",
        "{e}"
    );
    let pinned = r.plan.filter.sha256.clone().unwrap();
    let empty = geolb_image::read_layout(&layout, None)
        .unwrap()
        .manifest_digest;
    assert!(
        e.message.contains(&pinned) && e.message.contains(&empty),
        "{e}"
    );
}

#[test]
fn the_module_s_own_sha256_is_not_an_oci_pin() {
    let r = render("a-failover-distribution");
    let module_sha = std::fs::read_to_string(geolb_wasm().with_extension("wasm.sha256")).unwrap();
    let module_sha = module_sha.split_whitespace().next().unwrap();
    let pinned = r.plan.filter.sha256.clone().unwrap();
    edit(
        r.root(),
        "mesh/default/wasmplugin-geolb.yaml",
        &pinned,
        module_sha,
    );
    let e = translate_error(&r, &Environment::local());
    assert_eq!(
        e.at, "mesh/default/wasmplugin-geolb.yaml: spec.sha256",
        "{e}"
    );
    assert!(e.message.contains("manifest digest"), "{e}");
}

#[test]
fn an_image_that_does_not_hold_the_loaded_module_is_refused() {
    let r = render("a-failover-distribution");
    let (_dir, layout) = image_of(&empty_wasm());
    // The pin matches the image, but Envoy would load another module.
    let digest = geolb_image::read_layout(&layout, None).unwrap();
    let pinned = r.plan.filter.sha256.clone().unwrap();
    edit(
        r.root(),
        "mesh/default/wasmplugin-geolb.yaml",
        &pinned,
        digest.manifest_digest_hex(),
    );
    let env = Environment::local().with_wasm_image(GEOLB_MODULE_URL, layout, geolb_wasm());
    let e = translate_error(&r, &env);
    assert_eq!(e.at, "mesh/default/wasmplugin-geolb.yaml: spec.url", "{e}");
    assert!(e.message.contains("run scripts/build-wasm.sh"), "{e}");
}

#[test]
fn a_file_module_is_checked_against_its_own_sha256() {
    let r = render("a-failover-distribution");
    let file_url = "file:///opt/geolb/geolb_filter.wasm";
    let pinned = r.plan.filter.sha256.clone().unwrap();
    let module_sha = std::fs::read_to_string(geolb_wasm().with_extension("wasm.sha256")).unwrap();
    let module_sha = module_sha.split_whitespace().next().unwrap();
    let file = "mesh/default/wasmplugin-geolb.yaml";
    edit(r.root(), file, GEOLB_MODULE_URL, file_url);
    let env = Environment::local().with_wasm_file(file_url, geolb_wasm());
    // The image's digest is no pin for the file.
    let e = translate_error(&r, &env);
    assert_eq!(e.at, format!("{file}: spec.sha256"), "{e}");
    assert!(e.message.contains(module_sha), "{e}");
    edit(r.root(), file, &pinned, module_sha);
    let t = translate(
        &r.load("ack-hangzhou"),
        &r.any_registry(),
        &r.sidecar("ack-hangzhou"),
        &env,
    )
    .unwrap();
    // A local module passes istio-agent untouched: istiod's VM variables reach Envoy,
    // the resource version changing with every edit of the object.
    let config = |t: &Translated| {
        t.ecds["ecds/default.geolb~istio-translated-wasmplugin.json"]["resources"][0]
            ["typed_config"]["config"]
            .clone()
    };
    let c = config(&t);
    assert_eq!(
        c["vm_config"]["code"]["local"]["filename"],
        geolb_wasm().to_string_lossy().as_ref()
    );
    let vm_env = &c["vm_config"]["environment_variables"]["key_values"];
    assert_eq!(vm_env["ISTIO_META_WASM_IMAGE_PULL_POLICY"], "IfNotPresent");
    let version = vm_env["ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION"].clone();
    assert!(version.is_string(), "{c}");
    edit(r.root(), file, "cn-hangzhou: 90", "cn-hangzhou: 80");
    edit(r.root(), file, "cn-shanghai: 10", "cn-shanghai: 20");
    let edited = translate(
        &r.load("ack-hangzhou"),
        &r.any_registry(),
        &r.sidecar("ack-hangzhou"),
        &env,
    )
    .unwrap();
    assert_ne!(
        config(&edited)["vm_config"]["environment_variables"]["key_values"]["ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION"],
        version
    );
}

// ---- real Envoy ----------------------------------------------------------------------

#[test]
fn envoy_accepts_every_a_and_b_translation() {
    for scenario in ["a-failover-distribution", "b-locality-preferred"] {
        let r = render(scenario);
        let registry = r.any_registry();
        for c in &r.plan.clusters {
            for proxy in [r.sidecar(&c.name), r.gateway(&c.name)] {
                let t = r.translate(&c.name, &registry, &proxy);
                if let Err(out) = Envoy::validate_translated(&t) {
                    panic!(
                        "{scenario}/{}/{}: envoy --mode validate failed:\n{out}",
                        c.name, proxy.name
                    );
                }
            }
        }
    }
}

#[test]
fn a_translated_sidecar_routes_the_filters_choice_to_its_subset_and_takes_a_policy_push() {
    let r = render("a-failover-distribution");
    let v1 = Upstream::start("cn-hangzhou");
    let v2 = Upstream::start("cn-shanghai");
    let registry = r.registry(|service, version, _| match (service, version) {
        ("reviews", "v1") => Some(v1.addr()),
        ("reviews", "v2") => Some(v2.addr()),
        _ => None,
    });
    let proxy = r.sidecar("ack-hangzhou");
    let t = r.translate("ack-hangzhou", &registry, &proxy);
    let mut envoy = Envoy::start_translated(&t);
    let listener = envoy.listener_addr("0.0.0.0_9080");
    // A client-sent region never survives: the filter replaces it, the route sends the
    // request to the chosen region's subset and removes the header.
    let s = Summary::of(&send_on_one_connection(
        listener,
        &Request::reviews().header("x-geolb-region", "cn-beijing"),
        10,
    ));
    assert_eq!(s.failures(), 0, "{s}");
    assert_eq!(
        s.served_by("cn-hangzhou"),
        9,
        "the plan's 90/10 from cn-hangzhou: {s}"
    );
    assert_eq!(s.served_by("cn-shanghai"), 1, "{s}");
    assert!(wait_until(Duration::from_secs(2), || envoy
        .access_log()
        .len()
        >= 10));
    let to_shanghai_subset = envoy
        .access_log()
        .iter()
        .filter(|l| l.contains(&format!("outbound|9080|geolb-cn-shanghai|{REVIEWS}")))
        .count();
    assert_eq!(to_shanghai_subset, 1, "{:?}", envoy.access_log());
    assert_eq!(
        v1.last_request_headers()
            .iter()
            .find(|(k, _)| k == "x-geolb-region"),
        None
    );

    // Change the policy in the rendered WasmPlugin (as a re-render would) and push it.
    edit(
        r.root(),
        "mesh/default/wasmplugin-geolb.yaml",
        "          cn-hangzhou: 90\n          cn-shanghai: 10",
        "          cn-hangzhou: 50\n          cn-shanghai: 50",
    );
    let pushed = r.translate("ack-hangzhou", &registry, &proxy);
    let outcomes = envoy.update_translated(&pushed);
    assert_eq!(
        outcomes,
        [(
            "ecds/default.geolb~istio-translated-wasmplugin.json".to_string(),
            UpdateOutcome::Applied
        )]
    );
    let s = Summary::of(&send_on_one_connection(listener, &Request::reviews(), 10));
    assert_eq!(s.failures(), 0, "{s}");
    assert_eq!(s.served_by("cn-shanghai"), 5, "50/50 after the push: {s}");
}
