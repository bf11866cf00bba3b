//! The filter shell against a fake Envoy: configuration life cycle, header
//! replacement, outcome accounting, and health shared across workers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use std::rc::Rc;
use std::sync::Arc;

use geolb_filter::fake::FakeHost;
use geolb_filter::host::{Host, Level};
use geolb_filter::root::{Root, VmMemory};
use geolb_policy::store::MemoryStore;

use geolb_policy::testing::SEED_A;
use geolb_policy::testing::THREE_REGIONS as THREE;
const AUTHORITY: &str = "reviews.default.svc.cluster.local:9080";
use geolb_policy::testing::FIXTURE_ROUTE_TOKEN as TOKEN;

/// The routing header values as the region each routes to: the filter writes
/// `<region>.<token>`; anything else (a client value that survived) reads `raw:<value>`.
fn regions_of(values: Vec<String>) -> Vec<String> {
    values
        .into_iter()
        .map(|v| match v.strip_suffix(&format!(".{TOKEN}")) {
            Some(region) => region.to_owned(),
            None => format!("raw:{v}"),
        })
        .collect()
}

fn configured(policy: &str, region: &str) -> (FakeHost, Root) {
    configured_on(Arc::new(MemoryStore::default()), policy, region)
}

fn configured_on(store: Arc<MemoryStore>, policy: &str, region: &str) -> (FakeHost, Root) {
    let host = FakeHost::worker(store, region);
    host.set_config(policy);
    let mut root = Root::default();
    assert!(root.configure(&host));
    (host, root)
}

/// Sends one request through the shell; returns the routing header values Envoy
/// would route on. `response`: (status, flags, served region).
fn send(
    host: &FakeHost,
    root: &Root,
    headers: &[(&str, &str)],
    response: (Option<u16>, u64, Option<&str>),
) -> Vec<String> {
    send_with(host, root, headers, |_| response)
}

/// Like `send`, with the response chosen after seeing the routed region.
fn send_with<'a>(
    host: &FakeHost,
    root: &Root,
    headers: &[(&str, &str)],
    respond: impl Fn(Option<&str>) -> (Option<u16>, u64, Option<&'a str>),
) -> Vec<String> {
    let mut all = vec![(":authority", AUTHORITY)];
    all.extend_from_slice(headers);
    host.begin_request(&all);
    let mut request = root.request();
    request.on_request_headers(host);
    let routed = regions_of(host.request_header_values("x-geolb-region"));
    let response = respond(routed.first().map(String::as_str));
    host.respond(response.0, response.1, response.2);
    if response.0.is_some() {
        request.on_response_headers(host);
    }
    request.on_log(host);
    routed
}

/// A counter after the tick that adds the VM's counts to Envoy's counters.
fn counted(host: &FakeHost, root: &Root, name: &str) -> u64 {
    root.tick(host);
    host.counter(name)
}

/// A 200 whose upstream locality Envoy did not report.
const OK: (Option<u16>, u64, Option<&str>) = (Some(200), 0, None);

fn ok_from(region: &str) -> (Option<u16>, u64, Option<&'static str>) {
    (
        Some(200),
        0,
        Some(Box::leak(region.to_owned().into_boxed_str())),
    )
}

#[test]
fn splits_90_10_exactly_per_ten_requests() {
    let (host, root) = configured(SEED_A, "cn-hangzhou");
    let mut routed = Vec::new();
    for _ in 0..100 {
        let region = send(&host, &root, &[], (None, 0, None)).pop().unwrap();
        routed.push(region);
    }
    for window in routed.chunks(10) {
        assert_eq!(
            window.iter().filter(|r| *r == "cn-shanghai").count(),
            1,
            "{window:?}"
        );
    }
    assert_eq!(
        counted(
            &host,
            &root,
            "geolb.routed;service=reviews.default;region=cn-hangzhou"
        ),
        90
    );
    assert_eq!(
        counted(
            &host,
            &root,
            "geolb.routed;service=reviews.default;region=cn-shanghai"
        ),
        10
    );
}

#[test]
fn a_client_cannot_choose_the_region() {
    let (host, root) = configured(SEED_A, "cn-shanghai");
    let long = "cn-hangzhou".repeat(1_000);
    for attack in [
        vec![("x-geolb-region", "cn-hangzhou")],
        vec![("X-GeoLB-Region", "cn-hangzhou")],
        vec![
            ("x-geolb-region", "cn-hangzhou"),
            ("x-geolb-region", "cn-hangzhou"),
        ],
        vec![("x-geolb-region", "cn-hangzhou,cn-shanghai")],
        vec![("x-geolb-region", long.as_str())],
    ] {
        assert_eq!(
            send(&host, &root, &attack, ok_from("cn-shanghai")),
            ["cn-shanghai"],
            "{attack:?}"
        );
    }
}

#[test]
fn unknown_services_keep_default_routing_and_lose_the_client_header() {
    let (host, root) = configured(SEED_A, "cn-hangzhou");
    host.begin_request(&[
        (":authority", "details:9080"),
        ("x-geolb-region", "cn-shanghai"),
    ]);
    let mut request = root.request();
    request.on_request_headers(&host);
    assert!(host.request_header_values("x-geolb-region").is_empty());
    assert_eq!(request.chosen_region(), None);
}

/// What an ingress gateway's request looks like: a Host that names no service.
const GATEWAY_AUTHORITY: &str = "bookinfo.example.com";

/// Seed A as the generator writes it for an ingress gateway: `serviceFromRoute` on.
fn gateway_policy() -> String {
    let mut policy: serde_json::Value = serde_json::from_str(SEED_A).unwrap();
    policy["serviceFromRoute"] = serde_json::Value::Bool(true);
    policy.to_string()
}

/// A gateway's filter (the policy looks services up by their route too).
fn gateway(region: &str) -> (FakeHost, Root) {
    configured(&gateway_policy(), region)
}
/// The cluster of the gateway's route without the header (geolb's fallback route).
const REVIEWS_FALLBACK: &str = "outbound|9080||reviews.default.svc.cluster.local";

