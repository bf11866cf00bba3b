//! What a finished request says about the region it was sent to.
//!
//! Inputs are what Envoy reports after the response (`response.code`,
//! `response.flags`, `upstream.locality.region`); the filter only copies them here.

use crate::health::HealthConfig;

/// Envoy's legacy response-flag bit set, as the `response.flags` attribute reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResponseFlags(pub u64);

/// Envoy's response flags: short name (as in access logs) and bit.
pub const RESPONSE_FLAGS: &[(&str, u64)] = &[
    ("LH", 0x1),        // failed local health check
    ("UH", 0x2),        // no healthy upstream
    ("UT", 0x4),        // upstream request timeout
    ("LR", 0x8),        // local reset
    ("UR", 0x10),       // upstream remote reset
    ("UF", 0x20),       // upstream connection failure
    ("UC", 0x40),       // upstream connection termination
    ("UO", 0x80),       // upstream overflow (circuit breaker)
    ("NR", 0x100),      // no route
    ("DI", 0x200),      // delay injected
    ("FI", 0x400),      // fault injected
    ("RL", 0x800),      // rate limited
    ("UAEX", 0x1000),   // unauthorized (ext_authz)
    ("RLSE", 0x2000),   // rate limit service error
    ("DC", 0x4000),     // downstream connection termination
    ("URX", 0x8000),    // upstream retry limit exceeded
    ("SI", 0x10000),    // stream idle timeout
    ("IH", 0x20000),    // invalid envoy request headers
    ("DPE", 0x40000),   // downstream protocol error
    ("UMSDR", 0x80000), // upstream max stream duration reached
    ("UPE", 0x80_0000), // upstream protocol error
];

impl ResponseFlags {
    /// Connect failure, no healthy upstream, upstream reset, connection termination.
    pub const DEFAULT_FAILURES: ResponseFlags = ResponseFlags(0x20 | 0x2 | 0x10 | 0x40);
    /// Outcomes decided by this proxy's own policy or by the client (overflow, no
    /// route, faults, rate limits, authz, client gone): they say nothing about a region.
    pub const LOCAL_DECISIONS: ResponseFlags = ResponseFlags(
        0x80 | 0x100 | 0x200 | 0x400 | 0x800 | 0x1000 | 0x2000 | 0x4000 | 0x20000 | 0x40000,
    );

    /// The bit of a short flag name, if known.
    pub fn bit(name: &str) -> Option<u64> {
        RESPONSE_FLAGS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, bit)| *bit)
    }

    /// Whether any flag of `other` is set here.
    pub fn intersects(self, other: ResponseFlags) -> bool {
        self.0 & other.0 != 0
    }
}

/// The facts of one finished (or failed) request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResponseFacts<'a> {
    /// HTTP status sent to the client, if any.
    pub status: Option<u16>,
    /// Envoy response flags.
    pub flags: ResponseFlags,
    /// Region of the upstream host that answered, if Envoy reached one.
    pub served_region: Option<&'a str>,
}

/// What a request tells about the region it was routed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The region answered.
    Success,
    /// The region failed this request.
    Failure(FailureKind),
    /// Nothing to learn (client went away, local policy decided).
    Ignore,
}

/// Why a request counts as a failure of its region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A failure response flag (connect failure, reset, no healthy upstream ...).
    Flags,
    /// A failure status code.
    Status(u16),
    /// Envoy answered from another region than the one chosen: the chosen region's
    /// endpoints are gone or ejected, and Envoy's priority failover stepped in.
    ServedElsewhere,
}

/// Classifies a finished request routed to `chosen_region`.
pub fn classify(config: &HealthConfig, chosen_region: &str, facts: &ResponseFacts<'_>) -> Verdict {
    if facts.flags.intersects(config.failure_flags) {
        return Verdict::Failure(FailureKind::Flags);
    }
    if facts.flags.intersects(ResponseFlags::LOCAL_DECISIONS) {
        return Verdict::Ignore;
    }
    match facts.status {
        Some(code) if config.failure_status_codes.binary_search(&code).is_ok() => {
            Verdict::Failure(FailureKind::Status(code))
        }
        _ if facts
            .served_region
            .is_some_and(|served| served != chosen_region) =>
        {
            Verdict::Failure(FailureKind::ServedElsewhere)
        }
        Some(_) => Verdict::Success,
        None => Verdict::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(status: Option<u16>, flags: u64, served: Option<&str>) -> ResponseFacts<'_> {
        ResponseFacts {
            status,
            flags: ResponseFlags(flags),
            served_region: served,
        }
    }

    #[test]
    fn classifies_like_outlier_detection_plus_locality() {
        let cfg = HealthConfig::default();
        let cases = [
            (facts(Some(200), 0, Some("a")), Verdict::Success),
            (facts(Some(404), 0, Some("a")), Verdict::Success),
            (facts(Some(500), 0, Some("a")), Verdict::Success),
            (
                facts(Some(503), 0, Some("a")),
                Verdict::Failure(FailureKind::Status(503)),
            ),
            (
                facts(Some(503), 0x20, None),
                Verdict::Failure(FailureKind::Flags),
            ),
            (
                facts(Some(503), 0x2, None),
                Verdict::Failure(FailureKind::Flags),
            ),
            (
                facts(Some(200), 0, Some("b")),
                Verdict::Failure(FailureKind::ServedElsewhere),
            ),
            (facts(Some(503), 0x80, None), Verdict::Ignore),
            (facts(None, 0x4000, Some("a")), Verdict::Ignore),
            (facts(None, 0, None), Verdict::Ignore),
        ];
        for (input, want) in cases {
            assert_eq!(classify(&cfg, "a", &input), want, "{input:?}");
        }
    }

    #[test]
    fn flag_names_match_envoy_bits() {
        assert_eq!(ResponseFlags::bit("UF"), Some(32));
        assert_eq!(ResponseFlags::bit("UH"), Some(2));
        assert_eq!(ResponseFlags::bit("XX"), None);
    }
}
