//! Multi-network scenarios C and D (the example plans `c-multi-primary` and
//! `d-multi-network`), from the committed example plans through the rendered manifests to real Envoys: client sidecars whose
//! cross-network endpoints istiod replaced by the other network's east-west gateway
//! (split horizon), gateways that route the client's mTLS by SNI without terminating it
//! (AUTO_PASSTHROUGH), destination sidecars that terminate it.
//!
//! Run: `cargo test -p geolb-e2e --test multicluster`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use geolb_e2e::from_plan::{Placement, RenderedPlan};
use geolb_e2e::istiod::inbound::{VIRTUAL_INBOUND, translate_inbound};
use geolb_e2e::istiod::load::ClusterManifests;
use geolb_e2e::istiod::network::{
    MeshNetworkView, REQUESTED_NETWORK_VIEW, cluster_network, gateway_components, install_values,
    mesh_networks_of, serving_control_plane,
};
use geolb_e2e::istiod::{
    DEFAULT_SERVICE_ACCOUNT, Environment, NodeLocality, Proxy, ProxyRole, Registry, tls, translate,
};
use geolb_e2e::*;

const HELLOWORLD: &str = "helloworld";
const HELLOWORLD_HOST: &str = "helloworld.sample.svc.cluster.local";
const HELLOWORLD_PORT: u16 = 5000;
/// The listener a client sidecar sends helloworld traffic to (Istio: `0.0.0.0_5000`).
const OUTBOUND_5000: &str = "0.0.0.0_5000";
/// The east-west gateway's AUTO_PASSTHROUGH listener.
const EAST_WEST_LISTENER: &str = "0.0.0.0_15443";

/// Istio's helloworld sample as a fake: `Hello version: v1, instance: helloworld-v1-0`.
fn helloworld(version: &str, region: &str) -> Upstream {
    let app = Upstream::start(region);
    app.set_body(Body::Custom(format!(
        "Hello version: {version}, instance: helloworld-{version}-0\n"
    )));
    app
}

/// The version a helloworld answer names, `None` for anything else.
fn version_of(r: &Response) -> Option<String> {
    let body = r.body_str();
    let rest = body.strip_prefix("Hello version: ")?;
    Some(rest.split(',').next()?.to_string())
}

/// `curl helloworld:5000/hello`.
fn hello() -> Request {
    Request::get("/hello").host("helloworld:5000")
}

/// The upstream host (`%UPSTREAM_HOST%`, 5th field of the harness's access log format)
/// of every access log line.
fn upstream_hosts(envoy: &Envoy) -> Vec<String> {
    envoy
        .access_log()
        .iter()
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
        .collect()
}

/// Downstream TLS handshakes an Envoy completed (all listeners).
fn tls_handshakes(envoy: &Envoy) -> u64 {
    envoy
        .counters_with_prefix("listener.")
        .iter()
        .filter(|(k, _)| k.ends_with(".ssl.handshake"))
        .map(|(_, v)| *v)
        .sum()
}

/// The Envoys of one multi-network test, started in dependency order: apps →
/// destination sidecars (their inbound listener is the pod address in the registry) →
/// east-west gateways (their listener is the planned gateway address) → client sidecars.
struct MultiNetwork {
    plan: RenderedPlan,
    /// version → app, destination sidecar.
    apps: BTreeMap<String, (Upstream, Envoy)>,
    registry: Registry,
    env: Environment,
    /// cluster → east-west gateway Envoy.
    gateways: BTreeMap<String, Envoy>,
}

impl MultiNetwork {
    /// Renders `scenario` and starts helloworld `versions` (each where the plan places it)
    /// with their sidecars; the other versions are scaled to zero (not in the registry).
    fn start(scenario: &str, versions: &[&str]) -> MultiNetwork {
        MultiNetwork::start_with(
            scenario,
            versions,
            DEFAULT_SERVICE_ACCOUNT,
            NodeLocality::Absent,
        )
    }

