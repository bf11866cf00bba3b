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
//! * meshNetworks is read from the `istio` ConfigMap (`install/meshnetworks.yaml`) and
//!   from the IstioOperator's `values.global.meshNetworks` (the chart renders the latter
//!   into the former: reference-istio-envoy.md D.4); when both are there they must agree.
//! * Gateways are planned load-balancer addresses; [`super::Environment::addresses`]
//!   maps each `ip:port` to the local Envoy standing in for that east-west gateway.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use super::endpoints::{IstioEndpoint, LocalityGroup, augment_labels, group_by_locality};
use super::load::{ClusterManifests, Loaded};
use super::objects::{GatewayComponent, IstioOperator, MeshNetworks};
use super::{Environment, Locality, Proxy, TranslateError};

/// The proxy metadata east-west gateways are installed with
/// (`ISTIO_META_REQUESTED_NETWORK_VIEW`, samples/multicluster/gen-eastwest-gateway.sh):
/// istiod then sends that proxy only endpoints of these networks
/// (pilot/pkg/model/proxy_view.go).
pub const REQUESTED_NETWORK_VIEW: &str = "ISTIO_META_REQUESTED_NETWORK_VIEW";

/// One network gateway as istiod's `NetworkManager` holds it. meshNetworks gateways
/// given by `address` have no cluster (`Cluster: ""`, pilot/pkg/model/network.go
/// `reload`), so the endpoint standing for them carries only the network label.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NetworkGateway {
    pub network: String,
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
    /// The file meshNetworks was read from.
    pub source: String,
    pub networks: MeshNetworks,
    /// Every gateway, sorted (`model.SortGateways`).
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

/// meshNetworks of a control-plane cluster, with the file it came from: the `istio`
/// ConfigMap and/or the install values; both present and different is an error.
pub fn mesh_networks_of(
    m: &ClusterManifests,
) -> Result<Option<(String, MeshNetworks)>, TranslateError> {
    let from_values = install_values(m)?.and_then(|op| {
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
    });
    let from_config_map = m
        .install
        .mesh_networks
        .as_ref()
        .map(|l| (format!("{}: data.meshNetworks", l.file), l.value.clone()));
    match (from_config_map, from_values) {
        (Some((a, na)), Some((b, nb))) if na != nb => Err(TranslateError {
            at: a,
            message: format!("differs from {b}: istiod would read one, the install the other"),
        }),
        (Some(found), _) | (None, Some(found)) => Ok(Some(found)),
        (None, None) => Ok(None),
    }
}

/// The clusters of a render (`clusters/*`), sorted.
fn rendered_clusters(m: &ClusterManifests) -> Result<Vec<String>, TranslateError> {
    let dir = m.root.join("clusters");
    let entries = std::fs::read_dir(&dir).map_err(|e| TranslateError {
        at: "clusters".into(),
        message: format!("cannot list {}: {e}", dir.display()),
    })?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
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
    for other in rendered_clusters(m)?
        .into_iter()
        .filter(|c| *c != m.cluster)
    {
        let cp = ClusterManifests::load(&m.root, &other)?;
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

impl MeshNetworkView {
    /// The network view istiod serving `m`'s cluster has: `None` when its control plane
    /// has no meshNetworks (single network: no split horizon).
    pub fn for_cluster(m: &ClusterManifests) -> Result<Option<MeshNetworkView>, TranslateError> {
        let cp = serving_control_plane(m)?;
        let Some((source, networks)) = mesh_networks_of(&cp)? else {
            return Ok(None);
        };
        let mut gateways = Vec::new();
        for (name, network) in &networks.networks {
            for (i, gw) in network.gateways.iter().enumerate() {
                gateways.push(NetworkGateway {
                    network: name.clone(),
                    planned: format!("{}:{}", gw.address, gw.port),
                    at: format!("{source}.networks.{name}.gateways[{i}]"),
                });
            }
        }
        gateways.sort();
        Ok(Some(MeshNetworkView {
            control_plane: cp.cluster,
            source,
            networks,
            gateways,
        }))
    }

    /// The gateways of `network` (meshNetworks gateways have no cluster, so
    /// `selectNetworkGateways` falls back to the network's list).
    pub fn gateways_of(&self, network: &str) -> Vec<&NetworkGateway> {
        self.gateways
            .iter()
            .filter(|g| g.network == network)
            .collect()
    }

    /// `GetLBWeightScaleFactor`: the least common multiple of the gateway counts per
    /// network (and per network + cluster, the same here), so each gateway's share of
    /// an endpoint's weight stays whole.
    pub fn weight_scale(&self) -> u32 {
        let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
        for g in &self.gateways {
            *counts.entry(g.network.as_str()).or_default() += 1;
        }
        counts.values().fold(1, |acc, &n| lcm(acc, n))
    }

    /// Split horizon (`EndpointsByNetworkFilter`, pilot/pkg/xds/endpoints/ep_filters.go;
    /// reference B.3), run after subset selection and grouping and before the failover
    /// priorities: for a proxy on `proxy_network`, an endpoint on another network that
    /// has gateways is replaced by that network's gateway(s), one endpoint per gateway
    /// per locality whose weight is the (scaled) weight of the endpoints it stands for,
    /// in the original locality, labelled only `topology.istio.io/network` (istio#49500:
    /// a region failoverPriority does not match it, a network `key=value` does), with
    /// `tlsMode: istio`. Remote endpoints without a sidecar are dropped (cross-network
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
                let gateways = self.gateways_of(&e.network);
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
                    labels: augment_labels(&BTreeMap::new(), "", &Locality::default(), &gw.network),
                    cluster: String::new(),
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
    if let Some(networks) = MeshNetworkView::for_cluster(m)? {
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
    use crate::istiod::endpoints::NETWORK_LABEL;

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
                planned,
                at: format!("test.networks.{net}.gateways[{i}]"),
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
            "gateway endpoints keep only the network label (istio#49500)"
        );
        assert!(gw.istio_mtls);
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
        assert_eq!(err.at, "test.networks.n2.gateways[0]");
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
