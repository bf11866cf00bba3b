//! Which region a proxy is in: the source region every decision starts from.
//!
//! In a real Istio mesh Envoy's `node.locality` is often empty: istio-agent writes it
//! only from the pod label `istio-locality` or from GCP/AWS/Azure instance metadata
//! (Istio 1.30.3 `pkg/bootstrap/config.go`), so on ACK, on-prem and MetalLB clusters it
//! is absent although istiod knows the locality from the node labels. What every
//! injected proxy carries is `node.metadata.CLUSTER_ID` (the injector's
//! `ISTIO_META_CLUSTER_ID`, `values.global.multiCluster.clusterName`). So the policy
//! carries the mesh's cluster -> region table and the region is, in this order:
//! a pinned `sourceRegion`; the proxy's cluster ID looked up in the table; the node's
//! `locality.region`.

use std::fmt;

use crate::policy::{CompiledPolicy, RegionId};

/// What the proxy tells about itself (read once per configuration, not per request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyIdentity<'a> {
    /// `node.metadata.CLUSTER_ID`, when set.
    pub cluster_id: Option<&'a str>,
    /// `node.locality.region`, when set.
    pub locality_region: Option<&'a str>,
    /// `node.id`, when set: istio-agent writes `<type>~<ip>~<pod>.<namespace>~<domain>`,
    /// the type `sidecar` or `router` (a gateway), among others (Istio 1.30.3
    /// `pkg/model/proxy.go`, `NodeType`).
    pub node_id: Option<&'a str>,
}

impl<'a> ProxyIdentity<'a> {
    /// The Istio node type in `node.id` (`sidecar`, `router`, ...), if it has one.
    pub fn node_type(&self) -> Option<&'a str> {
        let id = self.node_id?;
        let (node_type, _) = id.split_once('~')?;
        Some(node_type).filter(|t| !t.is_empty())
    }
}

/// Where a known source region came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The policy's `sourceRegion`.
    Pinned,
    /// `node.metadata.CLUSTER_ID` found in `clusterRegions`.
    ClusterId,
    /// `node.locality.region`.
    NodeLocality,
}

/// The proxy's region, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRegion {
    /// Requests are routed as from `region`.
    Known {
        /// The region.
        region: RegionId,
        /// Which input named it.
        origin: Origin,
        /// The node's locality names another region than the one chosen: the
        /// table (or the pin) and istio-agent disagree, which an operator must look at.
        locality_disagrees: Option<String>,
    },
    /// No usable region: requests pass through to the mesh's own routing.
    Unknown {
        /// The cluster ID the proxy reported (absent from the table), if any.
        cluster_id: Option<String>,
        /// The node's locality region, when it names no region of the policy.
        locality_region: Option<String>,
    },
}

impl SourceRegion {
    /// The region, if known.
    pub fn region(&self) -> Option<RegionId> {
        match self {
            Self::Known { region, .. } => Some(*region),
            Self::Unknown { .. } => None,
        }
    }
}

impl CompiledPolicy {
    /// Decides the proxy's source region from the pin, the cluster table and the node
    /// locality, in that order (see the module docs).
    pub fn source_region(&self, proxy: ProxyIdentity<'_>) -> SourceRegion {
        let from_table = proxy.cluster_id.and_then(|id| self.cluster_region(id));
        let from_locality = proxy.locality_region.and_then(|r| self.region_id(r));
        let chosen = self
            .pinned_source_region()
            .map(|r| (r, Origin::Pinned))
            .or(from_table.map(|r| (r, Origin::ClusterId)))
            .or(from_locality.map(|r| (r, Origin::NodeLocality)));
        match chosen {
            Some((region, origin)) => SourceRegion::Known {
                region,
                origin,
                locality_disagrees: proxy
                    .locality_region
                    .filter(|named| *named != self.region_name(region))
                    .map(str::to_owned),
            },
            None => SourceRegion::Unknown {
                cluster_id: proxy.cluster_id.map(str::to_owned),
                locality_region: proxy.locality_region.map(str::to_owned),
            },
        }
    }
}

/// The log line of a resolution, naming every input, so an operator can tell a
/// missing table entry from a missing locality.
pub struct Explained<'p> {
    policy: &'p CompiledPolicy,
    resolution: &'p SourceRegion,
}

impl SourceRegion {
    /// A displayable explanation of this resolution against `policy`.
    pub fn explain<'p>(&'p self, policy: &'p CompiledPolicy) -> Explained<'p> {
        Explained {
            policy,
            resolution: self,
        }
    }
}

impl fmt::Display for Explained<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.resolution {
            SourceRegion::Known {
                region,
                origin,
                locality_disagrees,
            } => {
                let name = self.policy.region_name(*region);
                let from = match origin {
                    Origin::Pinned => "the policy's sourceRegion",
                    Origin::ClusterId => "node.metadata.CLUSTER_ID in clusterRegions",
                    Origin::NodeLocality => "node.locality.region",
                };
                write!(f, "source region {name} (from {from})")?;
                if let Some(other) = locality_disagrees {
                    write!(
                        f,
                        "; node.locality.region says {other:?}: check the nodes' \
                         topology.kubernetes.io/region label, the pod's istio-locality \
                         label and the plan's cluster regions"
                    )?;
                }
                Ok(())
            }
            SourceRegion::Unknown {
                cluster_id,
                locality_region,
            } => {
                f.write_str("no source region: ")?;
                match cluster_id {
                    Some(id) => write!(f, "cluster ID {id:?} is not in clusterRegions")?,
                    None => f.write_str("the proxy has no node.metadata.CLUSTER_ID")?,
                }
                match locality_region {
                    Some(r) => write!(f, ", node.locality.region {r:?} is not a policy region")?,
                    None => f.write_str(", and no node.locality.region")?,
                }
                f.write_str(
                    "; requests keep the mesh's default routing (set the cluster's \
                     clusterId in the plan to the mesh's clusterName)",
                )
            }
        }
    }
}