    /// [`MultiNetwork::start`], the destination sidecars presenting the identity of
    /// `sidecar_account` (the registry says the pods run as `default`), the proxies on
    /// clusters of kind `flavour`.
    fn start_with(
        scenario: &str,
        versions: &[&str],
        sidecar_account: &str,
        flavour: NodeLocality,
    ) -> MultiNetwork {
        let plan = RenderedPlan::example(scenario).with_node_locality(flavour);
        let mut apps = BTreeMap::new();
        for p in plan.placements() {
            let Some(v) = p
                .version
                .clone()
                .filter(|v| p.service == HELLOWORLD && versions.contains(&v.as_str()))
            else {
                continue;
            };
            let app = helloworld(&v, plan.region_of(&p.cluster));
            let mut sidecar = plan.sidecar(HELLOWORLD, Some(&v), &p.cluster);
            sidecar.service_account = sidecar_account.to_string();
            let inbound =
                Envoy::start_translated(&translate_inbound(&sidecar, p.port, app.addr(), 1));
            apps.insert(v, (app, inbound));
        }
        let inbound_of = |p: &Placement| -> Option<SocketAddr> {
            let (_, sidecar) = apps.get(p.version.as_deref()?)?;
            Some(sidecar.listener_addr(VIRTUAL_INBOUND))
        };
        let mut registry = plan.registry(inbound_of);
        for w in &mut registry.workloads {
            w.sidecar = true; // reached through its sidecar's inbound mTLS
        }
        let env = plan.environment(1);
        MultiNetwork {
            plan,
            apps,
            registry,
            env,
            gateways: BTreeMap::new(),
        }
    }

    fn manifests(&self, cluster: &str) -> ClusterManifests {
        ClusterManifests::load(self.plan.root(), cluster)
            .unwrap_or_else(|e| panic!("load {cluster}: {e}"))
    }

    /// Starts `cluster`'s east-west gateway (the pod the rendered eastwest install
    /// creates: its labels, in istio-system) and maps the cluster's planned gateway
    /// address (from the meshNetworks istiod reads) to it.
    fn start_east_west_gateway(&mut self, cluster: &str) {
        let m = self.manifests(cluster);
        let [(_, component)] = gateway_components(&m)[..] else {
            panic!("{cluster}: expected one east-west gateway component")
        };
        let proxy = Proxy {
            role: ProxyRole::Gateway,
            name: format!("{}-0", component.name),
            namespace: "istio-system".into(),
            labels: component.label.clone(),
            cluster: self.plan.cluster_id(cluster),
            network: self.plan.network(cluster),
            locality: self.plan.locality(cluster),
            service_account: "istio-eastwestgateway-service-account".into(),
            ..Proxy::default()
        }
        .with_node_locality(self.plan.node_locality);
        let translated = translate(&m, &self.registry, &proxy, &self.env)
            .unwrap_or_else(|e| panic!("translate {cluster}'s east-west gateway: {e}"));
        let envoy = Envoy::start_translated(&translated);
        let view = MeshNetworkView::for_cluster(&m, &self.registry)
            .unwrap()
            .expect("meshNetworks");
        let network = self.plan.network(cluster);
        for gw in view.gateways.iter().filter(|g| g.network == network) {
            self.env
                .addresses
                .insert(gw.planned.clone(), envoy.listener_addr(EAST_WEST_LISTENER));
        }
        self.gateways.insert(cluster.into(), envoy);
    }

    /// A client pod's sidecar (`sleep` in namespace sample, like Istio's multicluster
    /// verification) in `cluster`.
    fn client_sidecar(&self, cluster: &str) -> Envoy {
        let proxy = Proxy {
            role: ProxyRole::Sidecar,
            name: "sleep-0".into(),
            namespace: "sample".into(),
            labels: BTreeMap::from([("app".to_string(), "sleep".to_string())]),
            cluster: self.plan.cluster_id(cluster),
            network: self.plan.network(cluster),
            locality: self.plan.locality(cluster),
            service_account: "sleep".into(),
            ..Proxy::default()
        }
        .with_node_locality(self.plan.node_locality);
        let translated = translate(&self.manifests(cluster), &self.registry, &proxy, &self.env)
            .unwrap_or_else(|e| panic!("translate the client sidecar in {cluster}: {e}"));
        Envoy::start_translated(&translated)
    }

