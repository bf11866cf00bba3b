//! Meshes, clusters and networks: control-plane roles, references, and the
//! multi-network rules (every network has an east-west gateway; clusters on
//! different networks can reach one of the other network's gateways).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::str::FromStr;

use super::{Checker, label_value};
use crate::addressing::{parse_cidr, vpc_groups, vpcs_in_group};
use crate::plan::{Cluster, ClusterRole, ControlPlaneMode, Mesh};
use crate::source::FieldPath;
use crate::topology::Topology;

/// Oldest Istio whose `networking.istio.io/v1` APIs the manifests use.
const MIN_ISTIO_MINOR: u32 = 22;

pub(super) fn check(c: &mut Checker) {
    let plan = c.plan();
    let root = FieldPath::root();
    for (i, mesh) in plan.meshes.iter().enumerate() {
        check_mesh(c, &root.key("meshes").index(i), mesh);
    }
    c.unique(
        "mesh",
        plan.meshes
            .iter()
            .enumerate()
            .map(|(i, m)| (root.key("meshes").index(i).key("name"), m.name.as_str())),
    );
    for (i, cluster) in plan.clusters.iter().enumerate() {
        check_cluster(c, &root.key("clusters").index(i), cluster);
    }
    c.unique(
        "cluster",
        plan.clusters
            .iter()
            .enumerate()
            .map(|(i, x)| (root.key("clusters").index(i).key("name"), x.name.as_str())),
    );
    cluster_ids(c);
    remote_istiod_addresses(c);
    multi_network(c);
}

/// One mesh: its names and Istio version, the clusters it discovers, the trust it
/// must describe, a primary where its control plane needs one.
fn check_mesh(c: &mut Checker, at: &FieldPath, mesh: &Mesh) {
    let plan = c.plan();
    let cluster_names: Vec<&str> = plan.clusters.iter().map(|x| x.name.as_str()).collect();
    c.dns_label(at.key("name"), "mesh", &mesh.name, 63);
    if let Some(id) = &mesh.mesh_id {
        c.dns_label(at.key("meshId"), "mesh ID", id, 63);
    }
    if let Some(v) = &mesh.istio_version {
        match istio_minor(v) {
            Some(minor) if minor >= MIN_ISTIO_MINOR => {}
            Some(_) => c.error(
                at.key("istioVersion"),
                format!(
                    "Istio {v} is too old: the manifests use networking.istio.io/v1 (Istio 1.22+)"
                ),
                "target Istio 1.22 or newer (default 1.30)",
            ),
            None => c.error(
                at.key("istioVersion"),
                format!("{v:?} is not an Istio version like \"1.30\""),
                "write major.minor, e.g. \"1.30\"",
            ),
        }
    }
    let members: Vec<&str> = plan
        .clusters
        .iter()
        .filter(|x| c.topo.mesh_of(x).is_some_and(|m| m.name == mesh.name))
        .map(|x| x.name.as_str())
        .collect();
    for (j, d) in mesh.discovers.iter().enumerate() {
        if !cluster_names.contains(&d.as_str()) {
            c.unknown(at.key("discovers").index(j), "cluster", d, &cluster_names);
        } else if members.contains(&d.as_str()) {
            c.error(
                at.key("discovers").index(j),
                format!("mesh {} already manages cluster {d}", mesh.name),
                "list only clusters of other meshes under discovers",
            );
        }
    }
    let primaries = plan
        .clusters
        .iter()
        .filter(|x| members.contains(&x.name.as_str()) && c.topo.role_of(x) == ClusterRole::Primary)
        .count();
    let shares_trust = !mesh.discovers.is_empty()
        || (mesh.control_plane == ControlPlaneMode::MultiPrimary && primaries > 1);
    if shares_trust && mesh.trust.as_deref().is_none_or(|t| t.trim().is_empty()) {
        c.warning(
            at.key("name"),
            format!("mesh {} shares workloads with other control planes but says nothing about its root CA", mesh.name),
            "multi-primary clusters and meshes that discover each other must share one root CA; describe it in trust",
        );
    }
    if mesh.control_plane == ControlPlaneMode::PrimaryRemote && primaries == 0 {
        c.error(
            at.key("controlPlane"),
            format!("primary-remote mesh {} has no primary cluster", mesh.name),
            "give one cluster role: primary",
        );
    }
}

