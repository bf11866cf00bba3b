//! Facts derived from a plan that validation, rendering and the network report all
//! need: which mesh and network a cluster is in, where a service runs, whether the
//! mesh spans several networks. Lookups tolerate unknown references (validation
//! reports those); rendering only runs on plans without errors.

use std::collections::{BTreeMap, BTreeSet};

use crate::plan::{Cluster, ClusterRole, ControlPlaneMode, Mesh, Plan, Service};

/// Port of an east-west gateway when the plan names none (Istio's default).
pub const DEFAULT_EAST_WEST_PORT: u16 = 15443;

/// Read-only view of a plan with its name indexes.
#[derive(Debug)]
pub struct Topology<'a> {
    /// The plan.
    pub plan: &'a Plan,
    clusters: BTreeMap<&'a str, &'a Cluster>,
    meshes: BTreeMap<&'a str, &'a Mesh>,
    region_order: BTreeMap<&'a str, usize>,
}

impl<'a> Topology<'a> {
    /// Indexes `plan` (first occurrence wins for duplicate names).
    pub fn new(plan: &'a Plan) -> Self {
        let mut clusters = BTreeMap::new();
        for c in &plan.clusters {
            clusters.entry(c.name.as_str()).or_insert(c);
        }
        let mut meshes = BTreeMap::new();
        for m in &plan.meshes {
            meshes.entry(m.name.as_str()).or_insert(m);
        }
        let mut region_order = BTreeMap::new();
        for (i, r) in plan.regions.iter().enumerate() {
            region_order.entry(r.name.as_str()).or_insert(i);
        }
        Self {
            plan,
            clusters,
            meshes,
            region_order,
        }
    }