    fn sidecar_of(&self, version: &str) -> &Envoy {
        &self.apps[version].1
    }

    fn inbound_of(&self, version: &str) -> String {
        self.sidecar_of(version)
            .listener_addr(VIRTUAL_INBOUND)
            .to_string()
    }

    /// Requests a version's sidecar handed to its app so far.
    fn requests_reaching(&self, version: &str) -> u64 {
        self.sidecar_of(version)
            .try_counter("http.inbound_0.0.0.0_5000.downstream_rq_completed")
            .unwrap_or(0)
    }
}

/// Scenario D as planned: cluster, network ID, east-west LB IP; the
/// control plane's istiod LB IP every worker cluster points at.
const D_CLUSTERS: [(&str, &str, &str); 3] = [
    ("mdemo-cluster1", "network-c1", "10.64.30.73"),
    ("mdemo-cluster2", "network-c2", "10.6.136.29"),
    ("mdemo-cluster3", "network-c3", "10.64.30.77"),
];
const D_CONTROL_PLANE: &str = "mdemo-cluster1";
const D_ISTIOD_LB_IP: &str = "10.64.30.71";
const D_MESH_ID: &str = "mdemo-mesh";
const EAST_WEST_PORT: u16 = 15443;
const NETWORK_LABEL: &str = "topology.istio.io/network";

