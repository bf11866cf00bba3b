//! Multi-network: which control plane serves a cluster, its `meshNetworks`, and the
//! split-horizon endpoint filter istiod applies for a proxy on one network.
//!
//! * A cluster whose install values set `global.remotePilotAddress` has no istiod of
//!   its own (profile `remote`): its proxies get their configuration, meshNetworks
//!   included, from the primary that discovers it. The rendered manifests do not name
//!   the primary's istiod address anywhere (the plan's `istiodAddress` of a primary is
//!   not rendered), so the stand-in takes the one primary whose meshNetworks registers
//!   the cluster (`fromRegistry`), i.e. the istiod that holds its remote secret; none or
//!   several is an error.
//! * meshNetworks is read from the control plane's install values,
//!   `values.global.meshNetworks` keyed by network (the istio-discovery chart renders it
//!   into the mesh ConfigMap's `meshNetworks`); in a managed mesh those values are what
//!   the clusters' console notes give the vendor (`super::load`).
//! * Network gateways (Istio 1.30.3 pilot/pkg/model/network.go `NetworkManager.reload`)
//!   come from two places: meshNetworks entries with an `address` (no cluster), and
//!   every Service labelled `topology.istio.io/network` in a registry istiod watches
//!   (pilot/pkg/serviceregistry/kube/controller/network.go `getGatewayDetails`,
//!   `extractGatewaysInner`: the Service's load-balancer address, the port of label
//!   `networking.istio.io/gatewayPort` or 15443 when the Service has it, the registry's
//!   cluster). The east-west gateway install labels its Service so (the istio-ingress
//!   chart gives the Service the component's labels); its address is Kubernetes state,
//!   [`super::Registry::east_west_gateways`]. The registries istiod watches are its own
//!   cluster's and those its meshNetworks names in `fromRegistry` (the remote secrets).
//! * Gateways are planned load-balancer addresses; [`super::Environment::addresses`]
//!   maps each `ip:port` to the local Envoy standing in for that east-west gateway.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use super::endpoints::{
    IstioEndpoint, LocalityGroup, NETWORK_LABEL, augment_labels, group_by_locality,
};
use super::load::{ClusterManifests, Loaded};
use super::objects::{GatewayComponent, IstioOperator, MeshNetworks};
use super::{Environment, Locality, Proxy, Registry, TranslateError};

/// The label naming a gateway Service's mTLS port (`label.NetworkingGatewayPort`).
pub const GATEWAY_PORT_LABEL: &str = "networking.istio.io/gatewayPort";
/// `DefaultNetworkGatewayPort`.
pub const DEFAULT_GATEWAY_PORT: u16 = 15443;

/// The proxy metadata east-west gateways are installed with
/// (`ISTIO_META_REQUESTED_NETWORK_VIEW`, samples/multicluster/gen-eastwest-gateway.sh):
/// istiod then sends that proxy only endpoints of these networks
/// (pilot/pkg/model/proxy_view.go).
pub const REQUESTED_NETWORK_VIEW: &str = "ISTIO_META_REQUESTED_NETWORK_VIEW";

/// One network gateway as istiod's `NetworkManager` holds it. meshNetworks gateways
/// given by `address` have no cluster (`Cluster: ""`), a registry's gateway Service has
/// the registry's; the endpoint standing for a remote endpoint carries the network and
/// (when set) the cluster label.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NetworkGateway {
    pub network: String,
    /// The registry it was found in; empty for a meshNetworks entry.
    pub cluster: String,
    /// `address:port` as planned (the meshNetworks entry); [`Environment::addresses`]
    /// maps it to the local stand-in when an endpoint needs it.
    pub planned: String,
    /// Where the entry is (file and field path), for errors.
    pub at: String,
}

impl NetworkGateway {
    /// The local address of this gateway's stand-in.
    pub fn local(&self, env: &Environment) -> Result<SocketAddr, TranslateError> {
        env.addresses
            .get(&self.planned)
            .copied()
            .ok_or_else(|| TranslateError {
                at: self.at.clone(),
                message: format!(
                    "gateway {} of network {} has no local stand-in (Environment.addresses)",
                    self.planned, self.network
                ),
            })
    }
}

