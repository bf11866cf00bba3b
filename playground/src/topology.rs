//! What the topology picture draws: the network plan's clusters grouped by region, and
//! each service's shares and failover order per source region, as the filter's core
//! plans them (`SourcePlan`).

use std::collections::BTreeMap;

use geolb::netplan::{self, ClusterPlan};
use geolb::policy::{PolicyFor, wire_policy};
use geolb::simulate;
use geolb::topology::Topology;
use geolb_policy::policy::{CompiledPolicy, CompiledService};
use geolb_policy::routing::SourcePlan;
use serde::Serialize;

use crate::valid_plan;

/// The picture's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopologyView {
    /// Regions in plan order, each with its clusters.
    pub regions: Vec<RegionView>,
    /// Network IDs, sorted (empty for a single-network mesh).
    pub networks: Vec<String>,
    /// Services in plan order.
    pub services: Vec<ServiceView>,
}

/// One region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionView {
    /// Its name.
    pub name: String,
    /// Whether the plan drains it.
    pub drained: bool,
    /// Its clusters, in plan order.
    pub clusters: Vec<ClusterView>,
}

/// One cluster, from the network plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    /// Cluster name.
    pub name: String,
    /// Istio cluster ID.
    pub cluster_id: String,
    /// Managing mesh.
    pub mesh: String,
    /// `primary` or `remote`.
    pub role: &'static str,
    /// Network ID, if any.
    pub network: Option<String>,
    /// East-west gateway `address:port`, if any.
    pub east_west_gateway: Option<String>,
}

/// One service's routing, as the filter's core plans it for each source region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceView {
    /// `name.namespace`.
    pub name: String,
    /// Regions it runs in.
    pub regions: Vec<String>,
    /// Per source region of the proxies: the shares of its requests, each with the
    /// regions that take it in order while the ones before have failed.
    pub from: BTreeMap<String, Vec<Share>>,
}

/// One share of a source region's requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Share {
    /// Percent of the requests.
    pub weight: u32,
    /// The regions that take it, first choice first.
    pub order: Vec<String>,
}

/// The topology of `text`, a plan that must validate.
pub fn topology(text: &str) -> Result<TopologyView, String> {
    let plan = valid_plan(text)?;
    let topo = Topology::new(&plan);
    let policy = compiled(&topo)?;
    let clusters = netplan::build(&topo).clusters;
    let regions = topo
        .regions()
        .into_iter()
        .map(|name| RegionView {
            name: name.to_owned(),
            drained: plan.regions.iter().any(|r| r.name == name && r.drained),
            clusters: clusters
                .iter()
                .filter(|c| c.region == name)
                .map(cluster)
                .collect(),
        })
        .collect();
    let mut networks: Vec<String> = clusters.iter().filter_map(|c| c.network.clone()).collect();
    networks.sort();
    networks.dedup();
    Ok(TopologyView {
        regions,
        networks,
        services: policy
            .services()
            .iter()
            .map(|s| service(&policy, s))
            .collect(),
    })
}

fn compiled(topo: &Topology<'_>) -> Result<CompiledPolicy, String> {
    // The token changes no route: the simulation's stands in for the real one.
    let wire = wire_policy(topo, PolicyFor::Sidecars, simulate::TOKEN);
    CompiledPolicy::try_from(&wire).map_err(|e| format!("the filter refuses the policy: {e}"))
}

fn cluster(c: &ClusterPlan) -> ClusterView {
    ClusterView {
        name: c.name.clone(),
        cluster_id: c.cluster_id.clone(),
        mesh: c.mesh.clone(),
        role: c.role,
        network: c.network.clone(),
        east_west_gateway: c.east_west_gateway.clone(),
    }
}

fn service(policy: &CompiledPolicy, s: &CompiledService) -> ServiceView {
    let region_of = |slot| {
        s.region_of(slot)
            .map(|r| policy.region_name(r).to_owned())
            .unwrap_or_default()
    };
    let from = policy
        .regions()
        .iter()
        .filter_map(|name| {
            let plan = SourcePlan::new(s, Some(policy.region_id(name)?));
            let shares = plan
                .targets()
                .iter()
                .map(|t| Share {
                    weight: t.weight,
                    order: t.preference.iter().map(|&slot| region_of(slot)).collect(),
                })
                .collect();
            Some((name.clone(), shares))
        })
        .collect();
    ServiceView {
        name: s.name().to_owned(),
        regions: s
            .regions()
            .iter()
            .map(|&r| policy.region_name(r).to_owned())
            .collect(),
        from,
    }
}
