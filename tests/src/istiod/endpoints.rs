//! Endpoints as istiod sees them (`model.IstioEndpoint`) and the load assignment it
//! builds from them: subset selection on augmented labels, grouping by locality and
//! the locality failover priorities.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde_json::{Value, json};

use super::{Locality, Proxy, Workload};

/// Label keys istiod adds to endpoint and proxy labels (`AugmentLabels`, Istio 1.30.3
/// pilot/pkg/serviceregistry/util/label/label.go).
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
pub const SUBZONE_LABEL: &str = "topology.istio.io/subzone";
pub const CLUSTER_LABEL: &str = "topology.istio.io/cluster";
pub const NETWORK_LABEL: &str = "topology.istio.io/network";

/// `AugmentLabels`: the pod labels plus region, zone, subzone, cluster and network
/// (the network only when no pod label sets it: pod label > namespace > meshNetworks).
/// `kubernetes.io/hostname` is left out: the stand-in has no nodes.
pub fn augment_labels(
    labels: &BTreeMap<String, String>,
    cluster: &str,
    locality: &Locality,
    network: &str,
) -> BTreeMap<String, String> {
    let mut out = labels.clone();
    for (key, value) in [
        (REGION_LABEL, &locality.region),
        (ZONE_LABEL, &locality.zone),
        (SUBZONE_LABEL, &locality.subzone),
    ] {
        if !value.is_empty() {
            out.insert(key.to_string(), value.clone());
        }
    }
    if !cluster.is_empty() {
        out.insert(CLUSTER_LABEL.to_string(), cluster.to_string());
    }
    if !network.is_empty() && out.get(NETWORK_LABEL).is_none_or(String::is_empty) {
        out.insert(NETWORK_LABEL.to_string(), network.to_string());
    }
    out
}

/// The proxy's labels as istiod matches them: its pod labels augmented with the
/// locality istiod knows for it ([`super::agent::istiod_locality`]), its cluster and
/// network (Istio 1.30.3 pilot/pkg/xds/ads.go `setTopologyLabels`).
pub fn proxy_labels(proxy: &Proxy) -> BTreeMap<String, String> {
    augment_labels(
        &proxy.labels,
        &proxy.cluster,
        &super::agent::istiod_locality(proxy),
        &proxy.network,
    )
}

/// One endpoint of a service port, after label augmentation. Multi-network code may
/// replace remote endpoints by their network's gateway (one per gateway and locality,
/// `weight` = how many endpoints it stands for, labels reduced to network + cluster).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IstioEndpoint {
    pub address: SocketAddr,
    pub locality: Locality,
    /// Augmented labels: what subsets and failoverPriority match against.
    pub labels: BTreeMap<String, String>,
    pub cluster: String,
    pub network: String,
    /// `tlsMode: istio` (the pod has a sidecar, or it is a network gateway): the
    /// client originates Istio mTLS to it (auto mTLS).
    pub istio_mtls: bool,
    /// `load_balancing_weight` (1 for a pod).
    pub weight: u32,
}

impl IstioEndpoint {
    /// The endpoint istiod builds for a registry workload.
    pub fn of(w: &Workload) -> IstioEndpoint {
        IstioEndpoint {
            address: w.address,
            locality: w.locality.clone(),
            labels: augment_labels(&w.labels, &w.cluster, &w.locality, &w.network),
            cluster: w.cluster.clone(),
            network: w.network.clone(),
            istio_mtls: w.sidecar,
            weight: 1,
        }
    }

    /// Whether a subset with `labels` selects it (`subsetLabels.SubsetOf(ep.Labels)`,
    /// pilot/pkg/xds/endpoints/endpoint_builder.go). Empty = all.
    pub fn selected_by(&self, subset_labels: &BTreeMap<String, String>) -> bool {
        subset_labels
            .iter()
            .all(|(k, v)| self.labels.get(k) == Some(v))
    }
}

/// `LocalityLbEndpoints` under construction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalityGroup {
    pub locality: Locality,
    pub priority: u32,
    pub endpoints: Vec<IstioEndpoint>,
}

impl LocalityGroup {
    fn weight(&self) -> u32 {
        self.endpoints.iter().map(|e| e.weight).sum()
    }
}

/// Groups endpoints by locality, localities in sorted order (istiod sorts them when it
/// builds the load assignment from its endpoint shards), all at priority 0.
pub fn group_by_locality(endpoints: Vec<IstioEndpoint>) -> Vec<LocalityGroup> {
    let mut groups: BTreeMap<Locality, Vec<IstioEndpoint>> = BTreeMap::new();
    for e in endpoints {
        groups.entry(e.locality.clone()).or_default().push(e);
    }
    groups
        .into_iter()
        .map(|(locality, endpoints)| LocalityGroup {
            locality,
            priority: 0,
            endpoints,
        })
        .collect()
}

/// The locality settings that shape priorities, after istiod's merge.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailoverSettings {
    /// `failover` (region `from` → `to`).
    pub failover: Vec<(String, String)>,
    /// `failoverPriority` entries (`key` or `key=value`).
    pub failover_priority: Vec<String>,
}

