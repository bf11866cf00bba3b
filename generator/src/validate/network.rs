//! VPCs, vSwitches, connections and cluster address plans: malformed CIDRs, vSwitches
//! outside their VPC, ranges that collide once VPCs are connected, load-balancer
//! addresses outside their pool or inside Pod/Service ranges.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use super::Checker;
use crate::addressing::{
    AddressRange, overlaps, parse_cidr, reachable_clusters, vpc_groups, vpcs_in_group,
};
use crate::plan::{Cluster, ClusterRole, Cni};
use crate::source::FieldPath;

/// A parsed range and what it belongs to, for overlap messages.
struct Range {
    path: FieldPath,
    net: IpNet,
    kind: RangeKind,
    what: String,
}

/// What an address range is for: the rules differ (Terway pods live in vSwitches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeKind {
    Pod,
    Service,
    Vpc,
    VSwitch,
}

impl RangeKind {
    fn label(self) -> &'static str {
        match self {
            RangeKind::Pod => "Pod",
            RangeKind::Service => "Service",
            RangeKind::Vpc => "VPC",
            RangeKind::VSwitch => "vSwitch",
        }
    }
}

pub(super) fn check(c: &mut Checker) {
    let vpc_ranges = vpcs(c);
    let vswitch_ranges = vswitches(c, &vpc_ranges);
    connections(c);
    let groups = vpc_groups(c.plan());
    connected_collisions(c, &groups, &vpc_ranges, &vswitch_ranges);
    clusters(c, &groups, &vpc_ranges, &vswitch_ranges);
}

/// The VPCs: names, regions, and their CIDRs parsed (by VPC name).
fn vpcs<'p>(c: &mut Checker<'p>) -> BTreeMap<&'p str, Vec<Range>> {
    let plan = c.plan();
    let root = FieldPath::root();
    let region_names = c.topo.regions();
    let mut vpc_ranges: BTreeMap<&str, Vec<Range>> = BTreeMap::new();
    for (i, vpc) in plan.vpcs.iter().enumerate() {
        let at = root.key("vpcs").index(i);
        c.dns_label(at.key("name"), "VPC", &vpc.name, 63);
        if !c.topo.has_region(&vpc.region) {
            c.unknown(at.key("region"), "region", &vpc.region, &region_names);
        }
        if vpc.cidrs.is_empty() {
            c.error(
                at.key("cidrs"),
                format!("VPC {:?} has no CIDR", vpc.name),
                "list the VPC's address ranges",
            );
        }
        for (j, text) in vpc.cidrs.iter().enumerate() {
            if let Some(net) = cidr(c, at.key("cidrs").index(j), text) {
                vpc_ranges.entry(&vpc.name).or_default().push(Range {
                    path: at.key("cidrs").index(j),
                    net,
                    kind: RangeKind::Vpc,
                    what: format!("{} {} CIDR {net}", RangeKind::Vpc.label(), vpc.name),
                });
            }
        }
    }
    c.unique(
        "VPC",
        plan.vpcs
            .iter()
            .enumerate()
            .map(|(i, v)| (root.key("vpcs").index(i).key("name"), v.name.as_str())),
    );
    vpc_ranges
}

/// The vSwitches: each inside its VPC; their CIDRs parsed (by VPC name).
fn vswitches<'p>(
    c: &mut Checker<'p>,
    vpc_ranges: &BTreeMap<&str, Vec<Range>>,
) -> BTreeMap<&'p str, Vec<Range>> {
    let plan = c.plan();
    let root = FieldPath::root();
    let vpc_names: Vec<&str> = plan.vpcs.iter().map(|v| v.name.as_str()).collect();
    let mut vswitch_ranges: BTreeMap<&str, Vec<Range>> = BTreeMap::new();
    for (i, vs) in plan.vswitches.iter().enumerate() {
        let at = root.key("vswitches").index(i);
        c.dns_label(at.key("name"), "vSwitch", &vs.name, 63);
        let net = cidr(c, at.key("cidr"), &vs.cidr);
        if !vpc_names.contains(&vs.vpc.as_str()) {
            c.unknown(at.key("vpc"), "VPC", &vs.vpc, &vpc_names);
            continue;
        }
        let Some(net) = net else { continue };
        let parents = vpc_ranges
            .get(vs.vpc.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        if !parents.is_empty() && !parents.iter().any(|p| p.net.contains(&net)) {
            let list: Vec<String> = parents.iter().map(|p| p.net.to_string()).collect();
            c.error(
                at.key("cidr"),
                format!("vSwitch {} CIDR {net} is not inside VPC {} ({})", vs.name, vs.vpc, list.join(", ")),
                "a vSwitch takes its addresses from its VPC; pick a range inside one of the VPC's CIDRs",
            );
        }
        vswitch_ranges.entry(&vs.vpc).or_default().push(Range {
            path: at.key("cidr"),
            net,
            kind: RangeKind::VSwitch,
            what: format!(
                "{} {} CIDR {net} (VPC {})",
                RangeKind::VSwitch.label(),
                vs.name,
                vs.vpc
            ),
        });
    }
    c.unique(
        "vSwitch",
        plan.vswitches
            .iter()
            .enumerate()
            .map(|(i, v)| (root.key("vswitches").index(i).key("name"), v.name.as_str())),
    );

    vswitch_ranges
}