/// Scenario D without Envoy: every piece of multi-network configuration the scenario asks
/// for is in the manifests rendered from the example plan, with the planned values.
/// Each problem is named; all are reported at once.
#[test]
fn d_rendered_multi_network_configuration_matches_the_scenario_table() {
    let d = RenderedPlan::example("d-multi-network");
    let mut problems: Vec<String> = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };

    for (cluster, network, ew_ip) in D_CLUSTERS {
        // The plan itself has the planned values.
        let planned = d.cluster(cluster);
        check(
            planned.network.as_deref() == Some(network),
            format!(
                "plan: {cluster} network {:?}, the scenario says {network}",
                planned.network
            ),
        );
        check(
            planned
                .east_west_gateway
                .as_ref()
                .is_some_and(|g| g.address == ew_ip && g.port == Some(EAST_WEST_PORT)),
            format!(
                "plan: {cluster} eastWestGateway {:?}, the scenario says {ew_ip}:{EAST_WEST_PORT}",
                planned.east_west_gateway
            ),
        );

        let m = ClusterManifests::load(d.root(), cluster)
            .unwrap_or_else(|e| panic!("load {cluster}: {e}"));

        // istio-system carries the network ID (network.go setNetworkFromNamespace).
        let ns = m
            .namespaces
            .iter()
            .find(|n| n.value.metadata.name == "istio-system");
        check(
            ns.is_some_and(|n| {
                n.value
                    .metadata
                    .labels
                    .get(NETWORK_LABEL)
                    .map(String::as_str)
                    == Some(network)
            }),
            format!(
                "{cluster}: Namespace istio-system label {NETWORK_LABEL} is {:?}, want {network}",
                ns.map(|n| n.value.metadata.labels.get(NETWORK_LABEL))
            ),
        );

        // global.network and meshID per cluster; remotePilotAddress for workers.
        let values = install_values(&m).unwrap_or_else(|e| panic!("{e}"));
        let global = values
            .and_then(|op| op.value.spec.values.as_ref())
            .and_then(|v| v.global.as_ref());
        check(
            cluster_network(&m).unwrap().as_deref() == Some(network),
            format!(
                "{cluster}: values.global.network {:?}, want {network}",
                global.map(|g| &g.network)
            ),
        );
        check(
            global.and_then(|g| g.mesh_id.as_deref()) == Some(D_MESH_ID),
            format!(
                "{cluster}: values.global.meshID {:?}, want {D_MESH_ID}",
                global.map(|g| &g.mesh_id)
            ),
        );
        let pilot = global.and_then(|g| g.remote_pilot_address.as_deref());
        if cluster == D_CONTROL_PLANE {
            check(
                pilot.is_none(),
                format!("{cluster} hosts istiod but has remotePilotAddress {pilot:?}"),
            );
        } else {
            check(
                pilot == Some(D_ISTIOD_LB_IP),
                format!("{cluster}: remotePilotAddress {pilot:?}, want {D_ISTIOD_LB_IP}"),
            );
        }
        let served_by = serving_control_plane(&m).map(|cp| cp.cluster);
        check(
            served_by.as_deref() == Ok(D_CONTROL_PLANE),
            format!("{cluster}: served by {served_by:?}, want {D_CONTROL_PLANE}"),
        );

        // The network's east-west gateway install (gen-eastwest-gateway.sh + MetalLB IP).
        let components = gateway_components(&m);
        check(
            components.len() == 1,
            format!(
                "{cluster}: {} east-west gateway components, want 1",
                components.len()
            ),
        );
        for (op, c) in components {
            let global_network = op
                .value
                .spec
                .values
                .as_ref()
                .and_then(|v| v.global.as_ref())
                .and_then(|g| g.network.as_deref());
            check(
                global_network == Some(network),
                format!(
                    "{}: values.global.network {global_network:?}, want {network}",
                    op.file
                ),
            );
            check(
                c.label.get("istio").map(String::as_str) == Some("eastwestgateway")
                    && c.label.get(NETWORK_LABEL).map(String::as_str) == Some(network),
                format!(
                    "{}: gateway labels {:?}, want istio=eastwestgateway and {NETWORK_LABEL}={network}",
                    op.file, c.label
                ),
            );
            let k8s = c.k8s.as_ref();
            let view = k8s.and_then(|k| k.env.iter().find(|e| e.name == REQUESTED_NETWORK_VIEW));
            check(
                view.is_some_and(|e| e.value == network),
                format!(
                    "{}: {REQUESTED_NETWORK_VIEW} {:?}, want {network}",
                    op.file,
                    view.map(|e| &e.value)
                ),
            );
            let lb_ip = k8s.and_then(|k| {
                k.service_annotations
                    .get("metallb.universe.tf/loadBalancerIPs")
            });
            check(
                lb_ip.map(String::as_str) == Some(ew_ip),
                format!(
                    "{}: MetalLB loadBalancerIPs {lb_ip:?}, want {ew_ip}",
                    op.file
                ),
            );
            let tls_port = k8s
                .and_then(|k| k.service.as_ref())
                .and_then(|s| s.ports.iter().find(|p| p.name == "tls"));
            check(
                tls_port
                    .is_some_and(|p| p.port == EAST_WEST_PORT && p.target_port == EAST_WEST_PORT),
                format!(
                    "{}: service port tls {tls_port:?}, want {EAST_WEST_PORT}",
                    op.file
                ),
            );
        }

        // cross-network-gateway: istio-system, selects the east-west gateway, 15443 TLS
        // AUTO_PASSTHROUGH for *.local (expose-services.yaml).
        let gw = m
            .gateways
            .iter()
            .find(|g| g.value.metadata.name == "cross-network-gateway");
        match gw {
            None => check(
                false,
                format!("{cluster}: no Gateway cross-network-gateway"),
            ),
            Some(gw) => {
                let v = &gw.value;
                check(
                    v.metadata.namespace() == "istio-system",
                    format!(
                        "{}: namespace {}, want istio-system",
                        gw.file,
                        v.metadata.namespace()
                    ),
                );
                check(
                    v.spec.selector
                        == BTreeMap::from([("istio".to_string(), "eastwestgateway".to_string())]),
                    format!(
                        "{}: selector {:?}, want istio: eastwestgateway",
                        gw.file, v.spec.selector
                    ),
                );
                let servers: Vec<String> = v
                    .spec
                    .servers
                    .iter()
                    .map(|s| {
                        format!(
                            "{} {} {:?} {:?}",
                            s.port.number,
                            s.port.protocol,
                            s.tls.as_ref().map(|t| t.mode.as_str()),
                            s.hosts
                        )
                    })
                    .collect();
                check(
                    servers
                        == [format!(
                            "{EAST_WEST_PORT} TLS Some(\"AUTO_PASSTHROUGH\") [\"*.local\"]"
                        )],
                    format!(
                        "{}: servers {servers:?}, want one: {EAST_WEST_PORT} TLS AUTO_PASSTHROUGH *.local",
                        gw.file
                    ),
                );
            }
        }
    }

    // meshNetworks of the control plane: every network has its cluster's registry and a
    // gateway on 15443 at that cluster's east-west LB IP; nothing else.
    let cp = ClusterManifests::load(d.root(), D_CONTROL_PLANE).unwrap();
    match mesh_networks_of(&cp).unwrap() {
        None => check(false, format!("{D_CONTROL_PLANE}: no meshNetworks")),
        Some((source, networks)) => {
            let got: Vec<(String, Vec<String>, Vec<String>)> = networks
                .networks
                .iter()
                .map(|(name, n)| {
                    (
                        name.clone(),
                        n.endpoints
                            .iter()
                            .map(|e| e.from_registry.clone())
                            .collect(),
                        n.gateways
                            .iter()
                            .map(|g| format!("{}:{}", g.address, g.port))
                            .collect(),
                    )
                })
                .collect();
            let want: Vec<(String, Vec<String>, Vec<String>)> = D_CLUSTERS
                .iter()
                .map(|(c, n, ip)| {
                    (
                        n.to_string(),
                        vec![c.to_string()],
                        vec![format!("{ip}:{EAST_WEST_PORT}")],
                    )
                })
                .collect();
            check(
                got == want,
                format!("{source}: networks {got:?}, want {want:?}"),
            );
        }
    }

    assert!(
        problems.is_empty(),
        "scenario D configuration problems:\n  {}",
        problems.join("\n  ")
    );
}