/// `ApplyLocalityLoadBalancer` (pilot/pkg/networking/core/loadbalancer/loadbalancer.go)
/// for a cluster whose failover is enabled (outlier detection set and
/// locality LB enabled): failoverPriority label tiers first, then, if `failover` is also
/// set or there is no failoverPriority, the region/zone/subzone tiers (`× 5` combination);
/// priorities compacted to 0..N after each step.
pub fn apply_failover(
    groups: Vec<LocalityGroup>,
    proxy_locality: &Locality,
    proxy_labels: &BTreeMap<String, String>,
    settings: &FailoverSettings,
) -> Vec<LocalityGroup> {
    if settings.failover_priority.is_empty() {
        return apply_locality_failover(groups, proxy_locality, &settings.failover);
    }
    // applyFailoverPriorities: nothing happens for a proxy without labels.
    if proxy_labels.is_empty() {
        return groups;
    }
    let groups = apply_failover_priorities(groups, proxy_labels, &settings.failover_priority);
    if settings.failover.is_empty() {
        groups
    } else {
        apply_locality_failover(groups, proxy_locality, &settings.failover)
    }
}

/// `applyFailoverPriorityPerLocality` + `applyFailoverPriorities`: an endpoint's
/// priority is 0 when it matches every label, else `n - j` for the first label `j` it
/// misses (`key=value` compares with the fixed value, `priorityLabelOverrides`; a bare
/// `key` with the proxy's own value, a label both lack counts as equal). Each locality is
/// split into one group per priority.
fn apply_failover_priorities(
    groups: Vec<LocalityGroup>,
    proxy_labels: &BTreeMap<String, String>,
    failover_priority: &[String],
) -> Vec<LocalityGroup> {
    let labels: Vec<(&str, Option<&str>)> = failover_priority
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (l.as_str(), None),
        })
        .collect();
    let lowest = u32::try_from(labels.len()).unwrap_or(u32::MAX);
    let priority_of = |e: &IstioEndpoint| -> u32 {
        for (j, (key, fixed)) in labels.iter().enumerate() {
            let want = fixed.unwrap_or_else(|| proxy_labels.get(*key).map_or("", String::as_str));
            let have = e.labels.get(*key).map_or("", String::as_str);
            if want != have {
                return lowest - u32::try_from(j).unwrap_or(0);
            }
        }
        0
    };
    let mut out = Vec::new();
    for g in groups {
        let mut by_priority: BTreeMap<u32, Vec<IstioEndpoint>> = BTreeMap::new();
        for e in g.endpoints {
            by_priority.entry(priority_of(&e)).or_default().push(e);
        }
        for (priority, endpoints) in by_priority {
            out.push(LocalityGroup {
                locality: g.locality.clone(),
                priority,
                endpoints,
            });
        }
    }
    compact(out)
}

/// `util.LbPriority`: 0 same region/zone/subzone, 1 same region/zone, 2 same region,
/// 3 another region.
fn lb_priority(proxy: &Locality, endpoint: &Locality) -> u32 {
    match (
        proxy.region == endpoint.region,
        proxy.zone == endpoint.zone,
        proxy.subzone == endpoint.subzone,
    ) {
        (true, true, true) => 0,
        (true, true, false) => 1,
        (true, false, _) => 2,
        (false, _, _) => 3,
    }
}

/// `applyLocalityFailover`: locality tiers relative to the proxy, 4 for another region
/// that is not the `to` of the first `failover` entry from the proxy's region;
/// combined with earlier priorities as `old × 5 + tier`, then compacted.
fn apply_locality_failover(
    groups: Vec<LocalityGroup>,
    proxy: &Locality,
    failover: &[(String, String)],
) -> Vec<LocalityGroup> {
    let rule = failover.iter().find(|(from, _)| *from == proxy.region);
    let groups = groups
        .into_iter()
        .map(|mut g| {
            let mut tier = lb_priority(proxy, &g.locality);
            if tier == 3 && rule.is_some_and(|(_, to)| *to != g.locality.region) {
                tier = 4;
            }
            g.priority = g.priority * 5 + tier;
            g
        })
        .collect();
    compact(groups)
}

/// Envoy wants priorities 0..N without gaps: renumber the used ones in order.
fn compact(mut groups: Vec<LocalityGroup>) -> Vec<LocalityGroup> {
    let mut used: Vec<u32> = groups.iter().map(|g| g.priority).collect();
    used.sort_unstable();
    used.dedup();
    for g in &mut groups {
        g.priority =
            u32::try_from(used.iter().position(|p| *p == g.priority).unwrap_or(0)).unwrap_or(0);
    }
    groups
}

