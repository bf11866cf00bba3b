//! The example plans of scenarios A-D: their rendered output is committed under
//! manifests/<scenario>/, the one pin of the render's bytes, and must not drift (a
//! render that is not deterministic drifts too: the committed bytes come from another
//! process); it validates against Istio's CRDs; and every pluginConfig parses with the
//! filter's own parser.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(dead_code)] // each test binary uses a part of the shared support
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use geolb::plan::{ClusterRole, ControlPlaneMode, Plan};
use geolb::policy::PolicyFor;
use geolb::render::{ExtensionApi, Manifests, RenderOptions};
use geolb::secret::RouteSecrets;
use geolb::topology::Topology;
use support::{crd, kustomize};

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
    geolb::render_file(&plan_path(scenario), api, &RouteSecrets::example().unwrap())
        .unwrap_or_else(|e| panic!("{scenario}: {e}"))
}

#[test]
fn committed_manifests_do_not_drift() {
    for scenario in SCENARIOS {
        let manifests = render(scenario, ExtensionApi::Wasmplugin);
        let dir = repo().join("manifests").join(scenario);
        if support::bless() {
            geolb::drift::write(&manifests, &dir).unwrap();
        }
        let drift = geolb::drift::compare(&manifests, &dir).unwrap();
        assert!(
            drift.is_clean(),
            "manifests/{scenario} drifted; run scripts/bless.sh:\n{}",
            drift.diffs.concat()
        );
    }
}

