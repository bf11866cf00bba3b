//! Policy parsing and validation: every refusal names the field path and the values.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use geolb_policy::{CompiledPolicy, ServiceId, parse_policy, parse_wire};
use serde_json::{Value, json};

use geolb_policy::testing::SEED_A;
use geolb_policy::testing::THREE_REGIONS as THREE;

fn seed_a() -> Value {
    serde_json::from_str(SEED_A).unwrap()
}

/// First error message of a policy given as JSON.
fn refusal(policy: &Value) -> String {
    match parse_policy(policy.to_string().as_bytes()) {
        Ok(_) => panic!("policy was accepted: {policy:#}"),
        Err(errors) => errors.first().unwrap().to_string(),
    }
}

#[test]
fn seed_policies_compile() {
    let a = parse_policy(SEED_A.as_bytes()).unwrap();
    assert_eq!(a.regions(), ["cn-hangzhou", "cn-shanghai"]);
    assert_eq!(a.routing_header(), "x-geolb-region");
    assert!(!a.service_from_route(), "off unless asked for");
    let reviews = a.service(ServiceId(0)).unwrap();
    assert_eq!(reviews.health().consecutive_failures, 1);
    assert_eq!(reviews.health().base_ejection_ms, 60_000);
    assert_eq!(
        reviews.health().failure_status_codes,
        [502, 503, 504],
        "default kept"
    );
    let hz = a.region_id("cn-hangzhou").unwrap();
    assert_eq!(reviews.distribution(hz), Some(&[(0, 90), (1, 10)][..]));
    assert_eq!(reviews.failover_chain(hz), [1]);
    parse_policy(THREE.as_bytes()).unwrap();
}

