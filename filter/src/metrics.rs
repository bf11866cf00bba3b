//! Envoy counters, defined once per configuration. Names carry `;key=value` tags,
//! which Envoy shows as `wasmcustom.geolb.routed;service=…;region=…` in /stats and as
//! labels in /stats/prometheus.
//!
//! Per-service counts are kept in the VM and added to Envoy's counters on the next tick
//! (every 100 ms): one host call per counter per tick instead of one per request.

use std::cell::Cell;

use geolb_policy::{CompiledPolicy, CompiledService, Slot};

use crate::host::Host;

/// Counters about the filter itself.
#[derive(Debug, Clone, Copy)]
pub struct GlobalCounters {
    /// Valid policies applied (once per proxy and update).
    pub policy_accepted: Option<u32>,
    /// Invalid policies refused (updates), kept out (updates Envoy applied without the
    /// canary) or passed through (first policy); once per proxy and update.
    pub policy_rejected: Option<u32>,
    /// Health updates dropped because the shared store failed or stayed contended.
    pub health_store_errors: Option<u32>,
    /// Configurations applied where the node's locality names another region than
    /// the one the proxy routes as (pin or cluster table): once per proxy and update.
    pub source_region_conflicts: Option<u32>,
}

impl GlobalCounters {
    /// Defines the counters.
    pub fn define<H: Host>(host: &H) -> Self {
        Self {
            policy_accepted: host.define_counter("geolb.policy_accepted"),
            policy_rejected: host.define_counter("geolb.policy_rejected"),
            health_store_errors: host.define_counter("geolb.health_store_errors"),
            source_region_conflicts: host.define_counter("geolb.source_region_conflicts"),
        }
    }

    /// Adds one to a counter that may not exist.
    pub fn bump<H: Host>(host: &H, counter: Option<u32>) {
        if let Some(id) = counter {
            host.add(id, 1);
        }
    }
}

/// One Envoy counter with the count not yet added to it.
#[derive(Debug, Clone, Default)]
struct Pending {
    id: Option<u32>,
    count: Cell<u64>,
}

impl Pending {
    fn new(id: Option<u32>) -> Self {
        Self {
            id,
            count: Cell::new(0),
        }
    }
    fn bump(&self) {
        self.count.set(self.count.get().saturating_add(1));
    }
    fn flush<H: Host>(&self, host: &H) {
        let count = self.count.replace(0);
        if let (Some(id), true) = (self.id, count > 0) {
            host.add(id, count);
        }
    }
}

/// Counters of one service, per region slot.
#[derive(Debug, Clone, Default)]
pub struct ServiceCounters {
    routed: Vec<Pending>,
    failures: Vec<Pending>,
    ejections: Vec<Pending>,
    failovers: Vec<Pending>,
    probes: Vec<Pending>,
    probe_failures: Vec<Pending>,
    no_healthy_region: Pending,
    no_source_region: Pending,
    health_store_errors: Pending,
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
    /// Probes sent to the region (services with probes only).
    Probes,
    /// Probes of the region that failed.
    ProbeFailures,
}

impl ServiceCounters {
    /// Defines the counters of `service`.
    pub fn define<H: Host>(host: &H, policy: &CompiledPolicy, service: &CompiledService) -> Self {
        let per_region = |metric: &str| -> Vec<Pending> {
            service
                .regions()
                .iter()
                .map(|region| {
                    Pending::new(host.define_counter(&format!(
                        "geolb.{metric};service={};region={}",
                        service.name(),
                        policy.region_name(*region)
                    )))
                })
                .collect()
        };
        let probed = service.health().probe.is_some();
        Self {
            probes: if probed {
                per_region("probes")
            } else {
                Vec::new()
            },
            probe_failures: if probed {
                per_region("probe_failures")
            } else {
                Vec::new()
            },
            routed: per_region("routed"),
            failures: per_region("failures"),
            ejections: per_region("ejections"),
            failovers: per_region("failovers"),
            no_healthy_region: Pending::new(host.define_counter(&format!(
                "geolb.no_healthy_region;service={}",
                service.name()
            ))),
            no_source_region: Pending::new(host.define_counter(&format!(
                "geolb.no_source_region;service={}",
                service.name()
            ))),
            health_store_errors: Pending::new(host.define_counter("geolb.health_store_errors")),
        }
    }

    /// Counts one for a region.
    pub fn region(&self, counter: RegionCounter, slot: Slot) {
        let all = match counter {
            RegionCounter::Routed => &self.routed,
            RegionCounter::Failures => &self.failures,
            RegionCounter::Ejections => &self.ejections,
            RegionCounter::Failovers => &self.failovers,
            RegionCounter::Probes => &self.probes,
            RegionCounter::ProbeFailures => &self.probe_failures,
        };
        if let Some(pending) = all.get(slot) {
            pending.bump();
        }
    }

    /// Counts one no-healthy-region fallback.
    pub fn no_healthy_region(&self) {
        self.no_healthy_region.bump();
    }

    /// Counts one request left to the mesh because the proxy's region is unknown.
    pub fn no_source_region(&self) {
        self.no_source_region.bump();
    }

    /// Counts one lost health update.
    pub fn health_store_error(&self) {
        self.health_store_errors.bump();
    }

    /// Adds the counts to Envoy's counters.
    pub fn flush<H: Host>(&self, host: &H) {
        for pending in self
            .routed
            .iter()
            .chain(&self.failures)
            .chain(&self.ejections)
            .chain(&self.failovers)
            .chain(&self.probes)
            .chain(&self.probe_failures)
        {
            pending.flush(host);
        }
        self.no_healthy_region.flush(host);
        self.no_source_region.flush(host);
        self.health_store_errors.flush(host);
    }
}
