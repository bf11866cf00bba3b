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
use crate::spill::Window;

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
    /// Its share's region fails part of its requests and sheds that part of its share
    /// (graded spill); the next admitted region of that region's chain took it.
    Degraded,
    /// The region that took it takes only part of its share for now: back from an
    /// ejection, or a drain ramping.
    Ramping,
}

/// One worker's failure windows of a service's regions, at a time: how much of its
/// share each region keeps under graded spill.
#[derive(Debug, Clone, Copy)]
pub struct SpillView<'a> {
    windows: &'a [Window],
    now_ms: u64,
}

impl<'a> SpillView<'a> {
    /// The windows of a service's regions (slot order) at `now_ms`.
    pub fn new(windows: &'a [Window], now_ms: u64) -> Self {
        Self { windows, now_ms }
    }

    /// No outcomes measured: every region keeps its whole share.
    pub fn none() -> Self {
        Self {
            windows: &[],
            now_ms: 0,
        }
    }

    /// How much of its share `slot` keeps, in thousandths.
    pub fn kept(&self, slot: Slot, config: &HealthConfig) -> u32 {
        self.windows
            .get(slot)
            .map_or(1_000, |w| w.kept_permille(config, self.now_ms))
    }
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
    /// `dice` is a uniformly random number (only used while a region takes part of its
    /// share: ramping back, draining, or shedding under graded spill).
    pub fn decide(
        &self,
        rr: &mut RoundRobin,
        health: &HealthView<'_>,
        config: &HealthConfig,
        now_ms: u64,
        dice: u32,
        spill: SpillView<'_>,
    ) -> Decision {
        let Some(target) = rr.next(&self.targets) else {
            return Decision::Passthrough;
        };
        let primary = target.preference.first().copied().unwrap_or(0);
        // Why `slot` took the share: its own region, or why the primary gave it up.
        let why = |slot: Slot| {
            if slot == primary {
                return RouteReason::Split;
            }
            let record = health.get(primary);
            match record.admission(config, now_ms) {
                Admission::Ejected => RouteReason::Failover,
                _ if record.drain_permille(config, now_ms) < 1_000 => RouteReason::Drained,
                _ if spill.kept(primary, config) < 1_000 => RouteReason::Degraded,
                _ => RouteReason::Failover,
            }
        };
        // The first region that takes part of its share and whose dice said no.
        let mut first_partial = None;
        for &slot in &target.preference {
            let (share, ramping) = match health.get(slot).admission(config, now_ms) {
                Admission::Healthy => (1_000, false),
                Admission::Ramping { permille } => (permille, true),
                Admission::Ejected | Admission::Drained => continue,
            };
            let admitted = share * spill.kept(slot, config) / 1_000;
            let reason = if ramping {
                RouteReason::Ramping
            } else {
                why(slot)
            };
            if admitted >= 1_000 || dice % 1000 < admitted {
                return Decision::Route {
                    slot,
                    primary,
                    reason,
                };
            }
            first_partial.get_or_insert((slot, reason));
        }
        // Only partial regions left and the dice said no to each: one of them still
        // beats none.
        match first_partial {
            Some((slot, reason)) => Decision::Route {
                slot,
                primary,
                reason,
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