#[test]
fn errors_name_the_field_path_and_values() {
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "weights sum",
            Box::new(|p| {
                p["services"][0]["distribute"]["cn-hangzhou"]["cn-shanghai"] = json!(0.0 + 5.0)
            }),
            r#"services[0].distribute["cn-hangzhou"]: weights from cn-hangzhou sum to 95 (cn-hangzhou=90, cn-shanghai=5), must be 100"#,
        ),
        (
            "weight range",
            Box::new(|p| {
                p["services"][0]["distribute"]["cn-hangzhou"] =
                    json!({"cn-hangzhou": 100, "cn-shanghai": 0})
            }),
            r#"services[0].distribute["cn-hangzhou"]["cn-shanghai"]: weight 0 for cn-hangzhou -> cn-shanghai is out of range; each weight must be 1..100"#,
        ),
        (
            "unknown region in weights",
            Box::new(|p| {
                p["services"][0]["distribute"]["cn-hangzhou"] =
                    json!({"cn-hangzhou": 90, "cn-beijing": 10})
            }),
            r#"services[0].distribute["cn-hangzhou"]["cn-beijing"]: unknown region "cn-beijing"; known regions: cn-hangzhou, cn-shanghai"#,
        ),
        (
            "unknown region in chain",
            Box::new(|p| p["services"][0]["failover"]["cn-hangzhou"] = json!(["cn-beijing"])),
            r#"services[0].failover["cn-hangzhou"][0]: unknown region "cn-beijing"; known regions: cn-hangzhou, cn-shanghai"#,
        ),
        (
            "unknown source of chain",
            Box::new(|p| p["services"][0]["failover"]["cn-wuhan"] = json!(["cn-shanghai"])),
            r#"services[0].failover["cn-wuhan"]: unknown region "cn-wuhan"; known regions: cn-hangzhou, cn-shanghai"#,
        ),
        (
            "failover to itself",
            Box::new(|p| {
                p["services"][0]["failover"]["cn-hangzhou"] = json!(["cn-shanghai", "cn-hangzhou"])
            }),
            r#"services[0].failover["cn-hangzhou"][1]: region cn-hangzhou fails over to itself (service reviews.default)"#,
        ),
        (
            "duplicate in chain",
            Box::new(|p| {
                p["services"][0]["failover"]["cn-hangzhou"] = json!(["cn-shanghai", "cn-shanghai"])
            }),
            r#"services[0].failover["cn-hangzhou"][1]: "cn-shanghai" appears more than once"#,
        ),
        (
            "duplicate region",
            Box::new(|p| p["regions"] = json!(["cn-hangzhou", "cn-shanghai", "cn-hangzhou"])),
            r#"regions[2]: "cn-hangzhou" appears more than once"#,
        ),
        (
            "not served",
            Box::new(|p| {
                p["regions"] = json!(["cn-hangzhou", "cn-shanghai", "cn-beijing"]);
                p["services"][0]["failover"]["cn-hangzhou"] = json!(["cn-beijing"]);
            }),
            r#"services[0].failover["cn-hangzhou"][0]: service reviews.default does not run in region cn-beijing (it runs in: cn-hangzhou, cn-shanghai)"#,
        ),
        (
            "empty services",
            Box::new(|p| p["services"] = json!([])),
            "services: must not be empty",
        ),
        (
            "unknown field",
            Box::new(|p| p["services"][0]["weights"] = json!({})),
            "services[0].weights: unknown field `weights`, expected one of `name`, `hosts`, `regions`, `failover`, `distribute`, `drain`, `health`, `probe` at line 1 column 493",
        ),
        (
            "wrong type",
            Box::new(|p| {
                p["services"][0]["distribute"]["cn-hangzhou"]["cn-hangzhou"] = json!("90")
            }),
            r#"services[0].distribute["cn-hangzhou"]["cn-hangzhou"]: invalid type: string "90", expected a whole number at line 1 column 282"#,
        ),
        (
            "fractional weight",
            Box::new(|p| {
                p["services"][0]["distribute"]["cn-hangzhou"]["cn-hangzhou"] = json!(89.5)
            }),
            r#"services[0].distribute["cn-hangzhou"]["cn-hangzhou"]: 89.5 is not a whole number >= 0 at line 1 column 282"#,
        ),
        (
            "version",
            Box::new(|p| p["apiVersion"] = json!("geolb.io/v2")),
            r#"apiVersion: apiVersion "geolb.io/v2" is not supported; use "geolb.io/v1alpha1""#,
        ),
        (
            "bad duration",
            Box::new(|p| p["health"]["baseEjectionTime"] = json!("1 minute")),
            r#"health.baseEjectionTime: "1 minute" is not a duration like "500ms", "30s", "1m" or "1h": units are ms, s, m and h at line 1 column 73"#,
        ),
        (
            "max below base",
            Box::new(|p| p["health"]["maxEjectionTime"] = json!("30s")),
            "health.maxEjectionTime: 30000 is out of range: in ms, must be at least baseEjectionTime",
        ),
        (
            "unknown flag",
            Box::new(|p| p["health"]["failureResponseFlags"] = json!(["UF", "XX"])),
            "health.failureResponseFlags[1]: unknown Envoy response flag \"XX\"; known flags: LH, UH, UT, LR, UR, UF, UC, UO, NR, DI, FI, RL, UAEX, RLSE, DC, URX, SI, IH, DPE, UMSDR, UPE",
        ),
        (
            "flag type",
            Box::new(|p| p["serviceFromRoute"] = json!("yes")),
            r#"serviceFromRoute: invalid type: string "yes", expected a boolean at line 1 column 246"#,
        ),
        (
            "header name",
            Box::new(|p| p["routingHeader"] = json!("X-Region")),
            r#"routingHeader: "X-Region" is not a valid header name: only lowercase letters, digits and '-' are allowed"#,
        ),
        (
            "route token missing",
            Box::new(|p| {
                p.as_object_mut().unwrap().remove("routeToken");
            }),
            "(policy): missing field `routeToken` at line 1 column 441",
        ),
        (
            "route token short",
            Box::new(|p| p["routeToken"] = json!("abcdefghij0123456789x")),
            "routeToken: the route token is not valid: shorter than 22 characters (128 bits)",
        ),
        (
            "route token charset",
            Box::new(|p| p["routeToken"] = json!("abcdefghij0123456789xyz=")),
            "routeToken: the route token is not valid: only letters, digits, '-' and '_' are allowed (URL-safe base64)",
        ),
        (
            "route token long",
            Box::new(|p| p["routeToken"] = json!("a".repeat(65))),
            "routeToken: the route token is not valid: longer than 64 characters",
        ),
        (
            "host with port",
            Box::new(|p| p["services"][0]["hosts"] = json!(["reviews:9080"])),
            r#"services[0].hosts[0]: "reviews:9080" is not a valid host: only letters, digits, '-' and '.' are allowed (no port, no wildcard)"#,
        ),
        (
            "probe path",
            Box::new(|p| p["services"][0]["probe"] = json!({"path": "healthz", "port": 9080})),
            r#"services[0].probe.path: "healthz" is not a valid probe path: starts with '/', printable ASCII without spaces, at most 1024 bytes"#,
        ),
        (
            "probe port",
            Box::new(|p| p["services"][0]["probe"] = json!({"path": "/", "port": 0})),
            "services[0].probe.port: 0 is out of range: a port is 1..65535",
        ),
        (
            "probe interval below the tick",
            Box::new(|p| {
                p["services"][0]["probe"] = json!({"path": "/", "port": 80, "interval": "50ms"})
            }),
            "services[0].probe.interval: 50 is out of range: in ms, must be 100ms..1h (probes are sent on the filter's 100 ms tick)",
        ),
        (
            "probe timeout not below the interval",
            Box::new(|p| {
                p["services"][0]["probe"] =
                    json!({"path": "/", "port": 80, "interval": "1s", "timeout": "1s"})
            }),
            "services[0].probe.timeout: 1000 is out of range: in ms, must be at least 1ms and below interval",
        ),
        (
            "probe statuses",
            Box::new(|p| {
                p["services"][0]["probe"] =
                    json!({"path": "/", "port": 80, "expectStatuses": [200, 700]})
            }),
            "services[0].probe.expectStatuses[1]: 700 is out of range: an HTTP status code is 100..599",
        ),
        (
            "probe statuses empty",
            Box::new(|p| {
                p["services"][0]["probe"] = json!({"path": "/", "port": 80, "expectStatuses": []})
            }),
            "services[0].probe.expectStatuses: must not be empty",
        ),
        (
            "probe thresholds",
            Box::new(|p| {
                p["services"][0]["probe"] =
                    json!({"path": "/", "port": 80, "healthyAfter": 0, "unhealthyAfter": 101})
            }),
            "services[0].probe.healthyAfter: 0 is out of range: must be 1..100",
        ),
        (
            "not json",
            Box::new(|p| *p = json!("nope")),
            "(policy): invalid type: string \"nope\", expected struct Policy at line 1 column 6",
        ),
    ];
    let mut mismatches = Vec::new();
    for (name, mutate, want) in cases {
        let mut policy = seed_a();
        mutate(&mut policy);
        let got = refusal(&policy);
        if got != want {
            mismatches.push(format!("case {name}:\n  got:  {got}\n  want: {want}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut policy = seed_a();
    policy["services"][0]["failover"]["cn-hangzhou"] = json!(["cn-hangzhou"]);
    policy["services"][0]["distribute"]["cn-hangzhou"]["cn-shanghai"] = json!(20);
    let errors = parse_policy(policy.to_string().as_bytes()).unwrap_err();
    assert_eq!(errors.0.len(), 2, "{errors}");
    assert!(errors.to_string().contains("and 1 more"), "{errors}");
}

#[test]
fn host_claimed_by_two_services_is_refused() {
    let mut policy: Value = serde_json::from_str(THREE).unwrap();
    policy["services"][1]["hosts"] = json!(["reviews.default.svc.cluster.local"]);
    assert_eq!(
        refusal(&policy),
        r#"services[1].hosts[0]: host "reviews.default.svc.cluster.local" is already claimed by service "reviews.default""#
    );
}

#[test]
fn authority_matches_every_mesh_form() {
    let policy = parse_policy(THREE.as_bytes()).unwrap();
    for authority in [
        "reviews",
        "reviews:9080",
        "reviews.default",
        "reviews.default:9080",
        "reviews.default.svc",
        "reviews.default.svc.cluster.local",
        "reviews.default.svc.cluster.local:9080",
        "Reviews.Default.SVC.cluster.local.",
    ] {
        assert_eq!(
            policy.service_for_authority(authority),
            Some(ServiceId(0)),
            "{authority}"
        );
    }
    assert_eq!(
        policy.service_for_authority("ratings.example.com:443"),
        Some(ServiceId(1))
    );
    for authority in [
        "reviews.other",
        "details",
        "reviews:",
        "reviews:abc",
        "",
        "ratings.example",
        "[::1]:9080",
    ] {
        assert_eq!(policy.service_for_authority(authority), None, "{authority}");
    }
}

#[test]
fn cluster_names_the_service_by_its_host() {
    let policy = parse_policy(THREE.as_bytes()).unwrap();
    for cluster in [
        // An ingress gateway's fallback route, and a region route a client's header chose.
        "outbound|9080||reviews.default.svc.cluster.local",
        "outbound|9080|geolb-cn-shanghai|reviews.default.svc.cluster.local",
        "outbound|80|v1|Reviews.Default.svc.cluster.local",
    ] {
        assert_eq!(
            policy.service_for_cluster(cluster),
            Some(ServiceId(0)),
            "{cluster}"
        );
    }
    assert_eq!(
        policy.service_for_cluster("outbound|443||ratings.example.com"),
        Some(ServiceId(1))
    );
    for cluster in [
        "outbound|9080||details.default.svc.cluster.local",
        "inbound|9080||reviews.default.svc.cluster.local",
        "outbound_.9080_._.reviews.default.svc.cluster.local",
        "outbound|9080||reviews.default.svc.cluster.local.",
        "outbound|x||reviews.default.svc.cluster.local",
        "reviews.default.svc.cluster.local",
        "PassthroughCluster",
        "",
    ] {
        assert_eq!(policy.service_for_cluster(cluster), None, "{cluster}");
    }
}

#[test]
fn short_forms_shared_by_two_services_match_neither() {
    let mut policy: Value = serde_json::from_str(THREE).unwrap();
    policy["services"][1]["hosts"] = json!(["reviews.prod.svc.cluster.local"]);
    let compiled = parse_policy(policy.to_string().as_bytes()).unwrap();
    assert_eq!(
        compiled.service_for_authority("reviews"),
        None,
        "ambiguous across namespaces"
    );
    assert_eq!(
        compiled.service_for_authority("reviews.prod"),
        Some(ServiceId(1))
    );
    assert_eq!(
        compiled.service_for_authority("reviews.default:9080"),
        Some(ServiceId(0))
    );
}

#[test]
fn wire_round_trips_and_fingerprint_ignores_formatting() {
    let wire = parse_wire(SEED_A.as_bytes()).unwrap();
    let again = serde_json::to_string(&wire).unwrap();
    assert_eq!(parse_wire(again.as_bytes()).unwrap(), wire);
    let a = CompiledPolicy::try_from(&wire).unwrap();
    let b = parse_policy(again.as_bytes()).unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    let mut changed = seed_a();
    changed["services"][0]["distribute"]["cn-hangzhou"] =
        json!({"cn-hangzhou": 80, "cn-shanghai": 20});
    assert_ne!(
        parse_policy(changed.to_string().as_bytes())
            .unwrap()
            .fingerprint(),
        a.fingerprint()
    );
}

#[test]
fn service_from_route_is_compiled_and_left_out_when_off() {
    let mut policy = seed_a();
    policy["serviceFromRoute"] = json!(true);
    let on = parse_policy(policy.to_string().as_bytes()).unwrap();
    assert!(on.service_from_route());
    let off = parse_policy(SEED_A.as_bytes()).unwrap();
    assert_ne!(on.fingerprint(), off.fingerprint());
    let written = serde_json::to_value(parse_wire(SEED_A.as_bytes()).unwrap()).unwrap();
    assert_eq!(
        written.get("serviceFromRoute"),
        None,
        "the default is not written"
    );
    policy["serviceFromRoute"] = json!(false);
    let explicit_off = parse_policy(policy.to_string().as_bytes()).unwrap();
    assert!(!explicit_off.service_from_route());
    assert_eq!(explicit_off.fingerprint(), off.fingerprint());
}

#[test]
fn garbage_never_panics() {
    for input in [
        &b""[..],
        b"{",
        b"null",
        b"[]",
        b"{\"apiVersion\":1}",
        &[0xff, 0xfe, 0x00],
        b"{\"services\":[{}]}",
    ] {
        assert!(parse_policy(input).is_err());
    }
}

#[test]
fn json_schema_is_current() {
    let schema = serde_json::to_string_pretty(&geolb_policy::json_schema()).unwrap() + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/policy.schema.json");
    if std::env::var_os("GEOLB_BLESS").is_some() {
        std::fs::write(path, &schema).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == schema,
        "policy/policy.schema.json is stale: run scripts/bless.sh"
    );
}

#[test]
fn drains_compile_per_service_and_refuse_what_routes_nowhere() {
    // Mesh-wide and per service: the marks are the union, per slot.
    let mut p = seed_a();
    p["drain"] = json!(["cn-shanghai"]);
    let compiled = parse_policy(p.to_string().as_bytes()).unwrap();
    assert_eq!(
        compiled.service(ServiceId(0)).unwrap().drained(),
        [false, true]
    );
    let mut p = seed_a();
    p["services"][0]["drain"] = json!(["cn-hangzhou"]);
    let compiled = parse_policy(p.to_string().as_bytes()).unwrap();
    assert_eq!(
        compiled.service(ServiceId(0)).unwrap().drained(),
        [true, false]
    );
    assert_eq!(
        compiled
            .service(ServiceId(0))
            .unwrap()
            .health()
            .drain_ramp_ms,
        60_000,
        "default ramp"
    );

    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (
            Box::new(|p| p["drain"] = json!(["cn-beijing"])),
            r#"drain[0]: unknown region "cn-beijing"; known regions: cn-hangzhou, cn-shanghai"#,
        ),
        (
            Box::new(|p| p["drain"] = json!(["cn-shanghai", "cn-shanghai"])),
            r#"drain[1]: "cn-shanghai" appears more than once"#,
        ),
        (
            Box::new(|p| p["drain"] = json!(["cn-shanghai", "cn-hangzhou"])),
            r#"drain: drains every region of service "reviews.default"; at least one must take its traffic"#,
        ),
        (
            Box::new(|p| {
                p["drain"] = json!(["cn-shanghai"]);
                p["services"][0]["drain"] = json!(["cn-hangzhou"]);
            }),
            r#"services[0].drain: drains every region of service "reviews.default"; at least one must take its traffic"#,
        ),
        (
            Box::new(|p| p["services"][0]["drain"] = json!(["cn-hangzhou", "cn-hangzhou"])),
            r#"services[0].drain[1]: "cn-hangzhou" appears more than once"#,
        ),
        (
            Box::new(|p| p["health"]["drainRamp"] = json!("-1s")),
            "health.drainRamp",
        ),
    ];
    for (mutate, expected) in cases {
        let mut p = seed_a();
        mutate(&mut p);
        let refused = refusal(&p);
        assert!(
            refused.starts_with(expected),
            "{refused}\nexpected: {expected}"
        );
    }
    // A region the service does not run in: the second service of the three-region
    // fixture runs in cn-shanghai and cn-beijing only.
    let mut p: Value = serde_json::from_str(THREE).unwrap();
    p["services"][1]["drain"] = json!(["cn-hangzhou"]);
    let refused = refusal(&p);
    assert!(
        refused.starts_with("services[1].drain[0]: service ")
            && refused.contains("does not run in region cn-hangzhou"),
        "{refused}"
    );
}
