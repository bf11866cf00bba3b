//! Address math shared by validation and the network report: CIDR parsing with
//! useful refusals, address ranges, and which VPCs and clusters can reach each other.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use crate::plan::{Cluster, Plan};
use crate::topology::Topology;

/// Parses a CIDR in canonical form; the error says what is wrong and what was meant.
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let Some((addr, prefix)) = text.split_once('/') else {
        return Err(match IpAddr::from_str(text) {
            Ok(ip) => format!(
                "{text:?} has no prefix length; write {text}/{}",
                if ip.is_ipv4() { 32 } else { 128 }
            ),
            Err(_) => format!("{text:?} is not a CIDR like 10.0.0.0/16 or fd00::/64"),
        });
    };
    let ip = IpAddr::from_str(addr)
        .map_err(|_| format!("{addr:?} in {text:?} is not an IPv4 or IPv6 address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len: u8 = prefix
        .parse()
        .map_err(|_| format!("prefix length {prefix:?} in {text:?} is not a number"))?;
    if len > max {
        return Err(format!(
            "prefix length /{len} in {text:?} is longer than the {max} bits of an {} address",
            if ip.is_ipv4() { "IPv4" } else { "IPv6" }
        ));
    }
    let net = IpNet::new(ip, len).map_err(|e| format!("{text:?}: {e}"))?;
    let canonical = net.trunc();
    if canonical != net {
        return Err(format!(
            "{text:?} has host bits set; the network is {canonical}"
        ));
    }
    if canonical.to_string() != text {
        return Err(format!(
            "{text:?} is not written canonically; write {canonical}"
        ));
    }
    Ok(net)
}

/// An inclusive address range (`10.64.30.71-10.64.30.73`) or a CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    /// First address.
    pub first: IpAddr,
    /// Last address.
    pub last: IpAddr,
}

impl AddressRange {
    /// Parses MetalLB's forms: `a-b` or a CIDR.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some((a, b)) = text.split_once('-') {
            let first = IpAddr::from_str(a.trim())
                .map_err(|_| format!("{a:?} in {text:?} is not an IP address"))?;
            let last = IpAddr::from_str(b.trim())
                .map_err(|_| format!("{b:?} in {text:?} is not an IP address"))?;
            if first.is_ipv4() != last.is_ipv4() {
                return Err(format!("{text:?} mixes IPv4 and IPv6"));
            }
            if first > last {
                return Err(format!("{text:?} ends before it starts"));
            }
            return Ok(Self { first, last });
        }
        let net = parse_cidr(text)?;
        Ok(Self {
            first: net.network(),
            last: net.broadcast(),
        })
    }

    /// Whether `ip` lies in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.first.is_ipv4() && self.first <= ip && ip <= self.last
    }
}

/// Whether two networks share any address. An IPv4-mapped IPv6 network
/// (`::ffff:10.0.0.0/112`) is the IPv4 network it maps, so it overlaps `10.0.0.0/16`.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    let (a, b) = (unmapped(*a), unmapped(*b));
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The IPv4 network an IPv4-mapped IPv6 network (`::ffff:0:0/96` and longer) stands
/// for; any other network unchanged. The one place mapped addresses are normalised.
pub fn unmapped(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        other => other,
    }
}

/// Connected groups of VPCs: VPC name -> the smallest VPC name of its group.
pub fn vpc_groups(plan: &Plan) -> BTreeMap<&str, &str> {
    let mut parent: BTreeMap<&str, &str> = plan
        .vpcs
        .iter()
        .map(|v| (v.name.as_str(), v.name.as_str()))
        .collect();
    fn root<'a>(parent: &BTreeMap<&'a str, &'a str>, mut v: &'a str) -> &'a str {
        while let Some(p) = parent.get(v).copied() {
            if p == v {
                break;
            }
            v = p;
        }
        v
    }
    for connection in &plan.connections {
        let members: Vec<&str> = connection
            .vpcs
            .iter()
            .map(String::as_str)
            .filter(|v| parent.contains_key(v))
            .collect();
        for pair in members.windows(2) {
            if let [a, b] = pair {
                let (ra, rb) = (root(&parent, a), root(&parent, b));
                let (low, high) = if ra <= rb { (ra, rb) } else { (rb, ra) };
                parent.insert(high, low);
            }
        }
    }
    let names: Vec<&str> = parent.keys().copied().collect();
    names.into_iter().map(|v| (v, root(&parent, v))).collect()
}