/// Scenario C: helloworld v1 in cluster-1 (network1), v2 in cluster-2 (network2), each
/// primary with its own istiod and meshNetworks. From a client in either cluster,
/// `curl helloworld:5000/hello` alternates v1, v2, v1, v2 (the plan's 50/50 from both
/// regions, one connection = one filter VM); the answers from the other network went
/// through that network's east-west gateway, mTLS end to end.
#[test]
fn c_helloworld_alternates_v1_v2_from_both_clusters_across_the_east_west_gateways() {
    // In the three kinds of clusters: the filters' region from CLUSTER_ID in the
    // policy's clusterRegions (no node locality), or also from the node locality.
    for flavour in NodeLocality::ALL {
        eprintln!("C, {flavour}:");
        c_alternates(flavour);
    }
}

fn c_alternates(flavour: NodeLocality) {
    const REQUESTS: usize = 20;
    let mut mesh = MultiNetwork::start_with(
        "c-multi-primary",
        &["v1", "v2"],
        DEFAULT_SERVICE_ACCOUNT,
        flavour,
    );
    mesh.start_east_west_gateway("cluster-1");
    mesh.start_east_west_gateway("cluster-2");
    // (client cluster, its version, the other cluster, the other version, the region
    // subset the filter sends the other version's requests to)
    let cases = [
        ("cluster-1", "v1", "cluster-2", "v2", "geolb-cn-shanghai"),
        ("cluster-2", "v2", "cluster-1", "v1", "geolb-cn-hangzhou"),
    ];
    for (client_cluster, local, remote_cluster, remote, remote_subset) in cases {
        let client = mesh.client_sidecar(client_cluster);
        let gateway = &mesh.gateways[remote_cluster];
        let gateway_addr = gateway.listener_addr(EAST_WEST_LISTENER).to_string();
        let sni = tls::sni(HELLOWORLD_PORT, remote_subset, HELLOWORLD_HOST);
        let gateway_cx = format!("cluster.{sni}.upstream_cx_total");
        let before_gateway = gateway.try_counter(&gateway_cx).unwrap_or(0);
        let before_handshakes = tls_handshakes(mesh.sidecar_of(remote));
        let before = (
            mesh.requests_reaching(local),
            mesh.requests_reaching(remote),
        );

        let results =
            send_on_one_connection(client.listener_addr(OUTBOUND_5000), &hello(), REQUESTS);
        let versions: Vec<String> = results
            .iter()
            .map(|r| match r {
                Ok(r) if r.status == 200 => {
                    version_of(r).unwrap_or_else(|| format!("unexpected body {:?}", r.body_str()))
                }
                Ok(r) => format!("status {}", r.status),
                Err(e) => format!("error {e}"),
            })
            .collect();
        let errors = versions.iter().filter(|v| !v.starts_with('v')).count();
        eprintln!(
            "C from {client_cluster}: {} answers, {errors} client-visible errors: {versions:?}",
            versions.len()
        );
        assert_eq!(errors, 0, "from {client_cluster}: {versions:?}");
        assert!(
            versions.windows(2).all(|w| w[0] != w[1]),
            "from {client_cluster}: answers do not alternate: {versions:?}"
        );
        let count = |v: &str| versions.iter().filter(|x| *x == v).count();
        assert_eq!(
            (count(local), count(remote)),
            (REQUESTS / 2, REQUESTS / 2),
            "from {client_cluster}: {versions:?}"
        );

        // Where the client sent them: its own network's answers straight to the local
        // sidecar, the other network's to that network's east-west gateway, nowhere else.
        assert!(wait_until(Duration::from_secs(2), || {
            upstream_hosts(&client).len() >= REQUESTS
        }));
        let hosts = upstream_hosts(&client);
        let local_inbound = mesh.inbound_of(local);
        let to = |addr: &str| hosts.iter().filter(|h| *h == addr).count();
        assert_eq!(
            (to(&local_inbound), to(&gateway_addr), hosts.len()),
            (REQUESTS / 2, REQUESTS / 2, REQUESTS),
            "from {client_cluster}: upstream hosts {hosts:?} (local {local} sidecar {local_inbound}, {remote_cluster}'s gateway {gateway_addr})"
        );
        // The gateway routed them by SNI to its SNI-DNAT cluster for the subset; the
        // remote sidecar terminated the client's TLS and handed every request to its app.
        let through_gateway = gateway.try_counter(&gateway_cx).unwrap_or(0) - before_gateway;
        assert!(
            through_gateway >= 1,
            "{remote_cluster}'s gateway opened no connection on {sni}"
        );
        assert!(
            tls_handshakes(mesh.sidecar_of(remote)) > before_handshakes,
            "{remote}'s sidecar terminated no TLS"
        );
        let after = (
            mesh.requests_reaching(local),
            mesh.requests_reaching(remote),
        );
        assert_eq!(
            (after.0 - before.0, after.1 - before.1),
            (REQUESTS as u64 / 2, REQUESTS as u64 / 2),
            "requests reaching the {local} / {remote} apps through their sidecars"
        );
        eprintln!(
            "C from {client_cluster}: {} via {remote_cluster}'s east-west gateway ({through_gateway} connection(s) on {sni})",
            to(&gateway_addr)
        );
    }
}