/// The connections: each joins two or more known VPCs, once each.
fn connections(c: &mut Checker) {
    let plan = c.plan();
    let root = FieldPath::root();
    let vpc_names: Vec<&str> = plan.vpcs.iter().map(|v| v.name.as_str()).collect();
    for (i, conn) in plan.connections.iter().enumerate() {
        let at = root.key("connections").index(i);
        c.dns_label(at.key("name"), "connection", &conn.name, 63);
        if conn.vpcs.len() < 2 {
            c.error(
                at.key("vpcs"),
                format!("connection {} joins {} VPC(s)", conn.name, conn.vpcs.len()),
                "a connection joins at least two VPCs",
            );
        }
        for (j, v) in conn.vpcs.iter().enumerate() {
            if !vpc_names.contains(&v.as_str()) {
                c.unknown(at.key("vpcs").index(j), "VPC", v, &vpc_names);
            }
        }
        c.unique(
            "VPC in a connection",
            conn.vpcs
                .iter()
                .enumerate()
                .map(|(j, v)| (at.key("vpcs").index(j), v.as_str())),
        );
    }
    c.unique(
        "connection",
        plan.connections.iter().enumerate().map(|(i, v)| {
            (
                root.key("connections").index(i).key("name"),
                v.name.as_str(),
            )
        }),
    );
}

/// Collisions among connected VPCs: VPC CIDRs of different VPCs, and any two vSwitches.
fn connected_collisions(
    c: &mut Checker,
    groups: &BTreeMap<&str, &str>,
    vpc_ranges: &BTreeMap<&str, Vec<Range>>,
    vswitch_ranges: &BTreeMap<&str, Vec<Range>>,
) {
    let vpc_list: Vec<&str> = vpc_ranges.keys().copied().collect();
    for (a_i, a) in vpc_list.iter().enumerate() {
        let group = vpcs_in_group(groups, a);
        for b in vpc_list
            .iter()
            .skip(a_i + 1)
            .filter(|b| group.contains(**b))
        {
            for ra in vpc_ranges.get(a).map(Vec::as_slice).unwrap_or_default() {
                for rb in vpc_ranges.get(b).map(Vec::as_slice).unwrap_or_default() {
                    if overlaps(&ra.net, &rb.net) {
                        collide(
                            c,
                            rb,
                            ra,
                            "the VPCs are connected, so their routes would collide",
                        );
                    }
                }
            }
        }
    }
    let all_vswitches: Vec<(&str, &Range)> = vswitch_ranges
        .iter()
        .flat_map(|(v, rs)| rs.iter().map(move |r| (*v, r)))
        .collect();
    for (i, (va, ra)) in all_vswitches.iter().enumerate() {
        for (vb, rb) in all_vswitches.iter().skip(i + 1) {
            if vpcs_in_group(groups, va).contains(vb) && overlaps(&ra.net, &rb.net) {
                collide(
                    c,
                    rb,
                    ra,
                    "vSwitches of one VPC or of connected VPCs must not overlap",
                );
            }
        }
    }
}

/// Cluster address plans: their own CIDRs, what they can reach, planned LB addresses.
fn clusters(
    c: &mut Checker,
    groups: &BTreeMap<&str, &str>,
    vpc_ranges: &BTreeMap<&str, Vec<Range>>,
    vswitch_ranges: &BTreeMap<&str, Vec<Range>>,
) {
    let plan = c.plan();
    // Pod and Service ranges of every cluster, parsed once.
    let mut own: Vec<Vec<Range>> = Vec::new();
    for (i, cluster) in plan.clusters.iter().enumerate() {
        let at = FieldPath::root().key("clusters").index(i);
        own.push(own_ranges(c, &at, cluster));
        vpc_references(c, &at, cluster);
    }
    for (i, cluster) in plan.clusters.iter().enumerate() {
        // The indexes of the other clusters this one reaches.
        let reach: Vec<usize> = reachable_clusters(&c.topo, groups, cluster)
            .into_iter()
            .filter_map(|other| plan.clusters.iter().position(|x| std::ptr::eq(x, other)))
            .collect();
        reachable_collisions(c, &own, i, &reach);
        vpc_collisions(c, groups, vpc_ranges, vswitch_ranges, &own, i, cluster);
        load_balancer_addresses(c, &own, i, &reach, cluster);
    }
}

