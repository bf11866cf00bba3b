//! `geolb plan`: the network plan of every cluster — its ranges, the node labels
//! Istio's locality needs, the security-group rules peers need, the remote secrets
//! its control plane needs. For people (a table) and for machines (JSON).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::addressing::{reachable_clusters, vpc_groups};
use crate::plan::{Cluster, ClusterRole, Cni, ControlPlaneMode};
use crate::topology::{DEFAULT_EAST_WEST_PORT, Topology};

/// The whole report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPlan {
    /// One entry per cluster, in plan order.
    pub clusters: Vec<ClusterPlan>,
}

/// One cluster's plan.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPlan {
    /// Cluster name.
    pub name: String,
    /// Istio cluster ID (`multiCluster.clusterName`).
    pub cluster_id: String,
    /// Managing mesh.
    pub mesh: String,
    /// `primary` or `remote`.
    pub role: &'static str,
    /// Region.
    pub region: String,
    /// Network ID, if any.
    pub network: Option<String>,
    /// VPC, if any.
    pub vpc: Option<String>,
    /// vSwitch and its CIDR, if any.
    pub vswitch: Option<String>,
    /// CNI plugin.
    pub cni: &'static str,
    /// Pod CIDRs.
    pub pod_cidrs: Vec<String>,
    /// Service CIDRs.
    pub service_cidrs: Vec<String>,
    /// East-west gateway `address:port`.
    pub east_west_gateway: Option<String>,
    /// istiod address (remotePilotAddress for remote clusters).
    pub istiod_address: Option<String>,
    /// Labels every node of the cluster must carry.
    pub node_labels: BTreeMap<String, String>,
    /// Inbound rules of the cluster's security group.
    pub security_group_rules: Vec<SecurityGroupRule>,
    /// Cluster IDs of the clusters whose remote secret (`istioctl
    /// create-remote-secret --name=<cluster ID>`) goes into this cluster's
    /// istio-system (primaries of multi-primary and primary-remote meshes; a managed
    /// mesh's vendor registers its clusters itself): istiod names a cluster's registry
    /// by the name.
    pub remote_secrets: Vec<String>,
}

/// One inbound security-group rule.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupRule {
    /// Source range to admit.
    pub source: String,
    /// The peer cluster it belongs to.
    pub peer: String,
    /// Why this range (the peer's CNI decides).
    pub reason: String,
}

/// Builds the report of a validated plan.
pub fn build(topo: &Topology<'_>) -> NetworkPlan {
    let plan = topo.plan;
    let groups = vpc_groups(plan);
    let clusters = plan
        .clusters
        .iter()
        .map(|cluster| {
            let mesh = topo.mesh_of(cluster);
            let role = topo.role_of(cluster);
            let mut node_labels = BTreeMap::from([(
                String::from("topology.kubernetes.io/region"),
                cluster.region.clone(),
            )]);
            if let Some(z) = &cluster.zone {
                node_labels.insert(String::from("topology.kubernetes.io/zone"), z.clone());
            }
            if let Some(s) = &cluster.subzone {
                node_labels.insert(String::from("topology.istio.io/subzone"), s.clone());
            }
            let mut rules = Vec::new();
            for peer in reachable_clusters(topo, &groups, cluster) {
                if peer.vpc.is_none() || peer.vpc.is_some() != cluster.vpc.is_some() {
                    continue; // security groups are a VPC matter
                }
                rules.extend(peer_rules(topo, peer));
            }
            let mut remote_secrets = Vec::new();
            // A managed mesh's vendor registers its clusters itself.
            let managed = mesh.is_some_and(|m| m.control_plane == ControlPlaneMode::Managed);
            if role == ClusterRole::Primary && !managed {
                for other in &plan.clusters {
                    let same_mesh = topo.mesh_of(other).map(|m| &m.name) == mesh.map(|m| &m.name);
                    let discovered = mesh.is_some_and(|m| m.discovers.contains(&other.name));
                    if other.name != cluster.name && (same_mesh || discovered) {
                        remote_secrets.push(Topology::cluster_id(other).to_owned());
                    }
                }
            }
            ClusterPlan {
                name: cluster.name.clone(),
                cluster_id: Topology::cluster_id(cluster).to_owned(),
                mesh: mesh.map(|m| m.name.clone()).unwrap_or_default(),
                role: match role {
                    ClusterRole::Primary => "primary",
                    ClusterRole::Remote => "remote",
                },
                region: cluster.region.clone(),
                network: topo.network_of(cluster).map(str::to_owned),
                vpc: cluster.vpc.clone(),
                vswitch: cluster
                    .vswitch
                    .as_ref()
                    .map(|v| match vswitch_cidr(topo, v) {
                        Some(c) => format!("{v} ({c})"),
                        None => v.clone(),
                    }),
                cni: cni_name(cluster),
                pod_cidrs: cluster.pod_cidrs.clone(),
                service_cidrs: cluster.service_cidrs.clone(),
                east_west_gateway: cluster
                    .east_west_gateway
                    .as_ref()
                    .map(|g| format!("{}:{}", g.address, g.port.unwrap_or(DEFAULT_EAST_WEST_PORT))),
                istiod_address: cluster.istiod_address.clone(),
                node_labels,
                security_group_rules: rules,
                remote_secrets,
            }
        })
        .collect();
    NetworkPlan { clusters }
}