/// One cluster: its names and references (mesh, region, network), its role in its
/// mesh's control plane, its east-west gateway.
fn check_cluster(c: &mut Checker, at: &FieldPath, cluster: &Cluster) {
    let plan = c.plan();
    let mesh_names: Vec<&str> = plan.meshes.iter().map(|m| m.name.as_str()).collect();
    let network_names: Vec<&str> = plan.networks.iter().map(|n| n.name.as_str()).collect();
    c.dns_label(at.key("name"), "cluster", &cluster.name, 63);
    if let Some(id) = &cluster.cluster_id
        && let Err(why) = label_value(id)
    {
        c.error(
            at.key("clusterId"),
            format!("cluster ID {id:?} is not a valid Kubernetes label value: {why}"),
            "Istio puts it in the topology.istio.io/cluster label: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
        );
    }
    match &cluster.mesh {
        Some(m) if !mesh_names.contains(&m.as_str()) => {
            c.unknown(at.key("mesh"), "mesh", m, &mesh_names)
        }
        None if plan.meshes.len() > 1 => {
            c.error(
                at.key("name"),
                format!(
                    "cluster {} does not say which mesh manages it",
                    cluster.name
                ),
                format!("set mesh to one of: {}", mesh_names.join(", ")),
            );
        }
        _ => {}
    }
    if !c.topo.has_region(&cluster.region) {
        c.unknown(
            at.key("region"),
            "region",
            &cluster.region,
            &c.topo.regions(),
        );
    }
    for (field, value) in [("zone", &cluster.zone), ("subzone", &cluster.subzone)] {
        if let Some(v) = value {
            c.dns_label(at.key(field), field, v, 63);
        }
    }
    match &cluster.network {
        Some(n) if !network_names.contains(&n.as_str()) => {
            c.unknown(at.key("network"), "network", n, &network_names)
        }
        None if plan.networks.len() > 1 => {
            c.error(
                at.key("name"),
                format!(
                    "cluster {} does not say which network it is on",
                    cluster.name
                ),
                format!("set network to one of: {}", network_names.join(", ")),
            );
        }
        _ => {}
    }
    let role = c.topo.role_of(cluster);
    let mode = c.topo.mesh_of(cluster).map(|m| m.control_plane);
    match (mode, role) {
        (Some(ControlPlaneMode::MultiPrimary), ClusterRole::Remote) => c.error(
            at.key("role"),
            format!("cluster {} is remote in a multi-primary mesh", cluster.name),
            "in multi-primary every cluster runs istiod; use controlPlane: primary-remote for remote clusters",
        ),
        (Some(ControlPlaneMode::PrimaryRemote), ClusterRole::Remote) if cluster.istiod_address.is_none() => c.error(
            at.key("name"),
            format!("remote cluster {} has no istiodAddress", cluster.name),
            "set istiodAddress to the primary's east-west gateway address (remotePilotAddress)",
        ),
        _ => {}
    }
    if let Some(gw) = &cluster.east_west_gateway {
        if gw.port == Some(0) {
            c.error(
                at.key("eastWestGateway").key("port"),
                "port 0 is not a port",
                "use 15443, the Istio default",
            );
        }
        if gw.address.trim().is_empty() {
            c.error(
                at.key("eastWestGateway").key("address"),
                "the east-west gateway address is empty",
                "write the gateway's load-balancer IP or DNS name",
            );
        }
    }
}

/// Remote clusters should point at an address a primary exposes.
fn remote_istiod_addresses(c: &mut Checker) {
    let plan = c.plan();
    let root = FieldPath::root();
    let exposed: BTreeSet<&str> = plan
        .clusters
        .iter()
        .filter(|x| c.topo.role_of(x) == ClusterRole::Primary)
        .flat_map(|x| {
            x.istiod_address
                .iter()
                .map(String::as_str)
                .chain(x.east_west_gateway.iter().map(|g| g.address.as_str()))
        })
        .collect();
    for (i, cluster) in plan.clusters.iter().enumerate() {
        if let (ClusterRole::Remote, Some(addr)) =
            (c.topo.role_of(cluster), &cluster.istiod_address)
            && !exposed.is_empty()
            && !exposed.contains(addr.as_str())
        {
            let list: Vec<&str> = exposed.iter().copied().collect();
            c.warning(
                    root.key("clusters").index(i).key("istiodAddress"),
                    format!("remote cluster {} uses istiod at {addr}, which no primary cluster exposes ({})", cluster.name, list.join(", ")),
                    "set it to a primary's istiodAddress or east-west gateway address",
                );
        }
    }
}