/// A cluster's Pod and Service ranges, each parsed and the two kinds disjoint.
fn own_ranges(c: &mut Checker, at: &FieldPath, cluster: &Cluster) -> Vec<Range> {
    let mut ranges = Vec::new();
    if cluster.pod_cidrs.is_empty() {
        c.error(
            at.key("podCidrs"),
            format!("cluster {} has no Pod CIDR", cluster.name),
            "list the cluster's Pod CIDR(s)",
        );
    }
    for (field, kind, list) in [
        ("podCidrs", RangeKind::Pod, &cluster.pod_cidrs),
        ("serviceCidrs", RangeKind::Service, &cluster.service_cidrs),
    ] {
        for (j, text) in list.iter().enumerate() {
            if let Some(net) = cidr(c, at.key(field).index(j), text) {
                ranges.push(Range {
                    path: at.key(field).index(j),
                    net,
                    kind,
                    what: format!("{} CIDR {net} of cluster {}", kind.label(), cluster.name),
                });
            }
        }
    }
    for (x, a) in ranges.iter().enumerate() {
        for b in ranges.iter().skip(x + 1) {
            if overlaps(&a.net, &b.net) {
                collide(
                    c,
                    b,
                    a,
                    "a cluster's Pod and Service CIDRs must be disjoint",
                );
            }
        }
    }
    ranges
}

/// The VPC and vSwitch a cluster names exist and belong together.
fn vpc_references(c: &mut Checker, at: &FieldPath, cluster: &Cluster) {
    let plan = c.plan();
    let vpc_names: Vec<&str> = plan.vpcs.iter().map(|v| v.name.as_str()).collect();
    if let Some(vpc) = &cluster.vpc {
        if !vpc_names.contains(&vpc.as_str()) {
            c.unknown(at.key("vpc"), "VPC", vpc, &vpc_names);
        } else if let Some(v) = plan.vpcs.iter().find(|v| &v.name == vpc)
            && v.region != cluster.region
        {
            c.warning(
                at.key("vpc"),
                format!(
                    "cluster {} is in region {} but VPC {} is in {}",
                    cluster.name, cluster.region, vpc, v.region
                ),
                "a cluster's nodes are in its VPC's region; check both",
            );
        }
    }
    if let Some(vs) = &cluster.vswitch {
        match plan.vswitches.iter().find(|s| &s.name == vs) {
            None => {
                let names: Vec<&str> = plan.vswitches.iter().map(|s| s.name.as_str()).collect();
                c.unknown(at.key("vswitch"), "vSwitch", vs, &names);
            }
            Some(s) if cluster.vpc.as_deref() != Some(s.vpc.as_str()) => c.error(
                at.key("vswitch"),
                format!(
                    "vSwitch {vs} belongs to VPC {}, not to the cluster's VPC {}",
                    s.vpc,
                    cluster.vpc.as_deref().unwrap_or("(none)")
                ),
                "set the cluster's vpc to the vSwitch's VPC, or pick a vSwitch of its VPC",
            ),
            Some(_) => {}
        }
    }
    if cluster.vswitch.is_some() && cluster.vpc.is_none() {
        c.error(
            at.key("vswitch"),
            format!("cluster {} names a vSwitch but no VPC", cluster.name),
            "set vpc too",
        );
    }
}

/// Cluster `i`'s ranges against those of the later clusters it reaches (each pair
/// once): routes between them would collide.
fn reachable_collisions(c: &mut Checker, own: &[Vec<Range>], i: usize, reach: &[usize]) {
    let Some(mine) = own.get(i) else { return };
    for &j in reach.iter().filter(|&&j| j > i) {
        for a in mine {
            for b in own.get(j).map(Vec::as_slice).unwrap_or_default() {
                if overlaps(&a.net, &b.net) {
                    collide(
                        c,
                        b,
                        a,
                        "the clusters reach each other, so their routes would collide",
                    );
                }
            }
        }
    }
}

/// Cluster `i`'s ranges against the VPCs and vSwitches it reaches. Terway pods live
/// in vSwitches, so only its Service ranges are compared with them.
fn vpc_collisions(
    c: &mut Checker,
    groups: &BTreeMap<&str, &str>,
    vpc_ranges: &BTreeMap<&str, Vec<Range>>,
    vswitch_ranges: &BTreeMap<&str, Vec<Range>>,
    own: &[Vec<Range>],
    i: usize,
    cluster: &Cluster,
) {
    let (Some(mine), Some(vpc)) = (own.get(i), cluster.vpc.as_deref()) else {
        return;
    };
    let terway = cluster.cni == Some(Cni::Terway);
    for v in vpcs_in_group(groups, vpc) {
        let ranges = vpc_ranges
            .get(v)
            .into_iter()
            .flatten()
            .chain(vswitch_ranges.get(v).into_iter().flatten());
        for r in ranges {
            for a in mine
                .iter()
                .filter(|a| !(terway && a.kind == RangeKind::Pod))
            {
                if overlaps(&a.net, &r.net) {
                    collide(
                        c,
                        a,
                        r,
                        "Pod and Service CIDRs must not overlap any VPC or vSwitch the cluster reaches",
                    );
                }
            }
        }
    }
}