/// Scenario D: helloworld v1 and v2 scaled to zero, only v3 runs, in mdemo-cluster3
/// (network-c3). A request from mdemo-cluster1 (network-c1; cluster3 is a remote of
/// cluster1's istiod) goes to cluster3's east-west gateway — the only endpoint istiod
/// gives cluster1's sidecar — which passes it by SNI to v3's sidecar; v3 answers.
#[test]
fn d_helloworld_only_in_cluster3_is_reached_from_cluster1_through_its_east_west_gateway() {
    const REQUESTS: usize = 10;
    let mut mesh = MultiNetwork::start("d-multi-network", &["v3"]);
    mesh.start_east_west_gateway("mdemo-cluster3");
    let client = mesh.client_sidecar("mdemo-cluster1");
    let gateway = &mesh.gateways["mdemo-cluster3"];
    let gateway_addr = gateway.listener_addr(EAST_WEST_LISTENER).to_string();

    let results = send_on_one_connection(client.listener_addr(OUTBOUND_5000), &hello(), REQUESTS);
    let versions: Vec<Option<String>> = results
        .iter()
        .map(|r| {
            r.as_ref()
                .ok()
                .filter(|r| r.status == 200)
                .and_then(version_of)
        })
        .collect();
    eprintln!("D from mdemo-cluster1: {versions:?}");
    assert_eq!(
        versions,
        vec![Some("v3".to_string()); REQUESTS],
        "{results:?}"
    );

    assert!(wait_until(Duration::from_secs(2), || {
        upstream_hosts(&client).len() >= REQUESTS
    }));
    let hosts = upstream_hosts(&client);
    assert_eq!(
        hosts,
        vec![gateway_addr.clone(); REQUESTS],
        "client upstream hosts (cluster3's gateway is {gateway_addr})"
    );
    let sni = tls::sni(HELLOWORLD_PORT, "geolb-region1", HELLOWORLD_HOST);
    let through = gateway
        .try_counter(&format!("cluster.{sni}.upstream_cx_total"))
        .unwrap_or(0);
    assert!(
        through >= 1,
        "cluster3's gateway opened no connection on {sni}"
    );
    assert_eq!(mesh.requests_reaching("v3"), REQUESTS as u64);
    assert!(
        tls_handshakes(mesh.sidecar_of("v3")) >= 1,
        "v3's sidecar terminated no TLS"
    );
    eprintln!(
        "D: {REQUESTS} of {REQUESTS} answered by v3 via mdemo-cluster3's east-west gateway ({through} connection(s) on {sni})"
    );
}

