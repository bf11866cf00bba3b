//! Envoy's response flags as the `response.flags` attribute reports them: a leaf that
//! the health settings (which flags count as failures) and the verdicts both read.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_names_match_envoy_bits() {
        assert_eq!(ResponseFlags::bit("UF"), Some(32));
        assert_eq!(ResponseFlags::bit("UH"), Some(2));
        assert_eq!(ResponseFlags::bit("XX"), None);
    }
}