fn cni_name(cluster: &Cluster) -> &'static str {
    match cluster.cni {
        Some(Cni::Terway) => "terway",
        Some(Cni::Flannel) | None => "flannel",
    }
}

fn vswitch_cidr<'a>(topo: &Topology<'a>, name: &str) -> Option<&'a str> {
    topo.plan
        .vswitches
        .iter()
        .find(|v| v.name == name)
        .map(|v| v.cidr.as_str())
}

/// What a cluster must admit from `peer`: its Pod CIDRs (Flannel: pod addresses
/// are routed as they are) or its vSwitch CIDR (Terway: pods use vSwitch addresses).
fn peer_rules(topo: &Topology<'_>, peer: &Cluster) -> Vec<SecurityGroupRule> {
    match peer.cni {
        Some(Cni::Terway) => peer
            .vswitch
            .as_deref()
            .and_then(|v| vswitch_cidr(topo, v).map(|c| (v, c)))
            .map(|(v, c)| SecurityGroupRule {
                source: c.to_owned(),
                peer: peer.name.clone(),
                reason: format!("Terway: {}'s pods use vSwitch {v} addresses", peer.name),
            })
            .into_iter()
            .collect(),
        Some(Cni::Flannel) | None => peer
            .pod_cidrs
            .iter()
            .map(|c| SecurityGroupRule {
                source: c.clone(),
                peer: peer.name.clone(),
                reason: format!("Flannel: {}'s Pod CIDR", peer.name),
            })
            .collect(),
    }
}

/// The report as a table for people.
pub fn table(plan: &NetworkPlan) -> String {
    let mut out = String::new();
    for c in &plan.clusters {
        let _ = writeln!(
            out,
            "cluster {}  (mesh {}, {}, region {})",
            c.name, c.mesh, c.role, c.region
        );
        let mut rows: Vec<(&str, String)> = vec![
            ("cluster ID", c.cluster_id.clone()),
            (
                "network",
                c.network.clone().unwrap_or_else(|| String::from("-")),
            ),
            ("vpc", c.vpc.clone().unwrap_or_else(|| String::from("-"))),
            (
                "vswitch",
                c.vswitch.clone().unwrap_or_else(|| String::from("-")),
            ),
            ("cni", c.cni.to_owned()),
            ("pod cidrs", join(&c.pod_cidrs)),
            ("service cidrs", join(&c.service_cidrs)),
            (
                "east-west gateway",
                c.east_west_gateway
                    .clone()
                    .unwrap_or_else(|| String::from("-")),
            ),
            (
                "istiod address",
                c.istiod_address
                    .clone()
                    .unwrap_or_else(|| String::from("-")),
            ),
        ];
        let labels: Vec<String> = c
            .node_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        rows.push(("node labels", labels.join(", ")));
        rows.push(("remote secrets", join(&c.remote_secrets)));
        for (k, v) in rows {
            let _ = writeln!(out, "  {k:<18} {v}");
        }
        if c.security_group_rules.is_empty() {
            let _ = writeln!(out, "  {:<18} -", "security group");
        } else {
            let _ = writeln!(out, "  security group: admit inbound");
            let width = c
                .security_group_rules
                .iter()
                .map(|r| r.source.len())
                .max()
                .unwrap_or(0);
            for r in &c.security_group_rules {
                let _ = writeln!(
                    out,
                    "    {:<width$}  from {}  ({})",
                    r.source, r.peer, r.reason
                );
            }
        }
        out.push('\n');
    }
    out
}

fn join(items: &[String]) -> String {
    if items.is_empty() {
        String::from("-")
    } else {
        items.join(", ")
    }
}