    /// A cluster by name.
    pub fn cluster(&self, name: &str) -> Option<&'a Cluster> {
        self.clusters.get(name).copied()
    }

    /// Whether a region is declared.
    pub fn has_region(&self, name: &str) -> bool {
        self.region_order.contains_key(name)
    }

    /// Region names in plan order.
    pub fn regions(&self) -> Vec<&'a str> {
        self.plan.regions.iter().map(|r| r.name.as_str()).collect()
    }

    /// The mesh managing a cluster: the named one, or the only one.
    pub fn mesh_of(&self, cluster: &Cluster) -> Option<&'a Mesh> {
        match &cluster.mesh {
            Some(name) => self.meshes.get(name.as_str()).copied(),
            None if self.plan.meshes.len() == 1 => self.plan.meshes.first(),
            None => None,
        }
    }

    /// A mesh by name.
    pub fn mesh(&self, name: &str) -> Option<&'a Mesh> {
        self.meshes.get(name).copied()
    }

    /// The cluster's role: explicit, else `remote` in managed meshes and `primary` otherwise.
    pub fn role_of(&self, cluster: &Cluster) -> ClusterRole {
        cluster
            .role
            .unwrap_or_else(|| match self.mesh_of(cluster).map(|m| m.control_plane) {
                Some(ControlPlaneMode::Managed) => ClusterRole::Remote,
                _ => ClusterRole::Primary,
            })
    }

    /// The mesh ID (`values.global.meshID`) of the cluster's mesh: explicit, else the
    /// mesh's name; empty when the cluster names no known mesh.
    pub fn mesh_id_of(&self, cluster: &Cluster) -> String {
        self.mesh_of(cluster)
            .map(|m| m.mesh_id.clone().unwrap_or_else(|| m.name.clone()))
            .unwrap_or_default()
    }

    /// The cluster's Istio cluster ID (`multiCluster.clusterName`): explicit, else its name.
    pub fn cluster_id(cluster: &Cluster) -> &str {
        cluster.cluster_id.as_deref().unwrap_or(&cluster.name)
    }

    /// Whether the cluster's control plane reads Istio configuration from the cluster's
    /// own API server: every cluster of a multi-primary mesh, the primaries of a
    /// primary-remote mesh (remotes are read for endpoints only); never in a managed
    /// mesh, whose vendor control plane has its own API server.
    pub fn reads_istio_config(&self, cluster: &Cluster) -> bool {
        match self.mesh_of(cluster).map(|m| m.control_plane) {
            Some(ControlPlaneMode::MultiPrimary) => true,
            Some(ControlPlaneMode::PrimaryRemote) => self.role_of(cluster) == ClusterRole::Primary,
            Some(ControlPlaneMode::Managed) | None => false,
        }
    }

    /// The cluster IDs of the primaries whose istiod manages a remote cluster: those of
    /// its mesh exposing the `istiodAddress` it uses, else every primary of its mesh.
    pub fn control_plane_clusters(&self, remote: &Cluster) -> Vec<&'a str> {
        let mesh = self.mesh_of(remote).map(|m| m.name.as_str());
        let primaries: Vec<&'a Cluster> = self
            .plan
            .clusters
            .iter()
            .filter(|c| {
                self.role_of(c) == ClusterRole::Primary
                    && self.mesh_of(c).map(|m| m.name.as_str()) == mesh
            })
            .collect();
        let serving: Vec<&'a Cluster> = primaries
            .iter()
            .copied()
            .filter(|p| {
                remote.istiod_address.as_deref().is_some_and(|addr| {
                    p.istiod_address.as_deref() == Some(addr)
                        || p.east_west_gateway
                            .as_ref()
                            .is_some_and(|g| g.address == addr)
                })
            })
            .collect();
        let chosen = if serving.is_empty() {
            primaries
        } else {
            serving
        };
        chosen.into_iter().map(Self::cluster_id).collect()
    }

    /// The cluster's network: explicit, else the only declared one, else none.
    pub fn network_of(&self, cluster: &'a Cluster) -> Option<&'a str> {
        match &cluster.network {
            Some(n) => Some(n.as_str()),
            None if self.plan.networks.len() == 1 => {
                self.plan.networks.first().map(|n| n.name.as_str())
            }
            None => None,
        }
    }

    /// Whether clusters sit on more than one network (east-west gateways needed).
    pub fn multi_network(&self) -> bool {
        let networks: BTreeSet<Option<&str>> = self
            .plan
            .clusters
            .iter()
            .map(|c| self.network_of(c))
            .collect();
        networks.len() > 1
    }

    /// Clusters of a network, in plan order.
    pub fn clusters_in_network(&self, network: &str) -> Vec<&'a Cluster> {
        self.plan
            .clusters
            .iter()
            .filter(|c| self.network_of(c) == Some(network))
            .collect()
    }

    /// Clusters where a service runs (all versions), in plan order, deduplicated.
    pub fn service_clusters(&self, service: &'a Service) -> Vec<&'a str> {
        let mut seen = BTreeSet::new();
        service
            .clusters
            .iter()
            .chain(service.versions.iter().flat_map(|v| v.clusters.iter()))
            .map(String::as_str)
            .filter(|c| seen.insert(*c))
            .collect()
    }

    /// Regions where a service runs, in the plan's region order.
    pub fn service_regions(&self, service: &'a Service) -> Vec<&'a str> {
        let set: BTreeSet<&str> = self
            .service_clusters(service)
            .iter()
            .filter_map(|c| self.cluster(c))
            .map(|c| c.region.as_str())
            .collect();
        let mut regions: Vec<&str> = set.into_iter().filter(|r| self.has_region(r)).collect();
        regions.sort_by_key(|r| self.region_order.get(r).copied().unwrap_or(usize::MAX));
        regions
    }

    /// Networks the clusters of a region are on.
    pub fn region_networks(&self, region: &str) -> BTreeSet<&'a str> {
        self.plan
            .clusters
            .iter()
            .filter(|c| c.region == region)
            .filter_map(|c| self.network_of(c))
            .collect()
    }

    /// Regions of the clusters of a network.
    pub fn network_regions(&self, network: &str) -> BTreeSet<&'a str> {
        self.clusters_in_network(network)
            .iter()
            .map(|c| c.region.as_str())
            .collect()
    }

    /// The Kubernetes FQDN of a service.
    pub fn service_host(service: &Service) -> String {
        format!("{}.{}.svc.cluster.local", service.name, service.namespace)
    }

    /// Looks a service up by `name` or `name.namespace`.
    pub fn service(&self, reference: &str) -> Option<&'a Service> {
        let mut matches =
            self.plan.services.iter().filter(|s| {
                s.name == reference || format!("{}.{}", s.name, s.namespace) == reference
            });
        let first = matches.next()?;
        if matches.next().is_some() {
            None
        } else {
            Some(first)
        }
    }
}
