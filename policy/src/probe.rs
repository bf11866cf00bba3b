//! Active probes of a service's regions: what to send, where, when, and what an answer
//! means. The filter only dispatches the calls and hands the answers back.
//!
//! A probe of region R must be answered by R, so it goes through the cluster of R's
//! strict subset, `geolb-probe-<R>`, which selects R's endpoints by their
//! `topology.kubernetes.io/region` label. The prefer-R subset the routes use would not
//! do: when R is down, Envoy's priority failover answers from another region.
//!
//! One proxy runs one prober, whatever its number of worker VMs: the VMs take turns
//! through a lease in shared data ([`crate::store::hold_lease`]) that lapses when its
//! holder stops renewing it (a VM that crashed or went away).

use crate::cluster::OutboundCluster;

/// The endpoint label istiod gives every endpoint from its locality's region (its
/// `AugmentLabels`), which the strict subsets select on.
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";

/// The name of region `region`'s strict subset, used by probes only.
pub fn probe_subset(region: &str) -> String {
    format!("geolb-probe-{region}")
}

/// A service's compiled probe settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeConfig {
    /// Request path.
    pub path: String,
    /// `:authority` of a probe: the service's first host.
    pub authority: String,
    /// Per slot: the cluster of the region's strict subset.
    pub clusters: Vec<String>,
    /// Time between two probes of a region, ms.
    pub interval_ms: u64,
    /// A probe without an answer this long fails, ms (< interval).
    pub timeout_ms: u64,
    /// Status codes that pass, sorted.
    pub expect_statuses: Vec<u16>,
    /// Passing probes in a row that let an ejected region back.
    pub healthy_after: u16,
    /// Failing probes in a row that eject a region.
    pub unhealthy_after: u16,
}

/// Defaults of the optional probe settings.
pub const DEFAULT_INTERVAL_MS: u64 = 5_000;
/// Default probe timeout.
pub const DEFAULT_TIMEOUT_MS: u64 = 1_000;
/// Default passing probes in a row to come back.
pub const DEFAULT_HEALTHY_AFTER: u16 = 2;
/// Default failing probes in a row to eject.
pub const DEFAULT_UNHEALTHY_AFTER: u16 = 3;
/// The filter's tick, which sends the probes, in ms.
pub const TICK_MS: u64 = 100;
/// Shortest interval: one tick.
pub const MIN_INTERVAL_MS: u64 = TICK_MS;
/// Longest interval.
pub const MAX_INTERVAL_MS: u64 = 3_600_000;

impl ProbeConfig {
    /// The strict cluster of each region, in slot order, as istiod names it.
    pub fn clusters_for<'a>(
        port: u16,
        host: &str,
        regions: impl IntoIterator<Item = &'a str>,
    ) -> Vec<String> {
        regions
            .into_iter()
            .map(|region| {
                let subset = probe_subset(region);
                OutboundCluster {
                    port,
                    subset: &subset,
                    host,
                }
                .to_string()
            })
            .collect()
    }

    /// Whether an answer passes: a status among the expected ones. `None` (no
    /// answer: timeout, reset, no healthy endpoint) fails.
    pub fn passes(&self, status: Option<u16>) -> bool {
        status.is_some_and(|s| self.expect_statuses.binary_search(&s).is_ok())
    }

    /// How long a region's last probe result stays evidence: a held region whose
    /// probes stopped (the prober went away, its cluster is missing) returns on its
    /// ejection time alone once this has passed since the last result.
    pub fn evidence_ms(&self) -> u64 {
        self.interval_ms
            .saturating_mul(2)
            .saturating_add(self.timeout_ms)
    }
}

/// When each service's next round of probes is due, for the VM holding the lease.
/// Every region of a service is probed in the same round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// Per service (policy order): next due time, ms; 0 = now.
    next_due_ms: Vec<u64>,
}

impl Schedule {
    /// A schedule with every service due at once.
    pub fn new(services: usize) -> Self {
        Self {
            next_due_ms: vec![0; services],
        }
    }

    /// Whether service `index` (interval `interval_ms`) is due at `now_ms`; if so,
    /// books its next round.
    ///
    /// Rounds keep their cadence on a tick that fires a little early or late: a round
    /// is due from half a tick before its time, and the next is an interval after the
    /// booked time, not after the tick. A tick a whole interval late does not bunch
    /// rounds up: the next is then an interval after this one.
    pub fn take_due(&mut self, index: usize, interval_ms: u64, now_ms: u64) -> bool {
        let Some(next) = self.next_due_ms.get_mut(index) else {
            return false;
        };
        if now_ms.saturating_add(TICK_MS / 2) < *next {
            return false;
        }
        let on_cadence = next.saturating_add(interval_ms);
        *next = if *next != 0 && now_ms < on_cadence {
            on_cadence
        } else {
            now_ms.saturating_add(interval_ms)
        };
        true
    }

    /// Makes every service due again (a VM that just took the lease over).
    pub fn restart(&mut self) {
        self.next_due_ms.iter_mut().for_each(|due| *due = 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ProbeConfig {
        ProbeConfig {
            path: "/healthz".into(),
            authority: "reviews.default.svc.cluster.local".into(),
            clusters: vec![],
            interval_ms: 1_000,
            timeout_ms: 200,
            expect_statuses: vec![200, 204],
            healthy_after: 2,
            unhealthy_after: 3,
        }
    }

    #[test]
    fn only_expected_statuses_pass_and_no_answer_fails() {
        let c = config();
        assert!(c.passes(Some(200)));
        assert!(c.passes(Some(204)));
        assert!(!c.passes(Some(503)));
        assert!(!c.passes(Some(201)));
        assert!(!c.passes(None));
    }

    #[test]
    fn clusters_are_istios_names_of_the_strict_subsets() {
        let clusters = ProbeConfig::clusters_for(
            9080,
            "reviews.default.svc.cluster.local",
            ["cn-hangzhou", "cn-shanghai"],
        );
        assert_eq!(
            clusters,
            [
                "outbound|9080|geolb-probe-cn-hangzhou|reviews.default.svc.cluster.local",
                "outbound|9080|geolb-probe-cn-shanghai|reviews.default.svc.cluster.local",
            ]
        );
    }

    #[test]
    fn a_round_is_due_once_per_interval_and_late_ticks_do_not_bunch_up() {
        let mut s = Schedule::new(2);
        assert!(s.take_due(0, 1_000, 10_000));
        assert!(!s.take_due(0, 1_000, 10_500));
        assert!(s.take_due(0, 1_000, 11_000));
        // A tick 2.5 intervals late: one round, the next an interval later.
        assert!(s.take_due(0, 1_000, 13_500));
        assert!(!s.take_due(0, 1_000, 14_000));
        assert!(s.take_due(1, 1_000, 14_000));
        assert!(s.take_due(0, 1_000, 14_500));
    }

    #[test]
    fn ticks_a_little_off_keep_the_cadence() {
        // 200 ms rounds on ticks that drift: 5 rounds a second, not one per 300 ms.
        let mut s = Schedule::new(1);
        let ticks = [0, 99, 199, 301, 398, 502, 597, 703, 799, 901, 999];
        let rounds = ticks
            .iter()
            .filter(|t| s.take_due(0, 200, 10_000 + **t))
            .count();
        assert_eq!(rounds, 6, "at 0, 199, 398, 597, 799, 999");
        assert!(!s.take_due(2, 1_000, 14_000), "no such service");
        s.restart();
        assert!(s.take_due(0, 1_000, 14_100));
    }
}