/// One request whose route Envoy selected for `cluster` as the headers arrived;
/// returns the routing header values after the filter, and the region it chose.
fn send_via_route(
    host: &FakeHost,
    root: &Root,
    headers: &[(&str, &str)],
    cluster: Option<&str>,
    response: (Option<u16>, u64, Option<&str>),
) -> (Vec<String>, Option<String>) {
    host.begin_request(headers);
    if let Some(cluster) = cluster {
        host.route_to_cluster(cluster);
    }
    let mut request = root.request();
    request.on_request_headers(host);
    let routed = regions_of(host.request_header_values("x-geolb-region"));
    let chosen = request.chosen_region().map(str::to_owned);
    host.respond(response.0, response.1, response.2);
    if response.0.is_some() {
        request.on_response_headers(host);
    }
    request.on_log(host);
    (routed, chosen)
}

#[test]
fn a_gateway_request_is_routed_by_the_cluster_of_its_route() {
    let (host, root) = gateway("cn-hangzhou");
    let mut shanghai = 0;
    for authority in [GATEWAY_AUTHORITY, "203.0.113.7", "203.0.113.7:80"] {
        for _ in 0..10 {
            let (routed, chosen) = send_via_route(
                &host,
                &root,
                &[(":authority", authority)],
                Some(REVIEWS_FALLBACK),
                OK,
            );
            assert_eq!(routed.len(), 1, "{authority}: {routed:?}");
            assert_eq!(chosen.as_deref(), routed.first().map(String::as_str));
            shanghai += usize::from(routed == ["cn-shanghai"]);
        }
    }
    assert_eq!(shanghai, 3, "the 90/10 split, as at a sidecar");
    for (region, count) in [("cn-hangzhou", 27), ("cn-shanghai", 3)] {
        let name = format!("geolb.routed;service=reviews.default;region={region}");
        assert_eq!(counted(&host, &root, &name), count, "{name}");
    }
}

#[test]
fn a_gateway_request_a_client_routed_to_a_region_is_decided_again() {
    let (host, root) = gateway("cn-shanghai");
    // The client's header chose the cn-hangzhou route; the filter replaces it.
    let (routed, _) = send_via_route(
        &host,
        &root,
        &[
            (":authority", GATEWAY_AUTHORITY),
            ("x-geolb-region", "cn-hangzhou"),
        ],
        Some("outbound|9080|geolb-cn-hangzhou|reviews.default.svc.cluster.local"),
        ok_from("cn-shanghai"),
    );
    assert_eq!(routed, ["cn-shanghai"]);
}

#[test]
fn a_gateway_request_counts_its_outcome() {
    let (host, root) = gateway("cn-hangzhou"); // consecutiveFailures 1
    let gateway = [(":authority", GATEWAY_AUTHORITY)];
    let (routed, _) = send_via_route(
        &host,
        &root,
        &gateway,
        Some(REVIEWS_FALLBACK),
        (Some(503), 0x20, None),
    );
    assert_eq!(routed, ["cn-hangzhou"]);
    let ejections = "geolb.ejections;service=reviews.default;region=cn-hangzhou";
    assert_eq!(counted(&host, &root, ejections), 1);
    let (routed, _) = send_via_route(&host, &root, &gateway, Some(REVIEWS_FALLBACK), OK);
    assert_eq!(
        routed,
        ["cn-shanghai"],
        "failed over like a sidecar request"
    );
}

#[test]
fn a_route_to_a_cluster_of_no_service_leaves_the_request_alone() {
    let (host, root) = gateway("cn-hangzhou");
    for cluster in [
        None,
        Some("outbound|9080||details.default.svc.cluster.local"),
        Some("PassthroughCluster"),
    ] {
        let (routed, chosen) = send_via_route(
            &host,
            &root,
            &[
                (":authority", GATEWAY_AUTHORITY),
                ("x-geolb-region", "cn-shanghai"),
            ],
            cluster,
            OK,
        );
        assert_eq!((routed.len(), chosen), (0, None), "{cluster:?}");
    }
    let routed = "geolb.routed;service=reviews.default;region=cn-hangzhou";
    assert_eq!(counted(&host, &root, routed), 0);
}

#[test]
fn malformed_cluster_names_route_nothing() {
    let (host, root) = gateway("cn-hangzhou");
    for cluster in [
        "",
        "reviews.default.svc.cluster.local",
        "inbound|9080||reviews.default.svc.cluster.local",
        "outbound_.9080_._.reviews.default.svc.cluster.local",
        "outbound|9080|reviews.default.svc.cluster.local",
        "outbound|9080||",
        "outbound||geolb-cn-hangzhou|reviews.default.svc.cluster.local",
        "outbound|99999||reviews.default.svc.cluster.local",
        "outbound|9080||reviews.default.svc.cluster.local|x",
        "outbound|9080||reviews.default.svc.cluster.local\u{0}",
        "outbound|9080||r\u{e9}views.default.svc.cluster.local",
    ] {
        let (routed, chosen) = send_via_route(
            &host,
            &root,
            &[(":authority", GATEWAY_AUTHORITY)],
            Some(cluster),
            OK,
        );
        assert_eq!((routed.len(), chosen), (0, None), "{cluster:?}");
    }
    // Bytes that are not UTF-8 are no cluster name either.
    host.begin_request(&[(":authority", GATEWAY_AUTHORITY)]);
    host.set_property(&["xds", "cluster_name"], b"outbound|9080||\xffreviews");
    let mut request = root.request();
    request.on_request_headers(&host);
    assert_eq!(request.chosen_region(), None);
}

#[test]
fn a_request_whose_authority_names_the_service_reads_no_route() {
    let (host, root) = gateway("cn-hangzhou");
    // Even a route to another service's cluster: the authority decides, at no extra cost.
    let (routed, _) = send_via_route(
        &host,
        &root,
        &[(":authority", AUTHORITY)],
        Some("outbound|9080||details.default.svc.cluster.local"),
        (None, 0, None),
    );
    assert_eq!(routed, ["cn-hangzhou"]);
    assert!(
        !host
            .property_reads
            .borrow()
            .iter()
            .any(|p| p == "xds/cluster_name"),
        "{:?}",
        host.property_reads.borrow()
    );
}