/// A client whose cross-network endpoints need a gateway without a local stand-in gets
/// an error naming the planned address and where meshNetworks lists it.
#[test]
fn d_a_gateway_address_without_local_stand_in_is_an_error_naming_it() {
    let d = RenderedPlan::example("d-multi-network");
    let v3 = SocketAddr::from(([127, 0, 0, 1], 9));
    let mut registry = d.registry(|p| p.is(HELLOWORLD, Some("v3")).then_some(v3));
    for w in &mut registry.workloads {
        w.sidecar = true;
    }
    let m = ClusterManifests::load(d.root(), "mdemo-cluster1").unwrap();
    let client = d.sidecar(HELLOWORLD, Some("v1"), "mdemo-cluster1");
    let err = translate(&m, &registry, &client, &d.environment(1)).unwrap_err();
    // cluster3's endpoints go to the gateway istiod found in cluster3's registry (its
    // east-west gateway Service at the planned load-balancer address), which the
    // meshNetworks entry for network-c3 names too.
    assert_eq!(
        err.at,
        "clusters/mdemo-cluster3/install/eastwest-gateway.yaml: the Service of ingress gateway istio-eastwestgateway in registry mdemo-cluster3"
    );
    assert!(err.message.contains("10.64.30.77:15443"), "{err}");
    // Without that Service's address (a load balancer not yet provisioned), the
    // meshNetworks entry is the only gateway.
    registry.east_west_gateways.clear();
    let err = translate(&m, &registry, &client, &d.environment(1)).unwrap_err();
    assert_eq!(
        err.at,
        "clusters/mdemo-cluster1/vendor-console.md: spec.values.global.meshNetworks.network-c3.gateways[0]"
    );
}

/// The client verifies the server as Istio's ISTIO_MUTUAL context does: the chain
/// against the mesh root and the SAN against the service's accounts. v3's sidecar
/// presenting a certificate of the mesh CA for another service account is refused: the
/// handshake fails (`ssl.fail_verify_san`), no request reaches v3. (The same setup with
/// the right identity is the previous test.)
#[test]
fn d_a_server_presenting_another_identity_fails_the_clients_handshake() {
    let mut mesh =
        MultiNetwork::start_with("d-multi-network", &["v3"], "impostor", NodeLocality::Absent);
    mesh.start_east_west_gateway("mdemo-cluster3");
    let client = mesh.client_sidecar("mdemo-cluster1");
    let results = send_on_one_connection(client.listener_addr(OUTBOUND_5000), &hello(), 3);
    let statuses: Vec<u16> = results
        .iter()
        .map(|r| r.as_ref().map_or(0, |r| r.status))
        .collect();
    assert_eq!(statuses, [503, 503, 503], "{results:?}");
    assert_eq!(mesh.requests_reaching("v3"), 0);
    let san_failures: u64 = client
        .counters_with_prefix("cluster.outbound|5000|")
        .iter()
        .filter(|(k, _)| k.ends_with(".ssl.fail_verify_san"))
        .map(|(_, v)| *v)
        .sum();
    assert!(
        san_failures >= 1,
        "{:?}",
        client.counters_with_prefix("cluster.outbound|5000|")
    );
}