/// The `ClusterLoadAssignment` JSON. Endpoints with `tlsMode: istio` carry it in the
/// transport socket match metadata (`envoy.transport_socket_match`), as istiod writes it.
pub fn load_assignment(cluster_name: &str, groups: &[LocalityGroup]) -> Value {
    let endpoints: Vec<Value> = groups
        .iter()
        .map(|g| {
            let lb_endpoints: Vec<Value> = g
                .endpoints
                .iter()
                .map(|e| {
                    let mut ep = json!({
                        "endpoint": { "address": { "socket_address": {
                            "address": e.address.ip().to_string(),
                            "port_value": e.address.port(),
                        } } },
                        "load_balancing_weight": e.weight,
                    });
                    if e.istio_mtls
                        && let Some(obj) = ep.as_object_mut()
                    {
                        obj.insert(
                            "metadata".into(),
                            json!({ "filter_metadata": {
                                "envoy.transport_socket_match": { "tlsMode": "istio" },
                            } }),
                        );
                    }
                    ep
                })
                .collect();
            json!({
                "locality": locality_json(&g.locality),
                "lb_endpoints": lb_endpoints,
                "load_balancing_weight": g.weight(),
                "priority": g.priority,
            })
        })
        .collect();
    json!({ "cluster_name": cluster_name, "endpoints": endpoints })
}

/// Envoy `core.Locality` JSON (empty parts left out).
pub fn locality_json(l: &Locality) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in [
        ("region", &l.region),
        ("zone", &l.zone),
        ("sub_zone", &l.subzone),
    ] {
        if !v.is_empty() {
            m.insert(k.into(), Value::String(v.clone()));
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(region: &str, zone: &str) -> Locality {
        Locality {
            region: region.into(),
            zone: zone.into(),
            subzone: String::new(),
        }
    }

    fn ep(port: u16, region: &str, zone: &str) -> IstioEndpoint {
        let w = Workload {
            service: "s.ns.svc.cluster.local".into(),
            port: 80,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            labels: BTreeMap::new(),
            cluster: format!("c-{region}"),
            network: String::new(),
            locality: loc(region, zone),
            sidecar: false,
            service_account: "default".into(),
        };
        IstioEndpoint::of(&w)
    }

    fn priorities(groups: &[LocalityGroup]) -> Vec<(String, u32)> {
        let mut v: Vec<(String, u32)> = groups
            .iter()
            .flat_map(|g| {
                g.endpoints
                    .iter()
                    .map(move |e| (e.address.port().to_string(), g.priority))
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn region_tiers_with_failover_rule_use_tier_four_and_compact() {
        let groups = group_by_locality(vec![
            ep(1, "a", "a1"),
            ep(2, "a", "a2"),
            ep(3, "b", "b1"),
            ep(4, "c", "c1"),
        ]);
        let settings = FailoverSettings {
            failover: vec![("a".into(), "c".into())],
            failover_priority: vec![],
        };
        let out = apply_failover(groups, &loc("a", "a1"), &BTreeMap::new(), &settings);
        // raw tiers: 0 (same zone), 2 (same region), 4 (b: not the `to`), 3 (c) → compact.
        assert_eq!(
            priorities(&out),
            vec![
                ("1".into(), 0),
                ("2".into(), 1),
                ("3".into(), 3),
                ("4".into(), 2)
            ]
        );
    }

    #[test]
    fn failover_priority_key_value_form_ignores_the_proxy_value() {
        let groups = group_by_locality(vec![ep(1, "a", "a1"), ep(2, "b", "b1")]);
        let settings = FailoverSettings {
            failover: vec![],
            failover_priority: vec![format!("{REGION_LABEL}=b")],
        };
        let proxy = augment_labels(&BTreeMap::new(), "c-a", &loc("a", "a1"), "");
        let out = apply_failover(groups, &loc("a", "a1"), &proxy, &settings);
        assert_eq!(priorities(&out), vec![("1".into(), 1), ("2".into(), 0)]);
    }

    #[test]
    fn failover_priority_then_region_failover_combine_by_five() {
        // network tier first (key form: the proxy's own network), then regions.
        let mut a = ep(1, "a", "a1");
        a.labels.insert(NETWORK_LABEL.into(), "n1".into());
        let mut b = ep(2, "b", "b1");
        b.labels.insert(NETWORK_LABEL.into(), "n1".into());
        let mut c = ep(3, "a", "a1");
        c.labels.insert(NETWORK_LABEL.into(), "n2".into());
        let settings = FailoverSettings {
            failover: vec![("a".into(), "b".into())],
            failover_priority: vec![NETWORK_LABEL.into()],
        };
        let proxy = augment_labels(&BTreeMap::new(), "c-a", &loc("a", "a1"), "n1");
        let out = apply_failover(
            group_by_locality(vec![a, b, c]),
            &loc("a", "a1"),
            &proxy,
            &settings,
        );
        // raw: a 0*5+0, b 0*5+3, c 1*5+0 → 0, 1, 2.
        assert_eq!(
            priorities(&out),
            vec![("1".into(), 0), ("2".into(), 1), ("3".into(), 2)]
        );
    }

    #[test]
    fn failover_priority_needs_proxy_labels() {
        let groups = group_by_locality(vec![ep(1, "a", "a1"), ep(2, "b", "b1")]);
        let settings = FailoverSettings {
            failover: vec![],
            failover_priority: vec![format!("{REGION_LABEL}=b")],
        };
        let out = apply_failover(groups, &loc("a", "a1"), &BTreeMap::new(), &settings);
        assert_eq!(priorities(&out), vec![("1".into(), 0), ("2".into(), 0)]);
    }
}