#[test]
fn without_service_from_route_a_sidecar_reads_no_route() {
    // A sidecar's request to a service outside the policy whose route happens to go to a
    // policy service's cluster: without the flag geolb neither routes it nor pays the
    // property read for it.
    let (host, root) = configured(SEED_A, "cn-hangzhou");
    host.property_reads.borrow_mut().clear();
    let (routed, chosen) = send_via_route(
        &host,
        &root,
        &[
            (":authority", GATEWAY_AUTHORITY),
            ("x-geolb-region", "cn-shanghai"),
        ],
        Some(REVIEWS_FALLBACK),
        OK,
    );
    assert_eq!((routed.len(), chosen), (0, None), "client header removed");
    assert!(
        host.property_reads.borrow().is_empty(),
        "{:?}",
        host.property_reads.borrow()
    );
    let routed = "geolb.routed;service=reviews.default;region=cn-hangzhou";
    assert_eq!(counted(&host, &root, routed), 0);
    // The same request under the same policy with the flag on (a gateway's) is routed.
    let (host, root) = gateway("cn-hangzhou");
    let (routed, _) = send_via_route(
        &host,
        &root,
        &[(":authority", GATEWAY_AUTHORITY)],
        Some(REVIEWS_FALLBACK),
        OK,
    );
    assert_eq!(routed, ["cn-hangzhou"]);
}

#[test]
fn failures_eject_the_region_and_its_share_fails_over() {
    let (host, root) = configured(SEED_A, "cn-hangzhou"); // consecutiveFailures 1, base 1m
    // The first request goes to cn-hangzhou and fails with a connect failure.
    assert_eq!(
        send(&host, &root, &[], (Some(503), 0x20, None)),
        ["cn-hangzhou"]
    );
    assert_eq!(
        counted(
            &host,
            &root,
            "geolb.failures;service=reviews.default;region=cn-hangzhou"
        ),
        1
    );
    assert_eq!(
        counted(
            &host,
            &root,
            "geolb.ejections;service=reviews.default;region=cn-hangzhou"
        ),
        1
    );
    assert!(host.logs.borrow().iter().any(|(l, m)| *l == Level::Warn
        && m.contains("region cn-hangzhou of service reviews.default ejected for 60000 ms")));
    // Everything now goes to cn-shanghai, and the moved share is counted.
    let routed: Vec<String> = (0..10)
        .map(|_| {
            send(&host, &root, &[], ok_from("cn-shanghai"))
                .pop()
                .unwrap()
        })
        .collect();
    assert!(routed.iter().all(|r| r == "cn-shanghai"), "{routed:?}");
    assert_eq!(
        counted(
            &host,
            &root,
            "geolb.failovers;service=reviews.default;region=cn-hangzhou"
        ),
        9
    );
    // After the ejection (and the 10 s ramp) cn-hangzhou takes its share back.
    host.now.set(host.now.get() + 60_000 + 10_000);
    let routed: Vec<String> = (0..10)
        .map(|_| {
            send(&host, &root, &[], ok_from("cn-hangzhou"))
                .pop()
                .unwrap()
        })
        .collect();
    assert_eq!(
        routed.iter().filter(|r| *r == "cn-hangzhou").count(),
        9,
        "{routed:?}"
    );
}

#[test]
fn an_answer_from_another_region_counts_against_the_chosen_one() {
    let (host, root) = configured(SEED_A, "cn-hangzhou");
    // Envoy's priority failover served cn-hangzhou's request from cn-shanghai.
    send(&host, &root, &[], (Some(200), 0, Some("cn-shanghai")));
    assert_eq!(
        counted(
            &host,
            &root,
            "geolb.ejections;service=reviews.default;region=cn-hangzhou"
        ),
        1
    );
}

#[test]
fn local_replies_without_response_headers_are_recorded_from_the_log() {
    let (host, root) = configured(SEED_A, "cn-hangzhou");
    host.begin_request(&[(":authority", AUTHORITY)]);
    let mut request = root.request();
    request.on_request_headers(&host);
    host.set_property(&["response", "flags"], &0x10i64.to_le_bytes()); // upstream reset, no headers
    request.on_log(&host);
    assert_eq!(
        counted(
            &host,
            &root,
            "geolb.failures;service=reviews.default;region=cn-hangzhou"
        ),
        1
    );
    // Counted once even when both callbacks fire.
    let before = counted(
        &host,
        &root,
        "geolb.failures;service=reviews.default;region=cn-shanghai",
    );
    send(&host, &root, &[], (Some(503), 0, Some("cn-shanghai")));
    assert_eq!(
        counted(
            &host,
            &root,
            "geolb.failures;service=reviews.default;region=cn-shanghai"
        ),
        before + 1
    );
}

#[test]
fn one_workers_ejection_protects_every_worker() {
    let store = Arc::new(MemoryStore::default());
    let (worker_a, root_a) = configured_on(store.clone(), THREE, "cn-hangzhou"); // threshold 2
    let (worker_b, root_b) = configured_on(store, THREE, "cn-hangzhou");
    // Worker A sees cn-shanghai fail twice (its 20% share); cn-hangzhou answers.
    for _ in 0..10 {
        send_with(&worker_a, &root_a, &[], |region| match region {
            Some("cn-shanghai") => (Some(503), 0, None),
            _ => OK,
        });
    }
    assert_eq!(
        counted(
            &worker_a,
            &root_a,
            "geolb.ejections;service=reviews.default;region=cn-shanghai"
        ),
        1
    );
    // Worker B never saw a failure; after its next health refresh (tick) it sends
    // nothing to cn-shanghai.
    send(&worker_b, &root_b, &[], OK);
    root_b.tick(&worker_b);
    let routed: Vec<String> = (0..20)
        .map(|_| send(&worker_b, &root_b, &[], OK).pop().unwrap())
        .collect();
    assert_eq!(
        routed.iter().filter(|r| *r == "cn-shanghai").count(),
        0,
        "{routed:?}"
    );
    assert_eq!(
        routed.iter().filter(|r| *r == "cn-beijing").count(),
        4,
        "cn-shanghai's 20% goes down its chain"
    );
}

#[test]
fn no_healthy_region_leaves_the_header_unset_and_counts() {
    let (host, root) = configured(SEED_A, "cn-hangzhou");
    // Eject both regions.
    while counted(
        &host,
        &root,
        "geolb.ejections;service=reviews.default;region=cn-shanghai",
    ) == 0
        || counted(
            &host,
            &root,
            "geolb.ejections;service=reviews.default;region=cn-hangzhou",
        ) == 0
    {
        send(&host, &root, &[], (Some(503), 0, None));
    }
    assert!(
        send(
            &host,
            &root,
            &[("x-geolb-region", "cn-hangzhou")],
            (Some(200), 0, None)
        )
        .is_empty()
    );
    assert_eq!(
        counted(
            &host,
            &root,
            "geolb.no_healthy_region;service=reviews.default"
        ),
        1
    );
}

