//! Istio's outbound cluster names, `outbound|PORT|SUBSET|HOST` (istiod builds them in
//! `BuildSubsetKey`, and reads them back in `ParseSubsetKey`, both in Istio's
//! `pilot/pkg/model/service.go`). At an ingress gateway a request's `:authority` is the
//! gateway's own address or external name; the cluster of the route Envoy selected is
//! what still names the mesh service (its HOST), whatever the subset.
//!
//! The parser borrows from the name and allocates nothing.

use std::fmt;

/// Istio's traffic direction of a cluster that sends to a service.
const OUTBOUND: &str = "outbound";

/// A parsed `outbound|PORT|SUBSET|HOST` cluster name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundCluster<'a> {
    /// The service port (istiod writes it in decimal, never 0).
    pub port: u16,
    /// The DestinationRule subset; empty for the cluster of the whole service.
    pub subset: &'a str,
    /// The service's host name as the registry has it, e.g.
    /// `reviews.default.svc.cluster.local`.
    pub host: &'a str,
}

impl<'a> OutboundCluster<'a> {
    /// Parses an Istio outbound cluster name. Anything else is `None`: inbound clusters
    /// (`inbound|9080||`), the SNI form `outbound_.9080_._.host`, Istio's
    /// `PassthroughCluster` / `BlackHoleCluster`, a port that is not canonical decimal
    /// in 1..=65535, an empty host, or a fifth field. Accepted names print back exactly
    /// ([`fmt::Display`]).
    pub fn parse(name: &'a str) -> Option<Self> {
        let mut fields = name.splitn(4, '|');
        let (Some(OUTBOUND), Some(port), Some(subset), Some(host)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return None;
        };
        if host.is_empty() || host.contains('|') {
            return None;
        }
        Some(Self {
            port: canonical_port(port)?,
            subset,
            host,
        })
    }
}

/// A port as istiod prints it (`strconv.Itoa`): decimal digits, no sign, no leading zero.
fn canonical_port(text: &str) -> Option<u16> {
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

impl fmt::Display for OutboundCluster<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{OUTBOUND}|{}|{}|{}", self.port, self.subset, self.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REVIEWS: &str = "reviews.default.svc.cluster.local";

    #[test]
    fn parses_the_clusters_istio_routes_to() {
        let whole = OutboundCluster::parse("outbound|9080||reviews.default.svc.cluster.local");
        assert_eq!(
            whole,
            Some(OutboundCluster {
                port: 9080,
                subset: "",
                host: REVIEWS
            })
        );
        let subset = OutboundCluster::parse(
            "outbound|9080|geolb-cn-shanghai|reviews.default.svc.cluster.local",
        );
        assert_eq!(
            subset,
            Some(OutboundCluster {
                port: 9080,
                subset: "geolb-cn-shanghai",
                host: REVIEWS
            })
        );
    }

    #[test]
    fn refuses_everything_else() {
        for name in [
            "",
            "PassthroughCluster",
            "BlackHoleCluster",
            "InboundPassthroughCluster",
            "inbound|9080||",
            "inbound|9080||reviews.default.svc.cluster.local",
            "outbound_.9080_._.reviews.default.svc.cluster.local",
            "outbound|9080|",
            "outbound|9080||",
            "outbound|9080|v1",
            "outbound||v1|reviews",
            "outbound|0|v1|reviews",
            "outbound|09080|v1|reviews",
            "outbound|+9080|v1|reviews",
            "outbound|-1|v1|reviews",
            "outbound|65536||reviews",
            "outbound|9080||reviews|extra",
            "OUTBOUND|9080||reviews",
            " outbound|9080||reviews",
        ] {
            assert_eq!(OutboundCluster::parse(name), None, "{name:?}");
        }
    }

    #[test]
    fn the_port_range_ends_where_istios_does() {
        assert_eq!(
            OutboundCluster::parse("outbound|65535||h").map(|c| c.port),
            Some(65535)
        );
        assert_eq!(
            OutboundCluster::parse("outbound|1||h").map(|c| c.port),
            Some(1)
        );
    }
}