#[test]
fn every_manifest_validates_against_istio_crds() {
    let validator = crd::validator();
    let mut report = crd::Report::default();
    for scenario in SCENARIOS {
        for api in [ExtensionApi::Wasmplugin, ExtensionApi::Trafficextension] {
            for (name, text) in render(scenario, api) {
                if !name.ends_with(".yaml") {
                    continue; // the vendor console notes
                }
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
                let token = RouteSecrets::example().unwrap().tokens(&plan).remove(0);
                let expected = geolb::policy::wire_policy(
                    &geolb::topology::Topology::new(&plan),
                    proxies,
                    &token,
                );
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
    // Every proxy, gateways included, finds its region from its cluster ID: the ACK
    // cluster ID ASM gives it, not the plan's name.
    let gw = &m["mesh/istio-system/wasmplugin-geolb-bookinfo-gateway.yaml"];
    for table in [gw, wasm] {
        assert!(
            table.contains("c466acd9ea38959ec00459b5d97ccfb91: \"cn-hangzhou\"")
                && table.contains("c394dea1df8060adcc0a175c8895e3b49: \"cn-shanghai\"")
                && !table.contains("ack-"),
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

/// Scenario D (a managed mesh): no control-plane install inputs (only each network's
/// east-west gateway, which Mspider's guide has the user install), and each cluster's
/// console note carries its network's gateway and where its proxies reach istiod.
#[test]
fn scenario_d_multi_network() {
    let m = render("d-multi-network", ExtensionApi::Wasmplugin);
    let install: Vec<String> = m
        .keys()
        .filter(|k| k.contains("/install/"))
        .cloned()
        .collect();
    assert_eq!(
        install,
        [1, 2, 3].map(|i| format!("clusters/mdemo-cluster{i}/install/eastwest-gateway.yaml")),
        "a managed mesh gets no istiod install inputs"
    );
    for (cluster, gateway) in [
        ("mdemo-cluster1", "10.64.30.73"),
        ("mdemo-cluster2", "10.6.136.29"),
        ("mdemo-cluster3", "10.64.30.77"),
    ] {
        let note = &m[&format!("clusters/{cluster}/vendor-console.md")];
        assert!(
            note.contains(&format!("| east-west gateway | `{gateway}:15443` |"))
                && note.contains(&format!("  - address: \"{gateway}\"\n    port: 15443"))
                && note.contains("| control plane address | `10.64.30.71` |"),
            "{note}"
        );
        assert!(
            m[&format!("clusters/{cluster}/kustomization.yaml")]
                .contains("- \"istio-system/namespace.yaml\""),
        );
    }
    assert!(m["mesh/istio-system/gateway-cross-network-gateway.yaml"].contains("AUTO_PASSTHROUGH"));
    assert!(
        m["clusters/mdemo-cluster3/istio-system/namespace.yaml"]
            .contains("topology.istio.io/network: \"network-c3\"")
    );
    assert!(m["control-plane/mdemo-mesh/kustomization.yaml"].contains("- \"../../mesh\""));
}

/// A scenario's plan with every mesh switched to `mode`: multi-primary makes every
/// cluster a primary (and drops the istiod address only a remote uses).
fn variant(scenario: &str, mode: ControlPlaneMode) -> Plan {
    let mut plan = load_plan(scenario);
    for mesh in &mut plan.meshes {
        mesh.control_plane = mode;
    }
    if mode == ControlPlaneMode::MultiPrimary {
        for cluster in &mut plan.clusters {
            if cluster.role == Some(ClusterRole::Remote) {
                cluster.istiod_address = None;
            }
            cluster.role = None;
        }
    }
    let errors: Vec<String> = geolb::validate::validate(&plan)
        .into_iter()
        .filter(|f| f.severity == geolb::finding::Severity::Error)
        .map(|f| format!("{}: {}", f.path, f.message))
        .collect();
    assert!(errors.is_empty(), "{scenario} as {mode:?}: {errors:?}");
    plan
}

const MODES: [ControlPlaneMode; 3] = [
    ControlPlaneMode::MultiPrimary,
    ControlPlaneMode::PrimaryRemote,
    ControlPlaneMode::Managed,
];

fn render_plan(plan: &Plan) -> Manifests {
    geolb::render::render(
        &Topology::new(plan),
        &RenderOptions {
            extension_api: ExtensionApi::Wasmplugin,
            route_secrets: RouteSecrets::example().unwrap(),
        },
    )
    .unwrap()
}

/// The Istio objects `kubectl apply -k dir` applies, as comparable text.
fn istio_objects(m: &Manifests, dir: &str) -> BTreeSet<String> {
    if !m.contains_key(&format!("{dir}/kustomization.yaml")) {
        return BTreeSet::new();
    }
    kustomize::build(m, dir)
        .into_iter()
        .filter(kustomize::Object::is_istio_config)
        .map(|o| o.doc.to_string())
        .collect()
}

/// Every scenario in every control-plane mode: the Istio objects are in the folder
/// applied to the API server the control plane reads them from, and the same in every
/// such folder of a mesh (so one control plane never sees two versions of an object).
/// Multi-primary: every cluster folder (each istiod reads its own cluster).
/// Primary-remote: the primaries' folders only. Managed: `control-plane/<mesh>` only.
#[test]
fn istio_objects_go_where_the_control_plane_reads_them() {
    let mut checked = 0;
    for scenario in SCENARIOS {
        for mode in MODES {
            let plan = variant(scenario, mode);
            let topo = Topology::new(&plan);
            let m = render_plan(&plan);
            let mesh = istio_objects(&m, "mesh");
            assert!(!mesh.is_empty(), "{scenario} {mode:?}");
            // A remote profile without remotePilotAddress points the injector webhook
            // (failurePolicy Fail) at an `istiod` Service that does not exist.
            for (name, text) in &m {
                if text.contains("profile: \"remote\"") {
                    assert!(
                        text.contains("remotePilotAddress: "),
                        "{scenario} {mode:?}: {name}"
                    );
                }
            }
            for mesh_def in &plan.meshes {
                let members: Vec<_> = plan
                    .clusters
                    .iter()
                    .filter(|c| topo.mesh_of(c).is_some_and(|x| x.name == mesh_def.name))
                    .collect();
                let mut read: Vec<(String, BTreeSet<String>)> = Vec::new();
                for cluster in &members {
                    let dir = format!("clusters/{}", cluster.name);
                    let objects = istio_objects(&m, &dir);
                    let reads = match mode {
                        ControlPlaneMode::MultiPrimary => true,
                        ControlPlaneMode::PrimaryRemote => {
                            topo.role_of(cluster) == ClusterRole::Primary
                        }
                        ControlPlaneMode::Managed => false,
                    };
                    if reads {
                        assert!(
                            objects.is_superset(&mesh),
                            "{scenario} {mode:?}: {dir} lacks objects of mesh/"
                        );
                        read.push((dir, objects));
                    } else {
                        assert!(
                            objects.is_empty(),
                            "{scenario} {mode:?}: {dir} is applied where no control plane reads Istio objects, yet holds {objects:?}"
                        );
                    }
                }
                let control_plane = format!("control-plane/{}", mesh_def.name);
                if mode == ControlPlaneMode::Managed {
                    assert_eq!(istio_objects(&m, &control_plane), mesh, "{scenario}");
                    assert!(
                        !m.keys().any(|k| k.ends_with("/install/istiooperator.yaml")),
                        "{scenario}: a managed mesh's vendor owns the control plane's install"
                    );
                    for cluster in &members {
                        assert!(
                            m.contains_key(&format!("clusters/{}/vendor-console.md", cluster.name))
                        );
                    }
                } else {
                    assert!(
                        !m.keys().any(|k| k.starts_with("control-plane/")),
                        "{scenario} {mode:?}"
                    );
                }
                for pair in read.windows(2) {
                    assert_eq!(
                        pair[0].1, pair[1].1,
                        "{scenario} {mode:?}: {} and {} hold different Istio objects",
                        pair[0].0, pair[1].0
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 12, "{checked}");
}

fn kubectl() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("kubectl"))
            .find(|p| p.is_file())
    })
}

/// `kubectl kustomize DIR` of every folder with a kustomization.yaml (the committed
/// renders and every control-plane mode of each scenario) builds with the real
/// kustomize, to the objects the in-memory resolver above finds.
#[test]
fn every_folder_builds_with_kubectl_kustomize() {
    let kubectl = kubectl().unwrap_or_else(|| {
        panic!("kubectl is not installed: this test runs the real kustomize (`kubectl kustomize`); install it with scripts/setup.sh")
    });
    let tmp = tempfile::tempdir().unwrap();
    let mut renders: Vec<(String, PathBuf, Manifests)> = SCENARIOS
        .iter()
        .map(|s| {
            (
                (*s).to_owned(),
                repo().join("manifests").join(s),
                render(s, ExtensionApi::Wasmplugin),
            )
        })
        .collect();
    for scenario in SCENARIOS {
        for mode in MODES {
            let m = render_plan(&variant(scenario, mode));
            let dir = tmp.path().join(format!("{scenario}-{mode:?}"));
            geolb::drift::write(&m, &dir).unwrap();
            renders.push((format!("{scenario} as {mode:?}"), dir, m));
        }
    }
    let mut built = 0;
    for (name, root, m) in &renders {
        for folder in kustomize::folders(m) {
            let out = std::process::Command::new(&kubectl)
                .arg("kustomize")
                .arg(root.join(&folder))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name}: kubectl kustomize {folder} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).unwrap();
            let real: BTreeSet<String> = crd::parse_yaml_stream(&text)
                .unwrap()
                .into_iter()
                .flatten()
                .map(|doc| {
                    kustomize::Object {
                        file: String::new(),
                        doc,
                    }
                    .id()
                })
                .collect();
            let ours: BTreeSet<String> = kustomize::build(m, &folder)
                .iter()
                .map(kustomize::Object::id)
                .collect();
            assert!(!real.is_empty(), "{name}: {folder} applies nothing");
            assert_eq!(real, ours, "{name}: {folder}");
            built += 1;
        }
    }
    assert!(built >= 40, "only {built} folders built");
}

/// primary-remote install inputs (scenario D's clusters, cluster1 the primary), with
/// explicit cluster IDs: the ID, not the name, is what every Istio field carries.
#[test]
fn primary_remote_installs_with_cluster_ids() {
    let mut plan = variant("d-multi-network", ControlPlaneMode::PrimaryRemote);
    for (cluster, id) in plan.clusters.iter_mut().zip(["c-one", "c-two", "c-three"]) {
        cluster.cluster_id = Some(id.to_owned());
    }
    let m = render_plan(&plan);
    let primary = &m["clusters/mdemo-cluster1/install/istiooperator.yaml"];
    for needle in [
        "profile: \"default\"",
        "externalIstiod: true",
        "clusterName: \"c-one\"",
        "        network-c2:\n          endpoints:\n          - fromRegistry: \"c-two\"\n          gateways:\n          - address: \"10.6.136.29\"",
    ] {
        assert!(primary.contains(needle), "{needle} missing in\n{primary}");
    }
    assert!(!primary.contains("remotePilotAddress"), "{primary}");
    assert!(
        m["clusters/mdemo-cluster1/kustomization.yaml"].contains("- \"../../mesh\"")
            && m["clusters/mdemo-cluster1/kustomization.yaml"]
                .contains("- \"istio-system/istiod-exposure.yaml\"")
    );
    for (cluster, id, network) in [
        ("mdemo-cluster2", "c-two", "network-c2"),
        ("mdemo-cluster3", "c-three", "network-c3"),
    ] {
        let remote = &m[&format!("clusters/{cluster}/install/istiooperator.yaml")];
        for needle in [
            "profile: \"remote\"".to_owned(),
            "remotePilotAddress: \"10.64.30.71\"".to_owned(),
            format!("clusterName: \"{id}\""),
            format!("injectionPath: \"/inject/cluster/{id}/net/{network}\""),
        ] {
            assert!(remote.contains(&needle), "{needle} missing in\n{remote}");
        }
        assert!(!remote.contains("meshNetworks") && !remote.contains("externalIstiod"));
        let namespace = &m[&format!("clusters/{cluster}/istio-system/namespace.yaml")];
        assert!(
            namespace.contains("topology.istio.io/controlPlaneClusters: \"c-one\"")
                && namespace.contains(&format!("topology.istio.io/network: \"{network}\"")),
            "{namespace}"
        );
        assert_eq!(
            m[&format!("clusters/{cluster}/kustomization.yaml")]
                .lines()
                .filter(|l| l.starts_with("- "))
                .collect::<Vec<_>>(),
            ["- \"istio-system/namespace.yaml\""],
            "a remote's folder holds only its namespace"
        );
    }
    // The primary holds the remotes' secrets, named by cluster ID; a managed mesh's
    // vendor registers its clusters itself.
    let report = geolb::netplan::build(&Topology::new(&plan));
    assert_eq!(report.clusters[0].remote_secrets, ["c-two", "c-three"]);
    assert_eq!(report.clusters[1].cluster_id, "c-two");
    let managed = load_plan("d-multi-network");
    let report = geolb::netplan::build(&Topology::new(&managed));
    assert!(report.clusters.iter().all(|c| c.remote_secrets.is_empty()));
    let wasm = &m["mesh/sample/wasmplugin-geolb.yaml"];
    for id in ["c-one", "c-two", "c-three"] {
        assert!(wasm.contains(&format!("{id}: \"region1\"")), "{wasm}");
    }
    assert!(!wasm.contains("mdemo-cluster"), "{wasm}");
}

/// Every rendered VirtualService: region routes match only `<region>.<token>` (one
/// match per accepted token), never a bare region; every route removes the header.
#[test]
fn region_routes_match_only_tokenised_values_and_rotation_adds_the_previous_token() {
    use geolb_policy::token::RouteSecret;
    let current = RouteSecret::new(b"current-secret-current-secret-current".to_vec()).unwrap();
    let previous = RouteSecret::new(b"previous-secret-previous-secret-prev".to_vec()).unwrap();
    for scenario in SCENARIOS {
        let plan = Plan::from_text(&std::fs::read_to_string(plan_path(scenario)).unwrap()).unwrap();
        for secrets in [
            RouteSecrets {
                current: current.clone(),
                previous: None,
            },
            RouteSecrets {
                current: current.clone(),
                previous: Some(previous.clone()),
            },
        ] {
            let tokens = secrets.tokens(&plan);
            assert_eq!(tokens.len(), 1 + usize::from(secrets.previous.is_some()));
            let manifests = geolb::render::render(
                &Topology::new(&plan),
                &RenderOptions {
                    extension_api: ExtensionApi::Wasmplugin,
                    route_secrets: secrets.clone(),
                },
            )
            .unwrap();
            let mut region_routes = 0;
            for (name, text) in manifests
                .iter()
                .filter(|(n, _)| n.contains("/virtualservice-"))
            {
                let vs: serde_json::Value = serde_saphyr::from_str(text).unwrap();
                for route in vs["spec"]["http"].as_array().unwrap() {
                    assert_eq!(
                        route["headers"]["request"]["remove"],
                        serde_json::json!(["x-geolb-region"]),
                        "{scenario}/{name}: {route}"
                    );
                    let matches = route["match"].as_array().cloned().unwrap_or_default();
                    let values: Vec<&str> = matches
                        .iter()
                        .filter_map(|m| m["headers"]["x-geolb-region"]["exact"].as_str())
                        .collect();
                    if values.is_empty() {
                        continue;
                    }
                    region_routes += 1;
                    let region = route["route"][0]["destination"]["subset"]
                        .as_str()
                        .unwrap()
                        .strip_prefix("geolb-")
                        .unwrap();
                    let accepted: BTreeSet<String> =
                        tokens.iter().map(|t| format!("{region}.{t}")).collect();
                    let seen: BTreeSet<String> = values.iter().map(|v| (*v).to_owned()).collect();
                    assert_eq!(seen, accepted, "{scenario}/{name}");
                    assert_eq!(values.len(), matches.len(), "every match is tokenised");
                }
            }
            assert!(region_routes > 0, "{scenario}");
            // The policy carries only the current token.
            let plugin = manifests
                .iter()
                .find(|(n, _)| n.contains("/wasmplugin-"))
                .unwrap()
                .1;
            assert!(plugin.contains(&tokens[0]), "{scenario}");
            if let Some(old) = tokens.get(1) {
                assert!(
                    !plugin.contains(old.as_str()),
                    "{scenario}: the previous token is not sent"
                );
            }
        }
    }
}

/// Idempotent methods get their own routes, ahead of the rest, whose retries add
/// `reset`; the other methods (POST, PATCH) keep retries that only resend what never
/// reached the app.
#[test]
fn only_idempotent_routes_retry_resets() {
    let m = render("a-failover-distribution", ExtensionApi::Wasmplugin);
    let (_, vs) = m
        .iter()
        .find(|(k, _)| k.contains("virtualservice-reviews"))
        .expect("reviews VirtualService");
    let doc: serde_norway::Value = serde_norway::from_str(vs).unwrap();
    let http = doc["spec"]["http"].as_sequence().unwrap();
    assert!(http.len() >= 2 && http.len().is_multiple_of(2), "{vs}");
    for pair in http.chunks(2) {
        let (idem, rest) = (&pair[0], &pair[1]);
        let name = rest["name"].as_str().unwrap();
        assert_eq!(idem["name"].as_str().unwrap(), format!("{name}-idempotent"));
        let blocks = idem["match"].as_sequence().unwrap();
        assert!(!blocks.is_empty());
        for b in blocks {
            assert_eq!(
                b["method"]["regex"].as_str(),
                Some("GET|HEAD|OPTIONS|PUT|DELETE|TRACE"),
                "{vs}"
            );
        }
        let on = |r: &serde_norway::Value| r["retries"]["retryOn"].as_str().unwrap().to_owned();
        assert!(on(idem).split(',').any(|c| c == "reset"), "{vs}");
        assert!(!on(rest).split(',').any(|c| c == "reset"), "{vs}");
        assert_eq!(
            idem["retries"]["retryRemoteLocalities"].as_bool(),
            Some(true)
        );
    }
}

/// `filter.explain` reaches the sidecars' policy and never the gateways'.
#[test]
fn explain_is_rendered_for_sidecars_only() {
    let mut plan = load_plan("a-failover-distribution");
    let token = RouteSecrets::example().unwrap().tokens(&plan).remove(0);
    let explains = |plan: &Plan, proxies| {
        geolb::policy::wire_policy(&Topology::new(plan), proxies, &token).explain
    };
    assert!(!explains(&plan, PolicyFor::Sidecars), "off by default");
    plan.filter.explain = true;
    assert!(explains(&plan, PolicyFor::Sidecars));
    assert!(!explains(&plan, PolicyFor::Gateways));
}

/// A DR drill from the plan: `regions[].drained` drains the region for every service,
/// `traffic.drain` for one; both reach every proxy's policy.
#[test]
fn drained_regions_reach_the_policy_of_every_proxy() {
    let mut plan = load_plan("a-failover-distribution");
    let token = RouteSecrets::example().unwrap().tokens(&plan).remove(0);
    let policy =
        |plan: &Plan, proxies| geolb::policy::wire_policy(&Topology::new(plan), proxies, &token);
    assert!(policy(&plan, PolicyFor::Sidecars).drain.is_empty());
    plan.regions[0].drained = true;
    for proxies in [PolicyFor::Sidecars, PolicyFor::Gateways] {
        assert_eq!(policy(&plan, proxies).drain, ["cn-hangzhou"]);
    }
    plan.regions[0].drained = false;
    let reviews = plan
        .services
        .iter()
        .position(|s| s.name == "reviews")
        .unwrap();
    plan.services[reviews].traffic.as_mut().unwrap().drain = vec!["cn-shanghai".into()];
    let wire = policy(&plan, PolicyFor::Sidecars);
    assert!(wire.drain.is_empty());
    assert_eq!(wire.services[reviews].drain, ["cn-shanghai"]);
    assert!(
        wire.services
            .iter()
            .enumerate()
            .all(|(i, s)| i == reviews || s.drain.is_empty())
    );
}

/// Probes: the plan's `probe` reaches the policy with the service's port, and the
/// DestinationRule gains one strict subset per region (one Envoy cluster each); a
/// service without probes gains nothing.
#[test]
fn probes_render_a_strict_subset_per_region_and_nothing_without_them() {
    let mut plan = load_plan("a-failover-distribution");
    let reviews = plan
        .services
        .iter()
        .position(|s| s.name == "reviews")
        .unwrap();
    let dr = "mesh/default/destinationrule-reviews.yaml";
    let subsets = |m: &Manifests| -> Vec<String> {
        let doc: serde_json::Value = serde_saphyr::from_str(&m[dr]).unwrap();
        doc["spec"]["subsets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let without = subsets(&render_plan(&plan));
    assert!(
        without.iter().all(|s| !s.starts_with("geolb-probe-")),
        "{without:?}"
    );
    plan.services[reviews].probe = Some(geolb::plan::Probe {
        path: "/healthz".into(),
        interval: None,
        timeout: None,
        expect_statuses: None,
        healthy_after: None,
        unhealthy_after: None,
    });
    let rendered = render_plan(&plan);
    let with = subsets(&rendered);
    let added: Vec<&String> = with.iter().filter(|s| !without.contains(s)).collect();
    assert_eq!(
        added,
        ["geolb-probe-cn-hangzhou", "geolb-probe-cn-shanghai"]
    );
    let doc: serde_json::Value = serde_saphyr::from_str(&rendered[dr]).unwrap();
    let strict = doc["spec"]["subsets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "geolb-probe-cn-shanghai")
        .unwrap();
    assert_eq!(
        strict["labels"],
        serde_json::json!({"topology.kubernetes.io/region": "cn-shanghai"})
    );
    assert_eq!(
        strict["trafficPolicy"],
        serde_json::json!({"outlierDetection": {"consecutive5xxErrors": 0}}),
        "Envoy's host ejection stays out of the probes' way"
    );
    for (name, text) in &rendered {
        if name.contains("destinationrule-") && !name.ends_with("destinationrule-reviews.yaml") {
            assert!(
                !text.contains("geolb-probe-"),
                "{name}: only reviews has probes"
            );
        }
    }
    let token = RouteSecrets::example().unwrap().tokens(&plan).remove(0);
    let wire = geolb::policy::wire_policy(&Topology::new(&plan), PolicyFor::Sidecars, &token);
    let probe = wire.services[reviews].probe.as_ref().unwrap();
    assert_eq!(probe.port.0, 9080);
    assert_eq!(probe.path, "/healthz");
    let compiled = geolb_policy::CompiledPolicy::try_from(&wire).unwrap();
    let clusters = &compiled.services()[reviews]
        .health()
        .probe
        .as_ref()
        .unwrap()
        .clusters;
    assert_eq!(
        clusters,
        &[
            "outbound|9080|geolb-probe-cn-hangzhou|reviews.default.svc.cluster.local",
            "outbound|9080|geolb-probe-cn-shanghai|reviews.default.svc.cluster.local",
        ]
    );
}