#[test]
fn an_invalid_first_policy_passes_traffic_through_without_stopping_envoy() {
    let host = FakeHost::worker(Arc::new(MemoryStore::default()), "cn-hangzhou");
    host.set_config(&SEED_A.replace("\"cn-shanghai\": 10", "\"cn-shanghai\": 20"));
    let mut root = Root::default();
    assert!(
        root.configure(&host),
        "start-up must not fail: Envoy would exit"
    );
    assert!(!root.is_active());
    assert_eq!(counted(&host, &root, "geolb.policy_rejected"), 1);
    let logs = host.logs.borrow().clone();
    assert!(
        logs.iter().any(|(l, m)| *l == Level::Error
            && m.contains(
                r#"services[0].distribute["cn-hangzhou"]: weights from cn-hangzhou sum to 110 (cn-hangzhou=90, cn-shanghai=20), must be 100"#
            )),
        "{logs:?}"
    );
    assert!(
        send(
            &host,
            &root,
            &[("x-geolb-region", "cn-shanghai")],
            (Some(200), 0, None)
        )
        .is_empty()
    );
}

/// Policy `SEED_A` with cn-hangzhou's weights summing to 99.
fn weights_99() -> String {
    SEED_A.replace("\"cn-shanghai\": 10", "\"cn-shanghai\": 9")
}

fn refusal_logs(host: &FakeHost) -> usize {
    host.logs
        .borrow()
        .iter()
        .filter(|(level, line)| *level == Level::Error && line.contains("policy update refused"))
        .count()
}

#[test]
fn without_an_active_policy_the_configured_routing_header_is_stripped() {
    // (configuration, the header the VirtualServices match, what the filter strips)
    let custom = SEED_A
        .replace("\"cn-shanghai\": 10", "\"cn-shanghai\": 20")
        .replacen('{', "{\"routingHeader\": \"x-my-region\",", 1);
    let cases = [
        // Pass-through after an invalid first policy naming a custom header.
        (custom.as_str(), "x-my-region"),
        // Pass-through whose custom header is itself invalid: the default.
        (r#"{"routingHeader": "X-Bad"}"#, "x-geolb-region"),
        // No configuration at all (unconfigured plugin).
        ("", "x-geolb-region"),
    ];
    for (config, header) in cases {
        let host = FakeHost::worker(Arc::new(MemoryStore::default()), "cn-hangzhou");
        host.set_config(config);
        let mut root = Root::default();
        assert!(root.configure(&host));
        assert!(!root.is_active());
        for name in [header, &header.to_ascii_uppercase()] {
            host.begin_request(&[(":authority", AUTHORITY), (name, "cn-shanghai")]);
            root.request().on_request_headers(&host);
            assert!(
                host.request_header_values(header).is_empty(),
                "{config:?}: {name} survived"
            );
        }
    }
}

#[test]
fn an_invalid_update_is_refused_by_every_fresh_vm_and_each_refusal_counted_and_logged() {
    let (host, root) = configured(SEED_A, "cn-hangzhou");
    // Envoy's configuration canary: a fresh VM per update. The same invalid JSON twice
    // (Envoy asks again when the module changed): refused, logged and counted twice.
    for n in 1..=2 {
        let canary = FakeHost::worker(host.store.clone(), "cn-hangzhou");
        canary.set_config(&weights_99());
        assert!(
            !Root::default().configure(&canary),
            "update {n} must be refused"
        );
        assert_eq!(refusal_logs(&canary), 1);
        assert_eq!(canary.counter("geolb.policy_rejected"), 1);
    }
    // The workers never saw it: the previous split serves.
    assert!(root.is_active());
    let routed: Vec<String> = (0..10)
        .map(|_| send(&host, &root, &[], OK).pop().unwrap())
        .collect();
    assert_eq!(routed.iter().filter(|r| *r == "cn-shanghai").count(), 1);
}

#[test]
fn a_vm_that_served_keeps_serving_its_policy_when_envoy_applies_an_invalid_update() {
    // Two worker VMs routing SEED_A; Envoy applies an invalid configuration without
    // a canary refusing it (proxy-wasm cached an earlier pass-through verdict).
    let store = Arc::new(MemoryStore::default());
    let workers: Vec<(FakeHost, Rc<VmMemory>)> = (0..2)
        .map(|_| {
            let host = FakeHost::worker(store.clone(), "cn-hangzhou");
            host.set_config(SEED_A);
            let vm = Rc::new(VmMemory::default());
            assert!(Root::in_vm(vm.clone()).configure(&host));
            (host, vm)
        })
        .collect();
    let (mut refusals, mut counted_refusals) = (0, 0);
    for (host, vm) in &workers {
        host.set_config(&weights_99());
        // A new root context in the same VM, as Envoy creates per configuration.
        let mut root = Root::in_vm(vm.clone());
        assert!(root.configure(host), "refusing here would fail the VM");
        assert!(root.is_active(), "the VM's previous policy keeps routing");
        let routed: Vec<String> = (0..10)
            .map(|_| send(host, &root, &[], OK).pop().unwrap())
            .collect();
        assert_eq!(routed.iter().filter(|r| *r == "cn-shanghai").count(), 1);
        refusals += refusal_logs(host);
        counted_refusals += host.counter("geolb.policy_rejected");
    }
    assert_eq!(
        (refusals, counted_refusals),
        (1, 1),
        "logged and counted once per proxy, not per VM"
    );
}

#[test]
fn a_proxy_without_a_region_keeps_default_routing_unless_the_policy_pins_one() {
    let host = FakeHost::worker(Arc::new(MemoryStore::default()), "cn-hangzhou");
    host.clear_property(&["xds", "node", "locality", "region"]);
    host.set_config(SEED_A);
    let mut root = Root::default();
    assert!(root.configure(&host));
    assert!(send(&host, &root, &[("x-geolb-region", "cn-shanghai")], OK).is_empty());
    let mut pinned: serde_json::Value = serde_json::from_str(SEED_A).unwrap();
    pinned["sourceRegion"] = "cn-shanghai".into();
    host.set_config(&pinned.to_string());
    assert!(root.configure(&host));
    assert_eq!(
        send(&host, &root, &[], ok_from("cn-shanghai")),
        ["cn-shanghai"]
    );
}

/// Seed A's policy with the mesh's cluster table, as `geolb render` writes it.
fn with_cluster_table() -> String {
    let mut policy: serde_json::Value = serde_json::from_str(SEED_A).unwrap();
    policy["clusterRegions"] =
        serde_json::json!({ "ack-hangzhou": "cn-hangzhou", "ack-shanghai": "cn-shanghai" });
    policy.to_string()
}

/// A proxy as istio-agent starts it on ACK: CLUSTER_ID set, no node locality.
fn without_locality(cluster_id: Option<&str>) -> FakeHost {
    let host = FakeHost::worker(Arc::new(MemoryStore::default()), "unused");
    host.clear_property(&["xds", "node", "locality", "region"]);
    if let Some(id) = cluster_id {
        host.set_property(&["xds", "node", "metadata", "CLUSTER_ID"], id.as_bytes());
    }
    host
}

#[test]
fn a_proxy_without_locality_takes_its_region_from_its_cluster_id() {
    let host = without_locality(Some("ack-hangzhou"));
    host.set_config(&with_cluster_table());
    let mut root = Root::default();
    assert!(root.configure(&host));
    let routed: Vec<String> = (0..10).flat_map(|_| send(&host, &root, &[], OK)).collect();
    assert_eq!(routed.iter().filter(|r| *r == "cn-shanghai").count(), 1);
    assert_eq!(routed.iter().filter(|r| *r == "cn-hangzhou").count(), 9);
    assert_eq!(counted(&host, &root, "geolb.source_region_conflicts"), 0);
}

#[test]
fn a_locality_that_disagrees_with_the_cluster_table_is_logged_and_counted_once() {
    let store = Arc::new(MemoryStore::default());
    let workers: Vec<(FakeHost, Root)> = (0..3)
        .map(|_| {
            let host = FakeHost::worker(store.clone(), "cn-shanghai");
            host.set_property(&["xds", "node", "metadata", "CLUSTER_ID"], b"ack-hangzhou");
            host.set_config(&with_cluster_table());
            let mut root = Root::default();
            assert!(root.configure(&host));
            (host, root)
        })
        .collect();
    let (first, first_root) = &workers[0];
    // The table wins: 9 of 10 stay in cn-hangzhou.
    let routed: Vec<String> = (0..10)
        .flat_map(|_| send(first, first_root, &[], OK))
        .collect();
    assert_eq!(routed.iter().filter(|r| *r == "cn-hangzhou").count(), 9);
    let conflicts: u64 = workers
        .iter()
        .map(|(h, r)| counted(h, r, "geolb.source_region_conflicts"))
        .sum();
    assert_eq!(conflicts, 1, "once per proxy, not per worker VM");
    let warnings: Vec<String> = workers
        .iter()
        .flat_map(|(h, _)| h.logs.borrow().clone())
        .filter(|(level, line)| *level == Level::Warn && line.contains("says \"cn-shanghai\""))
        .map(|(_, line)| line)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
}

#[test]
fn no_region_at_all_passes_through_logged_once_and_counted_per_request() {
    let host = without_locality(Some("not-in-the-plan"));
    host.set_config(&with_cluster_table());
    let mut root = Root::default();
    assert!(root.configure(&host));
    for _ in 0..4 {
        assert!(send(&host, &root, &[("x-geolb-region", "cn-shanghai")], OK).is_empty());
    }
    assert_eq!(
        counted(
            &host,
            &root,
            "geolb.no_source_region;service=reviews.default"
        ),
        4
    );
    let warnings: Vec<String> = host
        .logs
        .borrow()
        .iter()
        .filter(|(level, _)| *level == Level::Warn)
        .map(|(_, line)| line.clone())
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("\"not-in-the-plan\" is not in clusterRegions"),
        "{warnings:?}"
    );
}