/// What istiod knows about networks when it builds a proxy's endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshNetworkView {
    /// The cluster whose istiod serves the proxy's cluster.
    pub control_plane: String,
    /// The file meshNetworks was read from (empty: none).
    pub source: String,
    pub networks: MeshNetworks,
    /// Every gateway, meshNetworks' and the registries', sorted.
    pub gateways: Vec<NetworkGateway>,
}

/// The IstioOperator that installs a cluster's control plane (or its remote profile):
/// the one without gateway components (the east-west gateway's has them). `None` when
/// the render has no install values for the cluster.
pub fn install_values(
    m: &ClusterManifests,
) -> Result<Option<&Loaded<IstioOperator>>, TranslateError> {
    let mut found: Option<&Loaded<IstioOperator>> = None;
    for op in m
        .install
        .operators
        .iter()
        .filter(|o| o.value.spec.components.is_none())
    {
        if let Some(first) = found.replace(op) {
            return Err(op.error(
                "spec",
                format!(
                    "a second control-plane IstioOperator for cluster {} (the first is {})",
                    m.cluster, first.file
                ),
            ));
        }
    }
    Ok(found)
}

/// The east-west gateway components of a cluster's install (`install/eastwest-gateway.yaml`).
pub fn gateway_components(
    m: &ClusterManifests,
) -> Vec<(&Loaded<IstioOperator>, &GatewayComponent)> {
    m.install
        .operators
        .iter()
        .flat_map(|op| {
            op.value
                .spec
                .components
                .iter()
                .flat_map(|c| c.ingress_gateways.iter())
                .map(move |g| (op, g))
        })
        .collect()
}

/// `values.global.network` of the cluster's install values: the network its sidecars
/// are injected with (`ISTIO_META_NETWORK`).
pub fn cluster_network(m: &ClusterManifests) -> Result<Option<String>, TranslateError> {
    Ok(install_values(m)?.and_then(|op| {
        op.value
            .spec
            .values
            .as_ref()?
            .global
            .as_ref()?
            .network
            .clone()
    }))
}

fn remote_pilot_address(op: &Loaded<IstioOperator>) -> Option<&str> {
    op.value
        .spec
        .values
        .as_ref()?
        .global
        .as_ref()?
        .remote_pilot_address
        .as_deref()
}

/// meshNetworks of a control-plane cluster, with the file it came from: its install
/// values (`values.global.meshNetworks`, which the istiod chart turns into the mesh
/// ConfigMap's `meshNetworks`).
pub fn mesh_networks_of(
    m: &ClusterManifests,
) -> Result<Option<(String, MeshNetworks)>, TranslateError> {
    Ok(install_values(m)?.and_then(|op| {
        let networks = op
            .value
            .spec
            .values
            .as_ref()?
            .global
            .as_ref()?
            .mesh_networks
            .clone()?;
        Some((
            format!("{}: spec.values.global.meshNetworks", op.file),
            networks,
        ))
    }))
}

