//! The example plans of scenarios A-D: their rendered output is committed under
//! manifests/<scenario>/ and must not drift; it validates against Istio's CRDs; it is
//! deterministic; and every pluginConfig parses with the filter's own parser.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::{Path, PathBuf};

use geolb::policy::PolicyFor;
use geolb::render::{ExtensionApi, Manifests};
use support::crd;

const SCENARIOS: &[&str] = &[
    "a-failover-distribution",
    "b-locality-preferred",
    "c-multi-primary",
    "d-multi-network",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The validated plan of a scenario.
fn load_plan(scenario: &str) -> geolb::plan::Plan {
    let path = plan_path(scenario);
    let text = std::fs::read_to_string(&path).unwrap();
    let source = geolb::source::Source::new(path.display().to_string(), text);
    let checked = geolb::validate::check(&source);
    assert!(!checked.has_errors(), "{scenario}: plan has errors");
    checked.plan.unwrap()
}

fn plan_path(scenario: &str) -> PathBuf {
    repo()
        .join("manifests/examples")
        .join(scenario)
        .join("plan.yaml")
}

fn render(scenario: &str, api: ExtensionApi) -> Manifests {
    geolb::render_file(&plan_path(scenario), api).unwrap_or_else(|e| panic!("{scenario}: {e}"))
}

/// All files of a scenario in one snapshot (cargo-dist's uber-snapshot).
fn uber(manifests: &Manifests) -> String {
    manifests
        .iter()
        .map(|(name, text)| format!("================ {name} ================\n{text}"))
        .collect()
}

#[test]
fn snapshots_per_scenario() {
    for scenario in SCENARIOS {
        insta::assert_snapshot!(
            format!("render-{scenario}"),
            uber(&render(scenario, ExtensionApi::Wasmplugin))
        );
    }
}

#[test]
fn committed_manifests_do_not_drift() {
    for scenario in SCENARIOS {
        let drift = geolb::drift::compare(
            &render(scenario, ExtensionApi::Wasmplugin),
            &repo().join("manifests").join(scenario),
        )
        .unwrap();
        assert!(
            drift.is_clean(),
            "manifests/{scenario} drifted; run `geolb render manifests/examples/{scenario}/plan.yaml -o manifests/{scenario}`:\n{}",
            drift.diffs.concat()
        );
    }
}

#[test]
fn renders_are_byte_identical() {
    for scenario in SCENARIOS {
        for api in [ExtensionApi::Wasmplugin, ExtensionApi::Trafficextension] {
            assert_eq!(render(scenario, api), render(scenario, api), "{scenario}");
        }
    }
}

#[test]
fn every_manifest_validates_against_istio_crds() {
    let validator = crd::validator();
    let mut report = crd::Report::default();
    for scenario in SCENARIOS {
        for api in [ExtensionApi::Wasmplugin, ExtensionApi::Trafficextension] {
            for (name, text) in render(scenario, api) {
                report.merge(
                    validator.validate_documents(&text, &format!("{scenario}/{name} ({api:?})")),
                );
            }
        }
    }
    eprintln!("{}", report.render());
    assert!(report.documents > 0);
    // No schema for the deeper free-form parts of IstioOperator values: listed, not failed.
    report.assert_no_errors();
    assert!(
        report.not_evaluated.is_empty(),
        "CEL rules not evaluated:\n{}",
        report.not_evaluated.join("\n")
    );
}

/// The contract with the filter: pluginConfig, turned into the JSON string istiod
/// hands Envoy, parses with the filter's parser into the same policy.
#[test]
fn plugin_configs_parse_with_the_filter_parser() {
    let mut checked = 0;
    for scenario in SCENARIOS {
        let plan = load_plan(scenario);
        for api in [ExtensionApi::Wasmplugin, ExtensionApi::Trafficextension] {
            for (name, text) in render(scenario, api) {
                let doc: serde_json::Value =
                    serde_saphyr::from_str(&text).unwrap_or(serde_json::Value::Null);
                let config = match doc["kind"].as_str() {
                    Some("WasmPlugin") => &doc["spec"]["pluginConfig"],
                    Some("TrafficExtension") => &doc["spec"]["wasm"]["pluginConfig"],
                    _ => continue,
                };
                let json = serde_json::to_string(config).unwrap();
                let wire = geolb_policy::parse_wire(json.as_bytes())
                    .unwrap_or_else(|e| panic!("{scenario}/{name}: {e:?}"));
                let compiled = geolb_policy::parse_policy(json.as_bytes())
                    .unwrap_or_else(|e| panic!("{scenario}/{name}: {e:?}"));
                assert_eq!(
                    compiled,
                    geolb_policy::CompiledPolicy::try_from(&wire).unwrap()
                );
                // The same policy the generator built from the plan (so the YAML writer
                // lost nothing): the sidecars' or the gateways' (services found by their
                // route too). Neither pins a region: every proxy finds its own from the
                // cluster table, so one object serves every cluster.
                assert_eq!(wire.source_region, None, "{scenario}/{name}");
                assert!(
                    !name.starts_with("clusters/"),
                    "{scenario}/{name}: a filter object differs per cluster"
                );
                let proxies = if name.starts_with("mesh/istio-system/") {
                    PolicyFor::Gateways
                } else {
                    PolicyFor::Sidecars
                };
                let expected =
                    geolb::policy::wire_policy(&geolb::topology::Topology::new(&plan), proxies);
                assert_eq!(
                    wire.service_from_route,
                    proxies == PolicyFor::Gateways,
                    "{scenario}/{name}: only gateways look services up by their route"
                );
                assert_eq!(wire, expected, "{scenario}/{name}");
                assert_eq!(
                    serde_json::to_value(&wire).unwrap(),
                    *config,
                    "{scenario}/{name}: serde round trip"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 8, "only {checked} plugin configs found");
}

/// Scenario A carries both rules, and the routing contract's names.
#[test]
fn scenario_a_has_failover_and_distribution() {
    let m = render("a-failover-distribution", ExtensionApi::Wasmplugin);
    let wasm = &m["mesh/default/wasmplugin-geolb.yaml"];
    assert!(
        wasm.contains("cn-shanghai: 10") && wasm.contains("cn-hangzhou: 90"),
        "{wasm}"
    );
    let dr = &m["mesh/default/destinationrule-reviews.yaml"];
    for needle in [
        "maxRequestsPerConnection: 1",
        "consecutive5xxErrors: 1",
        "interval: \"1s\"",
        "baseEjectionTime: \"1m\"",
        "maxEjectionPercent: 100",
        "name: \"geolb-cn-shanghai\"",
        "topology.kubernetes.io/region=cn-shanghai",
    ] {
        assert!(dr.contains(needle), "{needle} missing in\n{dr}");
    }
    assert!(
        !dr.contains("distribute"),
        "Istio rejects distribute with failover"
    );
    // Every proxy, gateways included, finds its region from its cluster ID.
    let gw = &m["mesh/istio-system/wasmplugin-geolb-bookinfo-gateway.yaml"];
    for table in [gw, wasm] {
        assert!(
            table.contains("ack-hangzhou: \"cn-hangzhou\"")
                && table.contains("ack-shanghai: \"cn-shanghai\""),
            "{table}"
        );
        assert!(!table.contains("sourceRegion"), "{table}");
    }
    // The filter ejects a region on the same evidence and for as long as the
    // DestinationRule's outlier detection ejects a host.
    let doc: serde_json::Value = serde_saphyr::from_str(wasm).unwrap();
    let policy =
        geolb_policy::parse_wire(doc["spec"]["pluginConfig"].to_string().as_bytes()).unwrap();
    let reviews = policy
        .services
        .iter()
        .find(|s| s.name == "reviews.default")
        .expect("reviews");
    let health = reviews.health.as_ref().expect("reviews health");
    assert_eq!(health.consecutive_failures.map(|n| n.0), Some(1));
    assert_eq!(
        health.base_ejection_time.as_ref().map(|d| d.millis()),
        Some(60_000)
    );
}

/// Scenario D: every network's gateway in meshNetworks, remotePilotAddress on workers.
#[test]
fn scenario_d_multi_network() {
    let m = render("d-multi-network", ExtensionApi::Wasmplugin);
    let mn = &m["clusters/mdemo-cluster1/install/meshnetworks.yaml"];
    for ip in ["10.64.30.73", "10.6.136.29", "10.64.30.77"] {
        assert!(mn.contains(ip), "{ip} missing in\n{mn}");
    }
    for worker in ["mdemo-cluster2", "mdemo-cluster3"] {
        assert!(
            m[&format!("clusters/{worker}/install/istiooperator.yaml")]
                .contains("remotePilotAddress: \"10.64.30.71\"")
        );
    }
    assert!(m["mesh/istio-system/gateway-cross-network-gateway.yaml"].contains("AUTO_PASSTHROUGH"));
    assert!(
        m["clusters/mdemo-cluster3/istio-system/namespace.yaml"]
            .contains("topology.istio.io/network: \"network-c3\"")
    );
}