#[test]
fn the_route_is_selected_again_after_every_change_of_the_routing_header() {
    let (host, root) = configured(SEED_A, "cn-hangzhou");
    // Routed: one re-selection, with the filter's value in place.
    send(&host, &root, &[("x-geolb-region", "cn-shanghai")], OK);
    let selections = host.route_selections.borrow().clone();
    assert_eq!(selections.len(), 1);
    let region: Vec<&String> = selections[0]
        .iter()
        .filter(|(k, _)| k == "x-geolb-region")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(region, [&format!("cn-hangzhou.{TOKEN}")]);

    // A service outside the policy: a client value is removed and the route selected
    // again; without one, nothing is written and nothing re-selected.
    for (headers, expected) in [
        (
            vec![
                (":authority", "ratings:9080"),
                ("x-geolb-region", "cn-shanghai"),
            ],
            1,
        ),
        (vec![(":authority", "ratings:9080")], 0),
    ] {
        host.begin_request(&headers);
        root.request().on_request_headers(&host);
        assert!(host.request_header_values("x-geolb-region").is_empty());
        assert_eq!(
            host.route_selections.borrow().len(),
            expected,
            "{headers:?}"
        );
    }
}

#[test]
fn answers_from_another_region_are_noticed_by_sample_or_on_the_next_tick() {
    let (host, root) = configured(SEED_A, "cn-shanghai"); // all of it to cn-shanghai
    let ejections = "geolb.ejections;service=reviews.default;region=cn-shanghai";
    send(&host, &root, &[], ok_from("cn-shanghai")); // checked: the first success
    // Envoy now serves cn-shanghai's requests from cn-hangzhou. Reading the served
    // region is sampled: the 16th success after the last check is checked.
    for _ in 0..15 {
        send(&host, &root, &[], ok_from("cn-hangzhou"));
    }
    assert_eq!(host.counter(ejections), 0);
    send(&host, &root, &[], ok_from("cn-hangzhou"));
    root.tick(&host);
    assert_eq!(host.counter(ejections), 1, "noticed on the 16th success");

    // A tick re-arms the check: the first success after it is checked at once.
    let (host, root) = configured(SEED_A, "cn-shanghai");
    send(&host, &root, &[], ok_from("cn-shanghai"));
    root.tick(&host);
    send(&host, &root, &[], ok_from("cn-hangzhou"));
    root.tick(&host);
    assert_eq!(
        host.counter(ejections),
        1,
        "noticed on the first success after a tick"
    );
}

