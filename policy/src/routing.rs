//! The per-request decision: which region a request goes to.
//!
//! Per service and source region a [`SourcePlan`] is built once: the weighted targets,
//! each with its preference list (the target, then its failover chain, then every
//! other region of the service). Per request, smooth weighted round robin picks a
//! target — exact in every window of 100 picks, not only on average — and the first
//! admitted region of its preference list takes the request. So an unhealthy region's
//! share moves down *that region's* chain while the other shares stay put.

use crate::health::{Admission, HealthConfig, HealthView};
use crate::policy::{CompiledService, RegionId, Slot};

/// One weighted target of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Weight (all of a plan's weights sum to 100, or the plan has one target).
    pub weight: u32,
    /// Slots in the order they take this target's share; never empty, no repeats,
    /// every slot of the service appears.
    pub preference: Vec<Slot>,
}

/// What a proxy in one source region does for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePlan {
    targets: Vec<Target>,
}

/// Smooth weighted round-robin state of one plan (per worker; not shared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundRobin {
    current: Vec<i64>,
}

/// The outcome of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send to `slot`; `primary` is the region whose share this is. They differ when
    /// the share failed over.
    Route {
        /// Chosen region's slot.
        slot: Slot,
        /// The slot the share belongs to.
        primary: Slot,
        /// Why that region.
        reason: RouteReason,
    },
    /// Every region is ejected: leave the header unset, the mesh's own locality load
    /// balancing (the route without header) decides.
    NoHealthyRegion {
        /// The slot the share belonged to.
        primary: Slot,
    },
    /// The source region is unknown: leave routing to the mesh.
    Passthrough,
}

/// Why a routed request went to its region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteReason {
    /// Its share's region took it.
    Split,
    /// Its share's region is ejected; the next admitted region of that region's chain
    /// took it.
    Failover,
    /// Its share's region is drained (or its share is moving off); the next admitted
    /// region of that region's chain took it.
    Drained,
    /// The region that took it takes only part of its share for now: back from an
    /// ejection, or a drain ramping.
    Ramping,
}

impl SourcePlan {
    /// Builds the plan of `service` for a proxy in `source` (`None`: unknown region).
    ///
    /// - a distribution for `source`: its weights;
    /// - otherwise, if the service runs in `source`: all of it there;
    /// - otherwise: all of it down `source`'s failover chain.
    pub fn new(service: &CompiledService, source: Option<RegionId>) -> Self {
        let Some(source) = source else {
            return Self {
                targets: Vec::new(),
            };
        };
        let everything = (0..service.regions().len()).collect::<Vec<_>>();
        let preference_of = |first: Option<Slot>, region: RegionId| -> Vec<Slot> {
            let mut order: Vec<Slot> = Vec::with_capacity(everything.len());
            for slot in first
                .into_iter()
                .chain(service.failover_chain(region).iter().copied())
                .chain(everything.iter().copied())
            {
                if !order.contains(&slot) {
                    order.push(slot);
                }
            }
            order
        };
        let targets = match service.distribution(source) {
            Some(weights) => weights
                .iter()
                .filter_map(|&(slot, weight)| {
                    let region = service.region_of(slot)?;
                    Some(Target {
                        weight,
                        preference: preference_of(Some(slot), region),
                    })
                })
                .collect(),
            None => vec![Target {
                weight: 100,
                preference: preference_of(service.slot_of(source), source),
            }],
        };
        Self { targets }
    }

    /// The targets.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// A fresh round-robin state for this plan.
    pub fn round_robin(&self) -> RoundRobin {
        RoundRobin {
            current: vec![0; self.targets.len()],
        }
    }

    /// Decides where one request goes.
    ///
    /// `dice` is a uniformly random number (only used while a region ramps back).
    pub fn decide(
        &self,
        rr: &mut RoundRobin,
        health: &HealthView<'_>,
        config: &HealthConfig,
        now_ms: u64,
        dice: u32,
    ) -> Decision {
        let Some(target) = rr.next(&self.targets) else {
            return Decision::Passthrough;
        };
        let primary = target.preference.first().copied().unwrap_or(0);
        // Why a region after the primary took the share: the primary is drained or
        // draining, or else it is ejected (or ramping and the dice said no).
        let moved_off = || {
            if health.get(primary).drain_permille(config, now_ms) < 1_000 {
                RouteReason::Drained
            } else {
                RouteReason::Failover
            }
        };
        let mut first_ramping = None;
        for &slot in &target.preference {
            match health.get(slot).admission(config, now_ms) {
                Admission::Healthy => {
                    let reason = if slot == primary {
                        RouteReason::Split
                    } else {
                        moved_off()
                    };
                    return Decision::Route {
                        slot,
                        primary,
                        reason,
                    };
                }
                Admission::Ramping { permille } => {
                    if dice % 1000 < permille {
                        return Decision::Route {
                            slot,
                            primary,
                            reason: RouteReason::Ramping,
                        };
                    }
                    first_ramping.get_or_insert(slot);
                }
                Admission::Ejected | Admission::Drained => {}
            }
        }
        // Only ramping regions left and the dice said no to each: a ramping region
        // still beats none.
        match first_ramping {
            Some(slot) => Decision::Route {
                slot,
                primary,
                reason: RouteReason::Ramping,
            },
            None => Decision::NoHealthyRegion { primary },
        }
    }
}

impl RoundRobin {
    /// Smooth weighted round robin (as nginx): every target gains its weight, the
    /// largest wins and pays the total. Deterministic and exact per period.
    fn next<'p>(&mut self, targets: &'p [Target]) -> Option<&'p Target> {
        if self.current.len() != targets.len() {
            self.current = vec![0; targets.len()];
        }
        let total: i64 = targets.iter().map(|t| i64::from(t.weight)).sum();
        let mut best: Option<(usize, i64)> = None;
        for (index, (current, target)) in self.current.iter_mut().zip(targets).enumerate() {
            *current += i64::from(target.weight);
            if best.is_none_or(|(_, value)| *current > value) {
                best = Some((index, *current));
            }
        }
        let (index, _) = best?;
        if let Some(current) = self.current.get_mut(index) {
            *current -= total;
        }
        targets.get(index)
    }
}
