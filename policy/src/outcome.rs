//! What a finished request says about the region it was sent to.
//!
//! Inputs are what Envoy reports after the response (`response.code`,
//! `response.flags`, `upstream.locality.region`); the filter only copies them here.

use crate::flags::ResponseFlags;
use crate::health::HealthConfig;

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
}