#[test]
fn an_idle_worker_reads_fresh_health_when_traffic_resumes() {
    let store = Arc::new(MemoryStore::default());
    let (worker_a, root_a) = configured_on(store.clone(), SEED_A, "cn-hangzhou");
    let (worker_b, root_b) = configured_on(store, SEED_A, "cn-hangzhou");
    send(&worker_b, &root_b, &[], OK); // B has a copy of the health table
    root_b.tick(&worker_b); // ... refreshed while it had traffic
    root_b.tick(&worker_b); // ... then idle: the copy is dropped
    // A sees cn-hangzhou fail (threshold 1).
    assert_eq!(
        send(&worker_a, &root_a, &[], (Some(503), 0, None)),
        ["cn-hangzhou"]
    );
    // B's next request, before any tick of B, already avoids cn-hangzhou.
    assert_eq!(send(&worker_b, &root_b, &[], OK), ["cn-shanghai"]);
}

#[test]
fn counts_made_after_a_tick_are_flushed_by_the_next_one() {
    let (host, root) = configured(SEED_A, "cn-hangzhou");
    host.begin_request(&[(":authority", AUTHORITY)]);
    let mut request = root.request();
    request.on_request_headers(&host);
    root.tick(&host); // a tick while the request is in flight
    host.respond(Some(503), 0x20, None);
    request.on_response_headers(&host);
    request.on_log(&host);
    root.tick(&host);
    assert_eq!(
        host.counter("geolb.ejections;service=reviews.default;region=cn-hangzhou"),
        1
    );
}

#[test]
fn a_policy_update_keeps_health_unless_the_services_regions_change() {
    let (host, mut root) = configured(SEED_A, "cn-hangzhou"); // threshold 1, ejection 1m
    assert_eq!(
        send(&host, &root, &[], (Some(503), 0, None)),
        ["cn-hangzhou"]
    );
    // New weights, same regions: cn-hangzhou stays ejected.
    host.set_config(&SEED_A.replace(
        "\"cn-hangzhou\": 90, \"cn-shanghai\": 10",
        "\"cn-hangzhou\": 80, \"cn-shanghai\": 20",
    ));
    assert!(root.configure(&host));
    let routed: Vec<String> = (0..10)
        .map(|_| send(&host, &root, &[], OK).pop().unwrap())
        .collect();
    assert!(routed.iter().all(|r| r == "cn-shanghai"), "{routed:?}");
    // The service's regions change: its health starts clean.
    let mut three: serde_json::Value = serde_json::from_str(SEED_A).unwrap();
    three["regions"] = serde_json::json!(["cn-hangzhou", "cn-shanghai", "cn-beijing"]);
    three["services"][0]["regions"] =
        serde_json::json!(["cn-hangzhou", "cn-shanghai", "cn-beijing"]);
    host.set_config(&three.to_string());
    assert!(root.configure(&host));
    let routed: Vec<String> = (0..10)
        .map(|_| send(&host, &root, &[], OK).pop().unwrap())
        .collect();
    assert_eq!(
        routed.iter().filter(|r| *r == "cn-hangzhou").count(),
        9,
        "{routed:?}"
    );
}

const SIDECAR_NODE: &str = "sidecar~10.0.0.7~productpage-v1-1.default~default.svc.cluster.local";
const GATEWAY_NODE: &str =
    "router~10.0.0.9~istio-ingressgateway-1.istio-system~istio-system.svc.cluster.local";

/// `SEED_A` with `explain` on.
fn explaining() -> String {
    SEED_A.replacen('{', "{\"explain\": true,", 1)
}

/// The `x-geolb-explain` of the last response.
fn explained(host: &FakeHost) -> Option<String> {
    host.response_header("x-geolb-explain")
}

#[test]
fn a_sidecar_that_explains_tells_the_app_why_each_request_went_where() {
    let host = FakeHost::worker(Arc::new(MemoryStore::default()), "cn-hangzhou");
    host.set_property(&["xds", "node", "id"], SIDECAR_NODE.as_bytes());
    host.set_config(&explaining());
    let mut root = Root::default();
    assert!(root.configure(&host));
    assert!(root.is_active());

    let mut seen = Vec::new();
    for _ in 0..10 {
        send(&host, &root, &[], OK);
        seen.push(explained(&host).unwrap());
    }
    let split = |region: &str| format!("share={region}; region={region}; reason=split");
    assert_eq!(
        seen.iter().filter(|e| **e == split("cn-hangzhou")).count(),
        9
    );
    assert_eq!(
        seen.iter().filter(|e| **e == split("cn-shanghai")).count(),
        1
    );

    // cn-hangzhou fails (consecutiveFailures 1): its share goes down its chain.
    while counted(
        &host,
        &root,
        "geolb.ejections;service=reviews.default;region=cn-hangzhou",
    ) == 0
    {
        send(&host, &root, &[], (Some(503), 0x20, None));
    }
    let mut seen = Vec::new();
    for _ in 0..10 {
        send(&host, &root, &[], ok_from("cn-shanghai"));
        seen.push(explained(&host).unwrap());
    }
    assert!(seen.contains(&"share=cn-hangzhou; region=cn-shanghai; reason=failover".to_owned()));
    assert!(seen.contains(&split("cn-shanghai")), "{seen:?}");

    // Back from the ejection, inside the ramp.
    host.now.set(host.now.get() + 60_000 + 5_000);
    let mut seen = Vec::new();
    for _ in 0..50 {
        send(&host, &root, &[], ok_from("cn-hangzhou"));
        seen.push(explained(&host).unwrap());
    }
    assert!(
        seen.contains(&"share=cn-hangzhou; region=cn-hangzhou; reason=ramping".to_owned()),
        "{seen:?}"
    );

    // A service outside the policy.
    host.begin_request(&[(":authority", "ratings.default.svc.cluster.local:9080")]);
    let mut request = root.request();
    request.on_request_headers(&host);
    host.respond(Some(200), 0, None);
    request.on_response_headers(&host);
    assert_eq!(
        explained(&host).as_deref(),
        Some("reason=pass-through; cause=not-in-policy")
    );
}

#[test]
fn without_explain_no_response_is_touched() {
    let host = FakeHost::worker(Arc::new(MemoryStore::default()), "cn-hangzhou");
    host.set_property(&["xds", "node", "id"], SIDECAR_NODE.as_bytes());
    host.set_config(SEED_A);
    let mut root = Root::default();
    assert!(root.configure(&host));
    send(&host, &root, &[], OK);
    assert_eq!(explained(&host), None);
}