/// Cluster `i`'s load-balancer pools, and its planned gateway and istiod addresses:
/// inside a pool, outside every Pod and Service range the cluster reaches.
fn load_balancer_addresses(
    c: &mut Checker,
    own: &[Vec<Range>],
    i: usize,
    reach: &[usize],
    cluster: &Cluster,
) {
    let at = FieldPath::root().key("clusters").index(i);
    let pools = load_balancer_pools(c, &at, cluster);
    for (path, what, text) in planned_addresses(c, &at, cluster) {
        let Ok(ip) = IpAddr::from_str(text) else {
            if text.is_empty() || text.contains(char::is_whitespace) {
                c.error(
                    path,
                    format!("{what} address {text:?} is neither an IP address nor a DNS name"),
                    "write an IP address or a DNS name",
                );
            }
            continue;
        };
        if !pools.is_empty() && !pools.iter().any(|(_, _, r)| r.contains(ip)) {
            let list: Vec<String> = pools.iter().map(|(n, t, _)| format!("{n}: {t}")).collect();
            c.error(
                path.clone(),
                format!("{what} address {ip} of cluster {} is outside its load-balancer pools ({})", cluster.name, list.join(", ")),
                "the load balancer can only assign addresses from a pool; widen a pool or pick an address inside one",
            );
        }
        for &j in std::iter::once(&i).chain(reach) {
            for r in own.get(j).map(Vec::as_slice).unwrap_or_default() {
                if r.net.contains(&ip) {
                    c.error(
                        path.clone(),
                        format!("{what} address {ip} of cluster {} lies inside {}", cluster.name, r.what),
                        "load-balancer addresses must come from the node/LB network, not from Pod or Service ranges",
                    );
                }
            }
        }
    }
}

/// A cluster's load-balancer pools, parsed: (pool name, range text, range).
fn load_balancer_pools<'p>(
    c: &mut Checker,
    at: &FieldPath,
    cluster: &'p Cluster,
) -> Vec<(&'p str, &'p str, AddressRange)> {
    let mut pools = Vec::new();
    for (p, pool) in cluster.load_balancer_pools.iter().enumerate() {
        let pat = at.key("loadBalancerPools").index(p);
        c.dns_label(pat.key("name"), "address pool", &pool.name, 63);
        for (k, text) in pool.addresses.iter().enumerate() {
            match AddressRange::parse(text) {
                Ok(r) => pools.push((pool.name.as_str(), text.as_str(), r)),
                Err(e) => c.error(
                    pat.key("addresses").index(k),
                    e,
                    "write a range as 10.0.0.1-10.0.0.9 or a CIDR",
                ),
            }
        }
    }
    pools
}

/// The addresses a cluster's plan gives its load balancers: (field, what, text).
fn planned_addresses<'p>(
    c: &Checker,
    at: &FieldPath,
    cluster: &'p Cluster,
) -> Vec<(FieldPath, &'static str, &'p str)> {
    let mut planned = Vec::new();
    if let Some(gw) = &cluster.east_west_gateway {
        planned.push((
            at.key("eastWestGateway").key("address"),
            "east-west gateway",
            gw.address.as_str(),
        ));
    }
    if let Some(a) = &cluster.ingress_address {
        planned.push((at.key("ingressAddress"), "ingress gateway", a.as_str()));
    }
    if let (Some(a), ClusterRole::Primary) = (&cluster.istiod_address, c.topo.role_of(cluster)) {
        planned.push((at.key("istiodAddress"), "istiod", a.as_str()));
    }
    planned
}

fn cidr(c: &mut Checker, path: FieldPath, text: &str) -> Option<IpNet> {
    match parse_cidr(text) {
        Ok(net) => Some(net),
        Err(e) => {
            c.error(path, e, "write a canonical CIDR: the network address, '/', the prefix length (10.0.0.0/16, fd00::/64)");
            None
        }
    }
}

fn collide(c: &mut Checker, at: &Range, other: &Range, why: &str) {
    c.error(
        at.path.clone(),
        format!(
            "{} overlaps {} (defined at {})",
            at.what, other.what, other.path
        ),
        format!("{why}; pick disjoint ranges"),
    );
}
