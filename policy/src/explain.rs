//! Why a request went where it went: the opt-in `x-geolb-explain` response header, and
//! the rule that keeps it at sidecars.
//!
//! With `explain` on, every request a sidecar steers (or leaves alone) gets the header on
//! its way back to the calling app: `share=R; region=C; reason=...`. The share is the
//! region the split gave the request to, the region is where it went. Nothing reaches
//! the app that the app's own proxy does not already know, which is why the header
//! exists only at sidecars: at an ingress gateway the caller is the internet.

use std::fmt;

use crate::error::{FieldPath, PolicyErrors, Problem};
use crate::policy::{CompiledPolicy, CompiledService};
use crate::routing::{Decision, RouteReason};
use crate::source::ProxyIdentity;

/// The response header that carries an [`Explanation`].
pub const EXPLAIN_HEADER: &str = "x-geolb-explain";

/// The only Istio node type (`node.id`'s first part) that may explain.
const SIDECAR: &str = "sidecar";

/// Why a request went where it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The region of its share took it.
    Split,
    /// Its share's region is ejected: the next admitted region of that region's chain
    /// took it.
    Failover,
    /// Its share's region is drained by the operator (or its share is moving off).
    Drained,
    /// Its share's region fails part of its requests and sheds that part of its share.
    Degraded,
    /// The region that took it takes only part of its share for now: back from an
    /// ejection, or a drain ramping.
    Ramping,
    /// Every region of the service is ejected: the mesh's own locality failover decides.
    NoHealthyRegion,
    /// geolb did not route it: see [`PassThrough`].
    PassThrough(PassThrough),
}

/// Why geolb left a request to the mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassThrough {
    /// The proxy's source region is unknown (no pin, cluster not in `clusterRegions`,
    /// no usable node locality).
    UnknownSourceRegion,
    /// The request is for a service the policy does not steer.
    NotInPolicy,
}

/// One request's explanation, as the header writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Explanation<'p> {
    /// The region whose share the request was.
    pub share: Option<&'p str>,
    /// The region it went to.
    pub region: Option<&'p str>,
    /// Why.
    pub reason: Reason,
}

impl<'p> Explanation<'p> {
    /// The explanation of `decision`, made for `service` of `policy`.
    pub fn of(policy: &'p CompiledPolicy, service: &CompiledService, decision: Decision) -> Self {
        let name = |slot| service.region_of(slot).map(|r| policy.region_name(r));
        match decision {
            Decision::Route {
                slot,
                primary,
                reason,
            } => Explanation {
                share: name(primary),
                region: name(slot),
                reason: match reason {
                    RouteReason::Split => Reason::Split,
                    RouteReason::Failover => Reason::Failover,
                    RouteReason::Drained => Reason::Drained,
                    RouteReason::Degraded => Reason::Degraded,
                    RouteReason::Ramping => Reason::Ramping,
                },
            },
            Decision::NoHealthyRegion { primary } => Explanation {
                share: name(primary),
                region: None,
                reason: Reason::NoHealthyRegion,
            },
            Decision::Passthrough => Self::pass_through(PassThrough::UnknownSourceRegion),
        }
    }

    /// The explanation of a request geolb left alone.
    pub fn pass_through(why: PassThrough) -> Self {
        Explanation {
            share: None,
            region: None,
            reason: Reason::PassThrough(why),
        }
    }
}

impl fmt::Display for Explanation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(share) = self.share {
            write!(f, "share={share}; ")?;
        }
        if let Some(region) = self.region {
            write!(f, "region={region}; ")?;
        }
        let reason = match self.reason {
            Reason::Split => "split",
            Reason::Failover => "failover",
            Reason::Drained => "drained",
            Reason::Degraded => "degraded",
            Reason::Ramping => "ramping",
            Reason::NoHealthyRegion => "no-healthy-region",
            Reason::PassThrough(PassThrough::UnknownSourceRegion) => {
                "pass-through; cause=unknown-source-region"
            }
            Reason::PassThrough(PassThrough::NotInPolicy) => "pass-through; cause=not-in-policy",
        };
        write!(f, "reason={reason}")
    }
}

impl CompiledPolicy {
    /// Whether responses carry [`EXPLAIN_HEADER`].
    pub fn explains(&self) -> bool {
        self.explain
    }

    /// This policy, if `proxy` may apply it: one with `explain` on is for sidecars only
    /// (a proxy whose `node.id` is not an Istio sidecar's refuses it).
    pub fn fit_for(self, proxy: ProxyIdentity<'_>) -> Result<CompiledPolicy, PolicyErrors> {
        let node_type = proxy.node_type();
        if !self.explain || node_type == Some(SIDECAR) {
            return Ok(self);
        }
        let this = match node_type {
            Some(t) => format!("a {t:?} (node.id {:?})", proxy.node_id.unwrap_or_default()),
            None => "not an Istio sidecar (no node type in node.id)".to_owned(),
        };
        Err(PolicyErrors(vec![
            FieldPath::root()
                .field("explain")
                .error(Problem::ExplainOutsideSidecar(this)),
        ]))
    }
}
