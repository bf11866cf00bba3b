//! Envoy counters, defined once per configuration. Names carry `;key=value` tags,
//! which Envoy shows as `wasmcustom.geolb.routed;service=…;region=…` in /stats and as
//! labels in /stats/prometheus.

use geolb_policy::{CompiledPolicy, CompiledService, Slot};

use crate::host::Host;

/// Counters about the filter itself.
#[derive(Debug, Clone, Copy)]
pub struct GlobalCounters {
    /// Valid policies applied.
    pub policy_accepted: Option<u32>,
    /// Invalid policies refused (updates) or passed through (first policy).
    pub policy_rejected: Option<u32>,
    /// Health updates dropped because the shared store failed or stayed contended.
    pub health_store_errors: Option<u32>,
}

impl GlobalCounters {
    /// Defines the counters.
    pub fn define<H: Host>(host: &H) -> Self {
        Self {
            policy_accepted: host.define_counter("geolb.policy_accepted"),
            policy_rejected: host.define_counter("geolb.policy_rejected"),
            health_store_errors: host.define_counter("geolb.health_store_errors"),
        }
    }

    /// Adds one to a counter that may not exist.
    pub fn bump<H: Host>(&self, host: &H, counter: Option<u32>) {
        if let Some(id) = counter {
            host.increment(id);
        }
    }
}

/// Counters of one service, per region slot.
#[derive(Debug, Clone, Default)]
pub struct ServiceCounters {
    routed: Vec<Option<u32>>,
    failures: Vec<Option<u32>>,
    ejections: Vec<Option<u32>>,
    failovers: Vec<Option<u32>>,
    no_healthy_region: Option<u32>,
    pub(crate) health_store_errors: Option<u32>,
}

/// Which per-region counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionCounter {
    /// Requests routed to the region.
    Routed,
    /// Requests the region failed.
    Failures,
    /// Times the region was ejected.
    Ejections,
    /// Requests of the region's share sent elsewhere because it was unhealthy.
    Failovers,
}

impl ServiceCounters {
    /// Defines the counters of `service`.
    pub fn define<H: Host>(host: &H, policy: &CompiledPolicy, service: &CompiledService) -> Self {
        let per_region = |metric: &str| -> Vec<Option<u32>> {
            service
                .regions()
                .iter()
                .map(|region| {
                    host.define_counter(&format!(
                        "geolb.{metric};service={};region={}",
                        service.name(),
                        policy.region_name(*region)
                    ))
                })
                .collect()
        };
        Self {
            routed: per_region("routed"),
            failures: per_region("failures"),
            ejections: per_region("ejections"),
            failovers: per_region("failovers"),
            no_healthy_region: host.define_counter(&format!(
                "geolb.no_healthy_region;service={}",
                service.name()
            )),
            health_store_errors: host.define_counter("geolb.health_store_errors"),
        }
    }

    /// Adds one to a region's counter.
    pub fn region<H: Host>(&self, host: &H, counter: RegionCounter, slot: Slot) {
        let ids = match counter {
            RegionCounter::Routed => &self.routed,
            RegionCounter::Failures => &self.failures,
            RegionCounter::Ejections => &self.ejections,
            RegionCounter::Failovers => &self.failovers,
        };
        if let Some(Some(id)) = ids.get(slot) {
            host.increment(*id);
        }
    }

    /// Adds one to the no-healthy-region fallback counter.
    pub fn no_healthy_region<H: Host>(&self, host: &H) {
        if let Some(id) = self.no_healthy_region {
            host.increment(id);
        }
    }
}