#[test]
fn a_gateway_refuses_a_policy_that_explains() {
    // As the first policy: pass-through (Envoy must not exit), refused and logged.
    let host = FakeHost::worker(Arc::new(MemoryStore::default()), "cn-hangzhou");
    host.set_property(&["xds", "node", "id"], GATEWAY_NODE.as_bytes());
    host.set_config(&explaining());
    let mut root = Root::default();
    assert!(root.configure(&host));
    assert!(!root.is_active());
    assert_eq!(counted(&host, &root, "geolb.policy_rejected"), 1);
    let logs = host.logs.borrow().clone();
    assert!(
        logs.iter().any(|(l, m)| *l == Level::Error
            && m.contains("explain: is for sidecars only, and this proxy is a \"router\"")),
        "{logs:?}"
    );
    assert!(send(&host, &root, &[("x-geolb-region", "cn-shanghai")], OK).is_empty());
    assert_eq!(explained(&host), None);

    // As an update of a gateway already serving: refused, the previous policy serves.
    let host = FakeHost::worker(Arc::new(MemoryStore::default()), "cn-hangzhou");
    host.set_property(&["xds", "node", "id"], GATEWAY_NODE.as_bytes());
    host.set_config(SEED_A);
    let mut root = Root::default();
    assert!(root.configure(&host));
    host.set_config(&explaining());
    let mut canary = Root::default();
    assert!(
        !canary.configure(&host),
        "Envoy's canary refuses the update"
    );
    assert_eq!(send(&host, &root, &[], OK).len(), 1);
    assert_eq!(explained(&host), None);

    // A proxy with no Istio node id is no sidecar either.
    let host = FakeHost::worker(Arc::new(MemoryStore::default()), "cn-hangzhou");
    host.set_config(&explaining());
    let mut root = Root::default();
    assert!(root.configure(&host));
    assert!(!root.is_active());
}

/// `SEED_A` with cn-hangzhou drained for every service.
fn hangzhou_drained() -> String {
    SEED_A.replacen('{', "{\"drain\": [\"cn-hangzhou\"],", 1)
}

/// Of `n` requests, how many went to cn-hangzhou.
fn to_hangzhou(host: &FakeHost, root: &Root, n: usize) -> usize {
    (0..n)
        .filter(|_| send(host, root, &[], OK).first().map(String::as_str) == Some("cn-hangzhou"))
        .count()
}

#[test]
fn a_proxy_that_starts_with_a_region_drained_sends_it_nothing_at_once() {
    let host = FakeHost::worker(Arc::new(MemoryStore::default()), "cn-hangzhou");
    host.set_property(&["xds", "node", "id"], SIDECAR_NODE.as_bytes());
    host.set_config(&hangzhou_drained().replacen('{', "{\"explain\": true,", 1));
    let mut root = Root::default();
    assert!(root.configure(&host));
    assert_eq!(to_hangzhou(&host, &root, 100), 0);
    assert_eq!(
        explained(&host).as_deref(),
        Some("share=cn-hangzhou; region=cn-shanghai; reason=drained")
    );
    assert_eq!(
        host.counter("geolb.drained;service=reviews.default;region=cn-hangzhou"),
        1
    );
    assert_eq!(
        host.counter("geolb.drained;service=reviews.default;region=cn-shanghai"),
        0
    );
}

#[test]
fn a_drain_moves_the_share_down_its_chain_over_the_ramp_and_back() {
    // A proxy serving seed A (90% cn-hangzhou) gets the drain as an update.
    let (host, mut root) = configured(SEED_A, "cn-hangzhou");
    assert_eq!(to_hangzhou(&host, &root, 1_000), 900);
    let start = host.now.get();
    host.set_config(&hangzhou_drained());
    assert!(root.configure(&host));
    assert!(host.logs.borrow().iter().any(|(_, m)| m.contains(
        "region cn-hangzhou of service reviews.default drained: its share moves down its failover chain, over 60000 ms"
    )));
    // The default ramp is 60 s: halfway, about half of the 90%.
    host.now.set(start + 30_000);
    let halfway = to_hangzhou(&host, &root, 1_000);
    assert!((400..=500).contains(&halfway), "{halfway} of 1000 halfway");
    host.now.set(start + 60_000);
    assert_eq!(to_hangzhou(&host, &root, 1_000), 0);
    // Lifted: back over the same ramp.
    let lifted = host.now.get();
    host.set_config(SEED_A);
    assert!(root.configure(&host));
    assert_eq!(
        host.counter("geolb.drained;service=reviews.default;region=cn-hangzhou"),
        0
    );
    host.now.set(lifted + 30_000);
    let halfway = to_hangzhou(&host, &root, 1_000);
    assert!(
        (400..=500).contains(&halfway),
        "{halfway} of 1000 halfway back"
    );
    host.now.set(lifted + 60_000);
    assert_eq!(to_hangzhou(&host, &root, 1_000), 900);
}

/// Seed A with probes of reviews every 200 ms (timeout 100 ms), 2 to come back, 3 to
/// eject.
fn probed() -> String {
    SEED_A.replacen(
        "\"regions\": [\"cn-hangzhou\", \"cn-shanghai\"],\n      \"failover\"",
        "\"regions\": [\"cn-hangzhou\", \"cn-shanghai\"],\n      \"probe\": {\"path\": \"/healthz\", \"port\": 9080, \"interval\": \"200ms\", \"timeout\": \"100ms\"},\n      \"failover\"",
        1,
    )
}

const PROBE_HANGZHOU: &str =
    "outbound|9080|geolb-probe-cn-hangzhou|reviews.default.svc.cluster.local";
const PROBE_SHANGHAI: &str =
    "outbound|9080|geolb-probe-cn-shanghai|reviews.default.svc.cluster.local";

/// Answers every probe `host` has in flight: `status` per cluster.
fn answer_probes(host: &FakeHost, root: &Root, status: impl Fn(&str) -> Option<u16>) {
    let calls = host.http_calls.borrow().clone();
    for call in calls {
        host.http_call_answer.set(status(&call.cluster));
        root.probe_answered(host, call.token);
    }
    host.http_calls.borrow_mut().clear();
}