/// Clusters whose Pod and Service addresses `cluster` can route to: those in its
/// VPC or a connected one, and those on the same mesh network (pods of one network
/// talk directly). Excludes `cluster` itself.
pub fn reachable_clusters<'a>(
    topo: &Topology<'a>,
    groups: &BTreeMap<&str, &str>,
    cluster: &'a Cluster,
) -> Vec<&'a Cluster> {
    let group_of = |c: &Cluster| c.vpc.as_deref().and_then(|v| groups.get(v).copied());
    let mine = group_of(cluster);
    let my_network = topo.network_of(cluster);
    topo.plan
        .clusters
        .iter()
        .filter(|other| other.name != cluster.name)
        .filter(|other| {
            (mine.is_some() && group_of(other) == mine)
                || (my_network.is_some() && topo.network_of(other) == my_network)
        })
        .collect()
}

/// VPC names in the same connected group as `vpc` (including itself).
pub fn vpcs_in_group<'a>(groups: &BTreeMap<&'a str, &'a str>, vpc: &str) -> BTreeSet<&'a str> {
    let Some(group) = groups.get(vpc).copied() else {
        return BTreeSet::new();
    };
    groups
        .iter()
        .filter(|(_, g)| **g == group)
        .map(|(v, _)| *v)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_canonical_only() {
        let table: &[(&str, Result<&str, &str>)] = &[
            ("10.0.0.0/8", Ok("10.0.0.0/8")),
            ("fd00::/64", Ok("fd00::/64")),
            (
                "10.0.0.1/8",
                Err("host bits set; the network is 10.0.0.0/8"),
            ),
            ("10.0.0.0/33", Err("longer than the 32 bits of an IPv4")),
            ("fd00::/129", Err("longer than the 128 bits of an IPv6")),
            ("10.0.0.0", Err("no prefix length; write 10.0.0.0/32")),
            ("10.0.0/8", Err("is not an IPv4 or IPv6 address")),
            (
                "fd00:0::/64",
                Err("not written canonically; write fd00::/64"),
            ),
            ("10.0.0.0/x", Err("is not a number")),
            ("banana", Err("is not a CIDR")),
        ];
        for (text, want) in table {
            match (parse_cidr(text), want) {
                (Ok(net), Ok(w)) => assert_eq!(net.to_string(), *w, "{text}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{text}: {e}"),
                (got, _) => panic!("{text}: unexpected {got:?}"),
            }
        }
    }

    #[test]
    fn ranges_and_overlaps() {
        let r = AddressRange::parse("10.64.30.71-10.64.30.73").unwrap();
        assert!(r.contains("10.64.30.72".parse().unwrap()));
        assert!(!r.contains("10.64.30.74".parse().unwrap()));
        assert!(AddressRange::parse("10.0.0.9-10.0.0.1").is_err());
        assert!(AddressRange::parse("10.0.0.1-fd00::1").is_err());
        let a: IpNet = "10.0.0.0/8".parse().unwrap();
        let b: IpNet = "10.1.0.0/16".parse().unwrap();
        let c: IpNet = "11.0.0.0/8".parse().unwrap();
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(overlaps(&a, &b) && overlaps(&b, &a));
        assert!(!overlaps(&a, &c) && !overlaps(&a, &v6));
        let mapped: IpNet = "::ffff:10.0.0.0/112".parse().unwrap();
        let pods: IpNet = "10.0.0.0/16".parse().unwrap();
        assert!(overlaps(&mapped, &pods) && overlaps(&pods, &mapped));
        assert!(!overlaps(&mapped, &c));
        assert_eq!(unmapped(mapped), pods);
    }
}