/// The manifests of the cluster whose istiod serves `m`'s cluster: `m` itself unless
/// its install values point at a remote pilot (see the module doc).
pub fn serving_control_plane(m: &ClusterManifests) -> Result<ClusterManifests, TranslateError> {
    let Some(op) = install_values(m)? else {
        return Ok(m.clone());
    };
    let Some(pilot) = remote_pilot_address(op) else {
        return Ok(m.clone());
    };
    let mut primaries = Vec::new();
    for other in m
        .rendered_clusters()?
        .into_iter()
        .filter(|c| *c != m.cluster)
    {
        let cp = m.sibling(&other)?;
        let is_primary = install_values(&cp)?.is_some_and(|o| remote_pilot_address(o).is_none());
        let registers = mesh_networks_of(&cp)?.is_some_and(|(_, n)| {
            n.networks
                .values()
                .flat_map(|net| &net.endpoints)
                .any(|e| e.from_registry == m.cluster)
        });
        if is_primary && registers {
            primaries.push(cp);
        }
    }
    let at = format!("{}: spec.values.global.remotePilotAddress", op.file);
    match <[ClusterManifests; 1]>::try_from(primaries) {
        Ok([cp]) => Ok(cp),
        Err(found) if found.is_empty() => Err(TranslateError {
            at,
            message: format!(
                "remote pilot {pilot}: no primary cluster's meshNetworks registers {} (fromRegistry), so no istiod serves it",
                m.cluster
            ),
        }),
        Err(found) => Err(TranslateError {
            at,
            message: format!(
                "remote pilot {pilot}: several primaries register {} ({}); the manifests do not say which istiod answers there",
                m.cluster,
                found
                    .iter()
                    .map(|c| c.cluster.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// The clusters whose registries the istiod of control plane `cp` watches: its own and
/// every `fromRegistry` of its meshNetworks, sorted.
fn watched_clusters(cp: &ClusterManifests, networks: Option<&MeshNetworks>) -> Vec<String> {
    let mut out: BTreeSet<String> = BTreeSet::from([cp.cluster.clone()]);
    for n in networks.iter().flat_map(|n| n.networks.values()) {
        out.extend(n.endpoints.iter().map(|e| e.from_registry.clone()));
    }
    out.into_iter().collect()
}

/// The network gateways istiod finds among the Services of registry `cluster`
/// (`getGatewayDetails`): its east-west gateway Service, from the install component
/// that creates it, when it is labelled with a network, exposes the gateway port and
/// Kubernetes gave it a load-balancer address.
fn registry_gateways(
    m: &ClusterManifests,
    registry: &Registry,
) -> Result<Vec<NetworkGateway>, TranslateError> {
    let Some(address) = registry.east_west_gateways.get(&m.cluster) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (op, c) in gateway_components(m) {
        let Some(network) = c.label.get(NETWORK_LABEL) else {
            continue;
        };
        let port = match c.label.get(GATEWAY_PORT_LABEL) {
            Some(p) => p.parse().map_err(|_| {
                op.error(
                    &format!("spec.components.ingressGateways[{}].label", c.name),
                    format!("{GATEWAY_PORT_LABEL} `{p}` is not a port"),
                )
            })?,
            None => DEFAULT_GATEWAY_PORT,
        };
        let exposed = c
            .k8s
            .as_ref()
            .and_then(|k| k.service.as_ref())
            .is_some_and(|s| s.ports.iter().any(|sp| sp.port == port));
        if exposed {
            out.push(NetworkGateway {
                network: network.clone(),
                cluster: m.cluster.clone(),
                planned: format!("{address}:{port}"),
                at: format!(
                    "{}: the Service of ingress gateway {} in registry {}",
                    op.file, c.name, m.cluster
                ),
            });
        }
    }
    Ok(out)
}

impl MeshNetworkView {
    /// The network view istiod serving `m`'s cluster has, with `registry` as the
    /// Kubernetes side: `None` when it knows no network gateway at all (no split horizon:
    /// `IsMultiNetworkEnabled`).
    pub fn for_cluster(
        m: &ClusterManifests,
        registry: &Registry,
    ) -> Result<Option<MeshNetworkView>, TranslateError> {
        let cp = serving_control_plane(m)?;
        let from_mesh_networks = mesh_networks_of(&cp)?;
        let mut gateways = Vec::new();
        if let Some((source, networks)) = &from_mesh_networks {
            for (name, network) in &networks.networks {
                for (i, gw) in network.gateways.iter().enumerate() {
                    gateways.push(NetworkGateway {
                        network: name.clone(),
                        cluster: String::new(),
                        planned: format!("{}:{}", gw.address, gw.port),
                        at: format!("{source}.{name}.gateways[{i}]"),
                    });
                }
            }
        }
        for cluster in watched_clusters(&cp, from_mesh_networks.as_ref().map(|(_, n)| n)) {
            let watched = if cluster == cp.cluster {
                cp.clone()
            } else {
                m.sibling(&cluster)?
            };
            gateways.extend(registry_gateways(&watched, registry)?);
        }
        if gateways.is_empty() {
            return Ok(None);
        }
        gateways.sort();
        gateways.dedup();
        let (source, networks) = from_mesh_networks.unwrap_or_default();
        Ok(Some(MeshNetworkView {
            control_plane: cp.cluster,
            source,
            networks,
            gateways,
        }))
    }

    /// `selectNetworkGateways`: the gateways of `network` found in registry `cluster`,
    /// else every gateway of `network` (sidecars skip gateways without an mTLS port;
    /// every gateway here has one).
    pub fn gateways_for(&self, network: &str, cluster: &str) -> Vec<&NetworkGateway> {
        let of_cluster: Vec<&NetworkGateway> = self
            .gateways
            .iter()
            .filter(|g| g.network == network && g.cluster == cluster)
            .collect();
        if !of_cluster.is_empty() {
            return of_cluster;
        }
        self.gateways
            .iter()
            .filter(|g| g.network == network)
            .collect()
    }

    /// `GetLBWeightScaleFactor`: the least common multiple of the gateway counts per
    /// network and per network + cluster (`NetworkGateways.update`), so each gateway's
    /// share of an endpoint's weight stays whole.
    pub fn weight_scale(&self) -> u32 {
        let mut by_network: BTreeMap<&str, u32> = BTreeMap::new();
        let mut by_network_and_cluster: BTreeMap<(&str, &str), u32> = BTreeMap::new();
        for g in &self.gateways {
            *by_network.entry(g.network.as_str()).or_default() += 1;
            *by_network_and_cluster
                .entry((g.network.as_str(), g.cluster.as_str()))
                .or_default() += 1;
        }
        by_network
            .values()
            .chain(by_network_and_cluster.values())
            .fold(1, |acc, &n| lcm(acc, n))
    }

    /// Split horizon (`EndpointsByNetworkFilter`, Istio 1.30.3
    /// pilot/pkg/xds/endpoints/ep_filters.go), run after subset selection and grouping
    /// and before the failover priorities: for a proxy on `proxy_network`, an endpoint
    /// on another network that has gateways is replaced by the gateway(s) of its network
    /// and cluster ([`MeshNetworkView::gateways_for`]), one endpoint per gateway per
    /// locality whose weight is the (scaled) weight of the endpoints it stands for, in
    /// the original locality, labelled `AugmentLabels(nil, gw.Cluster, "", "",
    /// gw.Network)`: `topology.istio.io/network` and, for a registry's gateway,
    /// `topology.istio.io/cluster` (no region: a region failoverPriority does not match
    /// it, a network `key=value` does), with `tlsMode: istio`. Remote endpoints without a sidecar are dropped (cross-network
    /// traffic needs mTLS for SNI routing). A proxy without a network still goes through
    /// the gateways of a network that has them (`forceGateway`).
    /// A gateway without a local stand-in in `env` is an error when an endpoint needs it.
    pub fn split_horizon(
        &self,
        groups: Vec<LocalityGroup>,
        proxy_network: &str,
        env: &Environment,
    ) -> Result<Vec<LocalityGroup>, TranslateError> {
        let scale = self.weight_scale();
        let mut out = Vec::new();
        for g in groups {
            let mut direct = Vec::new();
            let mut through: BTreeMap<&NetworkGateway, u32> = BTreeMap::new();
            for mut e in g.endpoints {
                let weight = e.weight.max(1).saturating_mul(scale);
                let gateways = self.gateways_for(&e.network, &e.cluster);
                let force_gateway =
                    proxy_network.is_empty() && !e.network.is_empty() && !gateways.is_empty();
                if !force_gateway
                    && (same_or_empty(proxy_network, &e.network) || gateways.is_empty())
                {
                    e.weight = weight;
                    direct.push(e);
                    continue;
                }
                if !e.istio_mtls {
                    continue;
                }
                let share = weight / u32::try_from(gateways.len()).unwrap_or(1);
                for gw in gateways {
                    *through.entry(gw).or_default() += share;
                }
            }
            for (gw, weight) in through {
                direct.push(IstioEndpoint {
                    address: gw.local(env)?,
                    locality: g.locality.clone(),
                    labels: augment_labels(
                        &BTreeMap::new(),
                        &gw.cluster,
                        &Locality::default(),
                        &gw.network,
                    ),
                    cluster: gw.cluster.clone(),
                    network: gw.network.clone(),
                    istio_mtls: true,
                    weight: weight.max(1),
                });
            }
            if !direct.is_empty() {
                out.push(LocalityGroup {
                    locality: g.locality,
                    priority: g.priority,
                    endpoints: direct,
                });
            }
        }
        Ok(out)
    }
}

/// Whether `cluster` is an SNI-DNAT cluster of an AUTO_PASSTHROUGH gateway, named
/// `outbound_.PORT_.SUBSET_.HOST` (`model.IsDNSSrvSubsetKey`, which is how istiod tells
/// them apart too).
pub fn is_sni_dnat(cluster: &str) -> bool {
    cluster.starts_with("outbound_.")
}

/// The endpoint steps of istiod's `EndpointBuilder.generate` that follow subset
/// selection, for one cluster of `proxy` (pilot/pkg/xds/endpoints/endpoint_builder.go):
/// the requested network view, the split horizon when the serving control plane has
/// meshNetworks, and for SNI-DNAT clusters only endpoints with Istio mTLS. The result
/// keeps each endpoint's locality, so grouping it again gives istiod's groups.
pub fn endpoints_for_proxy(
    m: &ClusterManifests,
    registry: &Registry,
    proxy: &Proxy,
    env: &Environment,
    cluster: &str,
    endpoints: Vec<IstioEndpoint>,
) -> Result<Vec<IstioEndpoint>, TranslateError> {
    let view = requested_network_view(m, proxy);
    let visible_endpoints: Vec<IstioEndpoint> = endpoints
        .into_iter()
        .filter(|e| visible(view.as_ref(), e))
        .collect();
    let mut groups = group_by_locality(visible_endpoints);
    if let Some(networks) = MeshNetworkView::for_cluster(m, registry)? {
        groups = networks.split_horizon(groups, &proxy.network, env)?;
    }
    if is_sni_dnat(cluster) {
        groups = mtls_only(groups);
    }
    Ok(groups.into_iter().flat_map(|g| g.endpoints).collect())
}

/// `identifier.IsSameOrEmpty`: networks match when equal or when either is unset.
fn same_or_empty(a: &str, b: &str) -> bool {
    a.is_empty() || b.is_empty() || a == b
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn lcm(a: u32, b: u32) -> u32 {
    if a == 0 || b == 0 {
        return a.max(b);
    }
    a / gcd(a, b) * b
}

/// The networks a gateway proxy asked to see (`ISTIO_META_REQUESTED_NETWORK_VIEW` of the
/// install component whose labels the proxy carries); `None` = every network (sidecars).
pub fn requested_network_view(m: &ClusterManifests, proxy: &Proxy) -> Option<BTreeSet<String>> {
    gateway_components(m)
        .into_iter()
        .map(|(_, c)| c)
        .filter(|c| c.label.iter().all(|(k, v)| proxy.labels.get(k) == Some(v)))
        .flat_map(|c| c.k8s.iter().flat_map(|k| k.env.iter()))
        .find(|e| e.name == REQUESTED_NETWORK_VIEW)
        .map(|e| {
            e.value
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
}

/// `proxyView.IsVisible` (pilot/pkg/model/proxy_view.go): with a requested view, only
/// endpoints on those networks or on no network.
pub fn visible(view: Option<&BTreeSet<String>>, endpoint: &IstioEndpoint) -> bool {
    view.is_none_or(|v| endpoint.network.is_empty() || v.contains(&endpoint.network))
}

/// `EndpointsWithMTLSFilter` (endpoint_builder.go `generate`): SNI-DNAT clusters of an
/// AUTO_PASSTHROUGH gateway keep only endpoints that terminate Istio mTLS, since the
/// gateway cannot check that the passed-through bytes are mTLS.
pub fn mtls_only(groups: Vec<LocalityGroup>) -> Vec<LocalityGroup> {
    groups
        .into_iter()
        .map(|mut g| {
            g.endpoints.retain(|e| e.istio_mtls);
            g
        })
        .filter(|g| !g.endpoints.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::istiod::Workload;
    use crate::istiod::endpoints::{CLUSTER_LABEL, NETWORK_LABEL};

    fn loc(region: &str) -> Locality {
        Locality {
            region: region.into(),
            zone: format!("{region}-z"),
            subzone: String::new(),
        }
    }

    fn workload(port: u16, region: &str, network: &str, sidecar: bool) -> IstioEndpoint {
        IstioEndpoint::of(&Workload {
            service: "h.s.svc.cluster.local".into(),
            port: 5000,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            labels: BTreeMap::from([("version".to_string(), format!("v{port}"))]),
            cluster: format!("c-{network}"),
            network: network.into(),
            locality: loc(region),
            sidecar,
            service_account: "default".into(),
        })
    }

    /// A view with the given gateways (network, local port) and an environment that
    /// maps each to 127.0.0.1:<local port>.
    fn view(gateways: &[(&str, u16)]) -> (MeshNetworkView, Environment) {
        let mut env = Environment::default();
        let mut gws = Vec::new();
        for (i, (net, local)) in gateways.iter().enumerate() {
            let planned = format!("10.0.0.{i}:15443");
            env.addresses
                .insert(planned.clone(), SocketAddr::from(([127, 0, 0, 1], *local)));
            gws.push(NetworkGateway {
                network: net.to_string(),
                cluster: String::new(),
                planned,
                at: format!("test.{net}.gateways[{i}]"),
            });
        }
        gws.sort();
        let v = MeshNetworkView {
            control_plane: "c-n1".into(),
            source: "test".into(),
            networks: MeshNetworks::default(),
            gateways: gws,
        };
        (v, env)
    }

    fn ports_and_weights(groups: &[LocalityGroup]) -> Vec<(String, u16, u32)> {
        groups
            .iter()
            .flat_map(|g| {
                g.endpoints
                    .iter()
                    .map(move |e| (g.locality.region.clone(), e.address.port(), e.weight))
            })
            .collect()
    }

    #[test]
    fn remote_endpoints_become_one_gateway_endpoint_per_locality_weighted_by_count() {
        let (v, env) = view(&[("n2", 9002)]);
        let groups = group_by_locality(vec![
            workload(1, "a", "n1", true),
            workload(2, "b", "n2", true),
            workload(3, "b", "n2", true),
            workload(4, "c", "n2", true),
        ]);
        let out = v.split_horizon(groups, "n1", &env).unwrap();
        assert_eq!(
            ports_and_weights(&out),
            vec![
                ("a".into(), 1, 1),
                ("b".into(), 9002, 2),
                ("c".into(), 9002, 1)
            ]
        );
        let gw = &out[1].endpoints[0];
        assert_eq!(
            gw.labels,
            BTreeMap::from([(NETWORK_LABEL.to_string(), "n2".to_string())]),
            "a meshNetworks gateway has no cluster: its endpoints carry the network label only"
        );
        assert!(gw.istio_mtls);
    }

    #[test]
    fn a_registrys_gateway_serves_its_clusters_endpoints_with_network_and_cluster_labels() {
        // meshNetworks lists n2's gateway (no cluster); registry c-n2 has a gateway
        // Service at the same address: istiod holds both.
        let (mut v, mut env) = view(&[("n2", 9002)]);
        v.gateways.push(NetworkGateway {
            network: "n2".into(),
            cluster: "c-n2".into(),
            planned: "10.0.0.9:15443".into(),
            at: "registry".into(),
        });
        env.addresses.insert(
            "10.0.0.9:15443".into(),
            SocketAddr::from(([127, 0, 0, 1], 9009)),
        );
        // Two gateways for n2, one per (n2, cluster): scale 2.
        assert_eq!(v.weight_scale(), 2);
        let groups = group_by_locality(vec![
            workload(1, "a", "n1", true),
            workload(2, "b", "n2", true),
        ]);
        let out = v.split_horizon(groups, "n1", &env).unwrap();
        // The endpoint of registry c-n2 goes to c-n2's own gateway only.
        assert_eq!(
            ports_and_weights(&out),
            vec![("a".into(), 1, 2), ("b".into(), 9009, 2)]
        );
        assert_eq!(
            out[1].endpoints[0].labels,
            BTreeMap::from([
                (CLUSTER_LABEL.to_string(), "c-n2".to_string()),
                (NETWORK_LABEL.to_string(), "n2".to_string()),
            ])
        );
        // An endpoint of another registry on n2 falls back to every gateway of n2.
        let mut other = workload(3, "b", "n2", true);
        other.cluster = "c-other".into();
        let out = v
            .split_horizon(group_by_locality(vec![other]), "n1", &env)
            .unwrap();
        assert_eq!(
            ports_and_weights(&out),
            vec![("b".into(), 9002, 1), ("b".into(), 9009, 1)]
        );
    }

    #[test]
    fn remote_endpoints_without_sidecar_are_dropped_and_networks_without_gateways_stay_direct() {
        let (v, env) = view(&[("n2", 9002)]);
        let groups = group_by_locality(vec![
            workload(2, "b", "n2", false),
            workload(3, "c", "n3", false),
        ]);
        let out = v.split_horizon(groups, "n1", &env).unwrap();
        assert_eq!(ports_and_weights(&out), vec![("c".into(), 3, 1)]);
    }

    #[test]
    fn two_gateways_share_the_scaled_weight_and_local_weights_scale_too() {
        let (v, env) = view(&[("n2", 9002), ("n2", 9003)]);
        assert_eq!(v.weight_scale(), 2);
        let groups = group_by_locality(vec![
            workload(1, "a", "n1", true),
            workload(2, "b", "n2", true),
            workload(3, "b", "n2", true),
            workload(4, "b", "n2", true),
        ]);
        assert_eq!(
            ports_and_weights(&v.split_horizon(groups, "n1", &env).unwrap()),
            vec![
                ("a".into(), 1, 2),
                ("b".into(), 9002, 3),
                ("b".into(), 9003, 3)
            ]
        );
    }

    #[test]
    fn a_proxy_without_network_is_forced_through_gateways() {
        let (v, env) = view(&[("n2", 9002)]);
        let groups = group_by_locality(vec![workload(2, "b", "n2", true)]);
        assert_eq!(
            ports_and_weights(&v.split_horizon(groups, "", &env).unwrap()),
            vec![("b".into(), 9002, 1)]
        );
    }

    #[test]
    fn a_needed_gateway_without_local_stand_in_is_an_error_naming_it() {
        let (v, _) = view(&[("n2", 9002)]);
        let groups = group_by_locality(vec![workload(2, "b", "n2", true)]);
        let err = v
            .split_horizon(groups.clone(), "n1", &Environment::default())
            .unwrap_err();
        assert_eq!(err.at, "test.n2.gateways[0]");
        assert!(err.message.contains("10.0.0.0:15443"), "{err}");
        // Not needed (the proxy is on n2 itself): no error.
        assert!(
            v.split_horizon(groups, "n2", &Environment::default())
                .is_ok()
        );
    }

    #[test]
    fn requested_view_hides_other_networks_but_not_unset_ones() {
        let view: BTreeSet<String> = ["n1".to_string()].into();
        assert!(visible(Some(&view), &workload(1, "a", "n1", true)));
        assert!(!visible(Some(&view), &workload(2, "a", "n2", true)));
        assert!(visible(Some(&view), &workload(3, "a", "", true)));
        assert!(visible(None, &workload(2, "a", "n2", true)));
    }

    #[test]
    fn sni_dnat_clusters_keep_only_mtls_endpoints() {
        let groups = group_by_locality(vec![
            workload(1, "a", "n1", true),
            workload(2, "b", "n1", false),
        ]);
        assert_eq!(
            ports_and_weights(&mtls_only(groups)),
            vec![("a".into(), 1, 1)]
        );
        assert!(is_sni_dnat("outbound_.5000_._.h.s.svc.cluster.local"));
        assert!(!is_sni_dnat("outbound|5000||h.s.svc.cluster.local"));
    }
}