#[test]
fn one_worker_of_a_proxy_probes_each_region_through_its_strict_cluster() {
    let store = Arc::new(MemoryStore::default());
    let (a, root_a) = configured_on(store.clone(), &probed(), "cn-hangzhou");
    let (b, root_b) = configured_on(store, &probed(), "cn-hangzhou");
    root_a.tick(&a);
    root_b.tick(&b);
    assert_eq!(a.calls_to(PROBE_HANGZHOU).len(), 1);
    assert_eq!(a.calls_to(PROBE_SHANGHAI).len(), 1);
    assert!(
        b.http_calls.borrow().is_empty(),
        "the other worker does not probe"
    );
    let call = a.http_calls.borrow()[0].clone();
    assert_eq!(
        call.headers,
        [
            (":method".to_owned(), "GET".to_owned()),
            (":path".to_owned(), "/healthz".to_owned()),
            (
                ":authority".to_owned(),
                "reviews.default.svc.cluster.local".to_owned()
            ),
            ("user-agent".to_owned(), "geolb-probe".to_owned()),
        ]
    );
    assert_eq!(call.timeout_ms, 100);
    // Within the interval: no second round, and a probe in flight is not repeated.
    a.now.set(a.now.get() + 100);
    root_a.tick(&a);
    assert_eq!(a.http_calls.borrow().len(), 2);
    answer_probes(&a, &root_a, |_| Some(200));
    a.now.set(a.now.get() + 100);
    root_a.tick(&a);
    assert_eq!(a.http_calls.borrow().len(), 2, "next round, both regions");
    assert_eq!(
        counted(
            &a,
            &root_a,
            "geolb.probes;service=reviews.default;region=cn-shanghai"
        ),
        2
    );
}

#[test]
fn failing_probes_eject_a_region_before_any_request_goes_there() {
    let (host, root) = configured(&probed(), "cn-hangzhou");
    for _ in 0..3 {
        root.tick(&host);
        answer_probes(&host, &root, |cluster| {
            (cluster == PROBE_HANGZHOU).then_some(200)
        });
        host.now.set(host.now.get() + 200);
    }
    let routed: Vec<String> = (0..20).flat_map(|_| send(&host, &root, &[], OK)).collect();
    assert!(routed.iter().all(|r| r == "cn-hangzhou"), "{routed:?}");
    assert_eq!(
        counted(
            &host,
            &root,
            "geolb.probe_failures;service=reviews.default;region=cn-shanghai"
        ),
        3
    );
    assert_eq!(
        host.counter("geolb.ejections;service=reviews.default;region=cn-shanghai"),
        1
    );
    assert!(
        host.logs.borrow().iter().any(|(_, l)| l
            .contains("region cn-shanghai of service reviews.default ejected")
            && l.contains("3 probes in a row failed (last: no answer)")),
        "{:?}",
        host.logs.borrow()
    );
}

#[test]
fn an_ejected_region_returns_only_after_its_probes_pass() {
    let (host, root) = configured(&probed(), "cn-hangzhou");
    // A failed request ejects cn-hangzhou for 1m (consecutiveFailures 1).
    send(&host, &root, &[], (Some(503), 0, Some("cn-hangzhou")));
    let probe_round = |status: u16| {
        root.tick(&host);
        answer_probes(&host, &root, |_| Some(status));
        host.now.set(host.now.get() + 200);
    };
    // Still dead after the minute: held.
    host.now.set(host.now.get() + 60_000);
    probe_round(503);
    probe_round(503);
    assert_eq!(
        to_hangzhou(&host, &root, 50),
        0,
        "held while the probes fail"
    );
    probe_round(200);
    assert_eq!(to_hangzhou(&host, &root, 50), 0, "one pass is not enough");
    probe_round(200);
    assert!(
        host.logs.borrow().iter().any(|(_, l)| l
            .contains("region cn-hangzhou of service reviews.default passed 2 probes in a row")),
        "{:?}",
        host.logs.borrow()
    );
    // Back on its 10 s recovery ramp from 5%.
    let back = to_hangzhou(&host, &root, 200);
    assert!((1..60).contains(&back), "{back}");
}

#[test]
fn when_the_probing_worker_goes_away_another_takes_over_within_a_lease() {
    let store = Arc::new(MemoryStore::default());
    let (a, root_a) = configured_on(store.clone(), &probed(), "cn-hangzhou");
    let (b, root_b) = configured_on(store, &probed(), "cn-hangzhou");
    root_a.tick(&a);
    assert_eq!(a.http_calls.borrow().len(), 2);
    // a stops ticking (its VM is gone); b ticks every 100 ms.
    let start = a.now.get();
    let mut took_over_after = None;
    for step in 1..=20 {
        b.now.set(start + step * 100);
        root_b.tick(&b);
        if !b.http_calls.borrow().is_empty() {
            took_over_after = Some(step * 100);
            break;
        }
    }
    assert_eq!(took_over_after, Some(geolb_policy::store::LEASE_MS));
}

#[test]
fn a_probe_cluster_envoy_does_not_know_is_logged_once_and_leaves_health_alone() {
    let (host, root) = configured(&probed(), "cn-hangzhou");
    *host.known_clusters.borrow_mut() = Some(vec![PROBE_HANGZHOU.to_owned()]);
    for _ in 0..5 {
        root.tick(&host);
        answer_probes(&host, &root, |_| Some(200));
        host.now.set(host.now.get() + 200);
    }
    let refusals = host
        .logs
        .borrow()
        .iter()
        .filter(|(_, l)| l.contains("cannot probe service reviews.default through cluster"))
        .count();
    assert_eq!(refusals, 1);
    let routed: Vec<String> = (0..10).flat_map(|_| send(&host, &root, &[], OK)).collect();
    assert_eq!(routed.iter().filter(|r| *r == "cn-shanghai").count(), 1);
}

#[test]
fn probes_stop_when_the_policy_no_longer_has_them() {
    let (host, mut root) = configured(&probed(), "cn-hangzhou");
    root.tick(&host);
    assert_eq!(host.http_calls.borrow().len(), 2);
    host.set_config(SEED_A);
    assert!(root.configure(&host));
    // A late answer to a probe of the old policy means nothing to the new one.
    answer_probes(&host, &root, |_| None);
    for _ in 0..20 {
        host.now.set(host.now.get() + 200);
        root.tick(&host);
    }
    assert!(host.http_calls.borrow().is_empty());
    let (plain, plain_root) = configured(SEED_A, "cn-hangzhou");
    plain_root.tick(&plain);
    assert!(
        plain.http_calls.borrow().is_empty(),
        "no probes without probe settings"
    );
    assert_eq!(
        plain.counter("geolb.probes;service=reviews.default;region=cn-hangzhou"),
        0
    );
}
