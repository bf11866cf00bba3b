//! Why a policy was refused, with the exact field path
//! (`services[1].distribute["cn-hangzhou"]: weights sum to 90, must be 100`).

use std::fmt;

/// One problem in a policy, located by its field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct PolicyError {
    /// Field path in JavaScript-like notation, e.g. `services[0].failover["cn-hangzhou"][1]`.
    pub path: String,
    /// What is wrong there.
    pub problem: Problem,
}

/// Every problem a policy can have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Not JSON, or not the policy's shape (unknown field, wrong type, missing field).
    #[error("{0}")]
    Malformed(String),
    /// `apiVersion` is not one this build reads.
    #[error("apiVersion {found:?} is not supported; use {expected:?}")]
    UnsupportedVersion {
        /// What the policy says.
        found: String,
        /// What this build reads.
        expected: &'static str,
    },
    /// A list that must hold something is empty.
    #[error("must not be empty")]
    Empty,
    /// A name that is not usable as a region, service name, host or header.
    #[error("{value:?} is not a valid {what}: {why}")]
    InvalidName {
        /// The offending text.
        value: String,
        /// Region, host, header name ...
        what: &'static str,
        /// The rule it breaks.
        why: &'static str,
    },
    /// A route token that breaks the token rules. The value is not repeated: it is
    /// a secret of the mesh, and this message reaches logs.
    #[error("the route token is not valid: {why}")]
    InvalidRouteToken {
        /// The rule it breaks.
        why: &'static str,
    },
    /// The same value twice where each must be unique.
    #[error("{0:?} appears more than once")]
    Duplicate(String),
    /// A region that is not in the policy's `regions`.
    #[error("unknown region {region:?}; known regions: {known}")]
    UnknownRegion {
        /// The name used.
        region: String,
        /// The regions of the policy, comma separated.
        known: String,
    },
    /// A region where the service does not run used as a target.
    #[error("service {service:?} does not run in region {region:?} (it runs in: {runs_in})")]
    NotServed {
        /// The service.
        service: String,
        /// The region named.
        region: String,
        /// Where it runs, comma separated.
        runs_in: String,
    },
    /// A failover chain that names its own region.
    #[error("region {0:?} cannot fail over to itself")]
    FailoverToSelf(String),
    /// A weight outside 1..=100.
    #[error("weight {0} is out of range; each weight must be 1..100")]
    WeightOutOfRange(u64),
    /// Weights that do not add up to 100.
    #[error("weights sum to {0}, must be 100")]
    WeightSum(u64),
    /// A host claimed by two services.
    #[error("host {host:?} is already claimed by service {other:?}")]
    HostClaimed {
        /// The host.
        host: String,
        /// The service that listed it first.
        other: String,
    },
    /// A number outside the range the field allows.
    #[error("{value} is out of range: {why}")]
    OutOfRange {
        /// The value given.
        value: u64,
        /// The allowed range.
        why: &'static str,
    },
    /// A drain that leaves a service no region.
    #[error("drains every region of service {0:?}; at least one must take its traffic")]
    DrainsEveryRegion(String),
    /// `explain` at a proxy that is not a sidecar.
    #[error(
        "is for sidecars only, and this proxy is {0}: at an ingress gateway the header would tell every client the mesh's regions"
    )]
    ExplainOutsideSidecar(String),
    /// An Envoy response flag this build does not know.
    #[error("unknown Envoy response flag {flag:?}; known flags: {known}")]
    UnknownResponseFlag {
        /// The flag given.
        flag: String,
        /// The flags known, comma separated.
        known: String,
    },
}

/// All problems found in one policy. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl PolicyErrors {
    /// The first problem, the one a one-line log names.
    pub fn first(&self) -> Option<&PolicyError> {
        self.0.first()
    }
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut problems = self.0.iter();
        if let Some(first) = problems.next() {
            write!(f, "{first}")?;
        }
        let more = self.0.len().saturating_sub(1);
        if more > 0 {
            write!(f, " (and {more} more:")?;
            for problem in problems {
                write!(f, " {problem};")?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

/// Builds field paths while walking the policy.
#[derive(Debug, Clone, Default)]
pub(crate) struct Path(String);

impl Path {
    pub(crate) fn field(&self, name: &str) -> Path {
        if self.0.is_empty() {
            Path(name.to_owned())
        } else {
            Path(format!("{}.{name}", self.0))
        }
    }
    pub(crate) fn index(&self, index: usize) -> Path {
        Path(format!("{}[{index}]", self.0))
    }
    pub(crate) fn key(&self, key: &str) -> Path {
        Path(format!("{}[{key:?}]", self.0))
    }
    pub(crate) fn error(&self, problem: Problem) -> PolicyError {
        PolicyError {
            path: if self.0.is_empty() {
                "(policy)".to_owned()
            } else {
                self.0.clone()
            },
            problem,
        }
    }
}

/// Renders a serde_path_to_error path in the same notation as [`Path`]; map keys
/// (those below `failover` and `distribute`) are quoted.
pub(crate) fn path_of(serde_path: &serde_path_to_error::Path) -> Path {
    use serde_path_to_error::Segment;
    let mut path = Path::default();
    let mut keyed_depth = 0usize;
    for segment in serde_path.iter() {
        match segment {
            Segment::Seq { index } => {
                path = path.index(*index);
                keyed_depth = 0;
            }
            Segment::Map { key } => {
                if keyed_depth > 0 {
                    path = path.key(key);
                    keyed_depth -= 1;
                } else {
                    path = path.field(key);
                    keyed_depth = match key.as_str() {
                        "failover" | "clusterRegions" => 1,
                        "distribute" => 2,
                        _ => 0,
                    };
                }
            }
            Segment::Enum { variant } => path = path.field(variant),
            Segment::Unknown => path = path.field("?"),
        }
    }
    path
}
