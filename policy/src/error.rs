//! Why a policy was refused, with the exact field path
//! (`services[1].distribute["cn-hangzhou"]: weights from cn-hangzhou sum to 90 (cn-hangzhou=80, cn-shanghai=10), must be 100`).

use std::fmt;

/// One problem in a policy, located by its field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct PolicyError {
    /// Where: `services[0].failover["cn-hangzhou"][1]`.
    pub path: FieldPath,
    /// What is wrong there.
    pub problem: Problem,
    /// Whether the problem is the map key the path ends in rather than its value.
    pub at_key: bool,
}

impl PolicyError {
    /// What to do about it, for a reader who can change the policy's source.
    pub fn hint(&self) -> String {
        self.problem.hint()
    }
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
    /// A failover rule without regions to fail over to.
    #[error("the failover chain of {from} is empty")]
    EmptyChain {
        /// The region whose chain it is.
        from: String,
    },
    /// A distribution without target regions.
    #[error("the distribution from {from} is empty")]
    EmptyDistribution {
        /// The source region.
        from: String,
    },
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
    #[error("service {service} does not run in region {region} (it runs in: {runs_in})")]
    NotServed {
        /// The service.
        service: String,
        /// The region named.
        region: String,
        /// Where it runs, comma separated.
        runs_in: String,
    },
    /// A failover chain that names its own region.
    #[error("region {region} fails over to itself (service {service})")]
    FailoverToSelf {
        /// The region.
        region: String,
        /// The service whose rule it is.
        service: String,
    },
    /// A weight outside 1..=100.
    #[error("weight {weight} for {from} -> {to} is out of range; each weight must be 1..100")]
    WeightOutOfRange {
        /// The source region.
        from: String,
        /// The target region.
        to: String,
        /// The weight given.
        weight: u64,
    },
    /// Weights that do not add up to 100.
    #[error("weights from {from} sum to {sum} ({}), must be 100", Weights(.weights))]
    WeightSum {
        /// The source region.
        from: String,
        /// Their sum.
        sum: u64,
        /// Each target region's weight, in the policy's order.
        weights: Vec<(String, u64)>,
    },
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

impl Problem {
    /// What to do about it: the help line an editor shows under the message.
    pub fn hint(&self) -> String {
        match self {
            Problem::Malformed(_) => "fix the field's shape; see docs/policy.md".into(),
            Problem::UnsupportedVersion { expected, .. } => format!("use {expected:?}"),
            Problem::Empty => "give at least one".into(),
            Problem::EmptyChain { .. } => {
                "name the regions that take over, in order, or drop the rule".into()
            }
            Problem::EmptyDistribution { .. } => {
                "give target regions with weights summing to 100".into()
            }
            Problem::InvalidName { .. } | Problem::InvalidRouteToken { .. } => {
                "fix the value; docs/policy.md lists the rules".into()
            }
            Problem::Duplicate(_) => "name each once".into(),
            Problem::UnknownRegion { .. } => "fix the name or declare the region".into(),
            Problem::NotServed { .. } => {
                "fail over and distribute only to regions where the service has endpoints".into()
            }
            Problem::FailoverToSelf { .. } => {
                "a region's chain names the other regions that take its traffic".into()
            }
            Problem::WeightOutOfRange { .. } => "drop a target instead of giving it 0".into(),
            Problem::WeightSum { .. } => {
                "make the weights of one source region add up to 100".into()
            }
            Problem::HostClaimed { .. } => "give each host to one service".into(),
            Problem::OutOfRange { .. } => "give a value in the range named".into(),
            Problem::DrainsEveryRegion(_) => "leave one region of the service undrained".into(),
            Problem::ExplainOutsideSidecar(_) => "turn explain off for this proxy".into(),
            Problem::UnknownResponseFlag { .. } => "use one of the flags named".into(),
        }
    }
}

/// Target weights as `cn-hangzhou=90, cn-shanghai=20`.
struct Weights<'a>(&'a [(String, u64)]);

impl fmt::Display for Weights<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (region, weight)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{region}={weight}")?;
        }
        Ok(())
    }
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

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Segment {
    /// A field, by its JSON name (`services`, `distribute`).
    Field(String),
    /// A list element.
    Index(usize),
    /// A map key: a region, an Istio cluster ID.
    Key(String),
}

/// Where a problem is, as the steps from the policy's root, so that a caller that
/// built the policy from another document (the generator, from a plan) maps it back
/// by structure. Prints in JavaScript-like notation:
/// `services[0].failover["cn-hangzhou"][1]`; the root prints `(policy)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct FieldPath(Vec<Segment>);

impl FieldPath {
    /// The policy's root.
    pub fn root() -> FieldPath {
        FieldPath::default()
    }
    /// The steps from the root.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }
    /// The path one step down.
    fn then(&self, segment: Segment) -> FieldPath {
        let mut segments = self.0.clone();
        segments.push(segment);
        FieldPath(segments)
    }
    pub(crate) fn field(&self, name: &str) -> FieldPath {
        self.then(Segment::Field(name.to_owned()))
    }
    pub(crate) fn index(&self, index: usize) -> FieldPath {
        self.then(Segment::Index(index))
    }
    pub(crate) fn key(&self, key: &str) -> FieldPath {
        self.then(Segment::Key(key.to_owned()))
    }
    /// A problem with the value at this path.
    pub(crate) fn error(&self, problem: Problem) -> PolicyError {
        PolicyError {
            path: self.clone(),
            problem,
            at_key: false,
        }
    }
    /// A problem with the map key this path ends in (an unknown region as a key), so
    /// that an editor marks the key, not its value.
    pub(crate) fn key_error(&self, problem: Problem) -> PolicyError {
        PolicyError {
            at_key: matches!(self.0.last(), Some(Segment::Key(_))),
            ..self.error(problem)
        }
    }
    /// A problem with the text at `written`: this path's value, or the key it ends in.
    pub(crate) fn error_in(&self, written: Written, problem: Problem) -> PolicyError {
        match written {
            Written::Value => self.error(problem),
            Written::Key => self.key_error(problem),
        }
    }
}

/// Where a name was written at a path: as the value, or as the map key the path ends in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// `cluster-a: cn-hangzhou`, the region at `clusterRegions.cluster-a`.
    Value,
    /// `cn-shanghai: 10`, the region at `distribution.cn-hangzhou.cn-shanghai`.
    Key,
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(policy)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Field(name) if i == 0 => f.write_str(name)?,
                Segment::Field(name) => write!(f, ".{name}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Key(key) => write!(f, "[{key:?}]")?,
            }
        }
        Ok(())
    }
}

/// A serde_path_to_error path as a [`FieldPath`]; map keys
/// (those below `failover` and `distribute`) are quoted.
pub(crate) fn path_of(serde_path: &serde_path_to_error::Path) -> FieldPath {
    use serde_path_to_error::Segment;
    let mut path = FieldPath::root();
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