/// Istio cluster IDs are unique across the plan: istiod keys its registries by them
/// and the filter's cluster table maps each to one region. Two clusters with the same
/// name and no explicit ID are already a duplicate cluster.
fn cluster_ids(c: &mut Checker) {
    let clusters = FieldPath::root().key("clusters");
    let id_path = |i: usize, explicit: bool| {
        let at = clusters.index(i);
        if explicit {
            at.key("clusterId")
        } else {
            at.key("name")
        }
    };
    let mut seen: BTreeMap<&str, (usize, &crate::plan::Cluster)> = BTreeMap::new();
    for (i, cluster) in c.plan().clusters.iter().enumerate() {
        let id = Topology::cluster_id(cluster);
        match seen.get(id) {
            Some((j, first)) if cluster.cluster_id.is_some() || first.cluster_id.is_some() => {
                let first_at = id_path(*j, first.cluster_id.is_some());
                c.error(
                    id_path(i, cluster.cluster_id.is_some()),
                    format!(
                        "clusters {} and {} have the same Istio cluster ID {id:?} (first at {first_at})",
                        first.name, cluster.name
                    ),
                    "give each cluster its own clusterId (its values.global.multiCluster.clusterName): istiod tells clusters apart by it and the filter finds a proxy's region by it",
                );
            }
            Some(_) => {}
            None => {
                seen.insert(id, (i, cluster));
            }
        }
    }
}

/// Every network needs a gateway; a cluster must reach a gateway of each other network.
fn multi_network(c: &mut Checker) {
    if !c.topo.multi_network() {
        return;
    }
    let plan = c.plan();
    let root = FieldPath::root();
    let used: BTreeSet<&str> = plan
        .clusters
        .iter()
        .filter_map(|x| c.topo.network_of(x))
        .collect();
    for network in &used {
        let clusters = c.topo.clusters_in_network(network);
        if clusters.iter().all(|x| x.east_west_gateway.is_none()) {
            let path = plan
                .networks
                .iter()
                .position(|n| n.name == *network)
                .map_or_else(
                    || root.key("networks"),
                    |i| root.key("networks").index(i).key("name"),
                );
            let names: Vec<&str> = clusters.iter().map(|x| x.name.as_str()).collect();
            c.error(
                path,
                format!("network {network} has no east-west gateway (clusters: {})", names.join(", ")),
                "set eastWestGateway {address, port} on at least one of its clusters: other networks reach it only through one",
            );
        }
    }
    for (i, cluster) in plan.clusters.iter().enumerate() {
        let Some(network) = c.topo.network_of(cluster) else {
            c.error(
                root.key("clusters").index(i).key("name"),
                format!(
                    "cluster {} has no network in a multi-network mesh",
                    cluster.name
                ),
                "set network",
            );
            continue;
        };
        if cluster.east_west_gateway.is_none() {
            c.warning(
                root.key("clusters").index(i).key("name"),
                format!("cluster {} on network {network} has no east-west gateway", cluster.name),
                "its services are reachable from other networks only if another cluster of its network exposes them",
            );
        }
    }
    // Gateway paths: a gateway address inside a VPC is reachable only from that VPC's group.
    let groups = vpc_groups(plan);
    let vpc_of_address = |ip: IpAddr| -> Option<&str> {
        plan.vpcs
            .iter()
            .find(|v| {
                v.cidrs
                    .iter()
                    .filter_map(|t| parse_cidr(t).ok())
                    .any(|n| n.contains(&ip))
            })
            .map(|v| v.name.as_str())
    };
    for (i, cluster) in plan.clusters.iter().enumerate() {
        let Some(mine) = c.topo.network_of(cluster) else {
            continue;
        };
        let my_vpcs = cluster
            .vpc
            .as_deref()
            .map(|v| vpcs_in_group(&groups, v))
            .unwrap_or_default();
        for other in used.iter().filter(|n| **n != mine) {
            let gateways: Vec<&str> = c
                .topo
                .clusters_in_network(other)
                .iter()
                .filter_map(|x| x.east_west_gateway.as_ref())
                .map(|g| g.address.as_str())
                .collect();
            if gateways.is_empty() {
                continue; // reported above
            }
            let reachable =
                gateways.iter().any(
                    |g| match IpAddr::from_str(g).ok().and_then(vpc_of_address) {
                        Some(vpc) => my_vpcs.contains(vpc),
                        None => true, // public, or outside any planned VPC: assume routed
                    },
                );
            if !reachable {
                c.error(
                    root.key("clusters").index(i).key("network"),
                    format!("cluster {} (network {mine}) has no path to network {other}: its gateways ({}) sit in VPCs not connected to VPC {}", cluster.name, gateways.join(", "), cluster.vpc.as_deref().unwrap_or("-")),
                    "connect the VPCs (connections) or give the other network a gateway address this cluster can reach",
                );
            }
        }
    }
}

/// `"1.30"` -> 30 (major 1 only).
fn istio_minor(text: &str) -> Option<u32> {
    let mut parts = text.split('.');
    let major = parts.next()?;
    let minor = parts.next()?;
    if major != "1" || parts.next().is_some_and(|p| p.parse::<u32>().is_err()) {
        return None;
    }
    minor.parse().ok()
}

/// Minor version of a mesh's Istio target (default 1.30).
pub(crate) fn target_minor(text: Option<&str>) -> u32 {
    text.and_then(istio_minor).unwrap_or(30)
}
