//! Region health: an outlier-detection style state machine per (service, region),
//! stored as a fixed-size record so all worker VMs can share it through the host's
//! shared data (see [`crate::store`]).
//!
//! A region is ejected after `consecutive_failures` failures in a row, for
//! `base_ejection_time` times the number of ejections in a row (capped at
//! `max_ejection_time`). When the ejection ends its share ramps back over
//! `recovery_ramp`; a failure during the ramp ejects it again at once, while an answer
//! from another region during the ramp starts the ramp over (see
//! [`RegionHealth::record_served_elsewhere`]). Each `base_ejection_time` without an
//! ejection takes one off the multiplier, as Envoy does.
//!
//! With active probes ([`crate::probe`]), `unhealthy_after` failing probes in a row
//! eject a region too, and an ejected region stays out after its ejection time until
//! `healthy_after` probes in a row pass: no user request is the first to find out it
//! is still dead. The hold needs fresh evidence: when no probe result came for
//! [`ProbeConfig::evidence_ms`] (the prober went away), the region returns on time.

use crate::flags::ResponseFlags;
use crate::hash::fnv1a;
use crate::probe::ProbeConfig;

/// Compiled, validated health settings of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    /// Failures in a row that eject a region (>= 1).
    pub consecutive_failures: u32,
    /// Length of the first ejection, in ms (>= 1).
    pub base_ejection_ms: u64,
    /// Longest ejection, in ms (>= base).
    pub max_ejection_ms: u64,
    /// Time over which a returning region gets its share back, in ms (0 = at once).
    pub recovery_ramp_ms: u64,
    /// Time over which a drained region's share moves off, and comes back when the
    /// drain is lifted, in ms (0 = at once).
    pub drain_ramp_ms: u64,
    /// Window of the graded spill, in ms (0 = off: a region is either ejected or takes
    /// its whole share).
    pub spill_window_ms: u64,
    /// Response codes that count as failures, sorted.
    pub failure_status_codes: Vec<u16>,
    /// Response flags that count as failures whatever the code.
    pub failure_flags: ResponseFlags,
    /// Active probes, when the service has them.
    pub probe: Option<ProbeConfig>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection_ms: 30_000,
            max_ejection_ms: 300_000,
            recovery_ramp_ms: 10_000,
            drain_ramp_ms: 60_000,
            spill_window_ms: 10_000,
            failure_status_codes: vec![502, 503, 504],
            failure_flags: ResponseFlags::DEFAULT_FAILURES,
            probe: None,
        }
    }
}

/// How much traffic a region may take right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Its whole share.
    Healthy,
    /// Just back from an ejection: this many thousandths of its share.
    Ramping {
        /// 1..=999.
        permille: u32,
    },
    /// None: ejected.
    Ejected,
    /// None: the operator drained it.
    Drained,
}

/// The health of one region of one service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegionHealth {
    /// Failures since the last success or ejection.
    pub consecutive_failures: u32,
    /// Ejection multiplier: ejections in a row, decaying while healthy.
    pub ejections: u32,
    /// End of the latest ejection (ms since the epoch; 0 = never ejected).
    pub ejected_until_ms: u64,
    /// Time from which the multiplier decays.
    pub decay_from_ms: u64,
    /// The policy drains the region (the operator's mark, as this proxy applied it).
    pub drained: bool,
    /// When this proxy saw the mark change (ms since the epoch): the share moves over
    /// `drain_ramp` from then. 0: it has been this way since the proxy first served
    /// the service, so there is nothing to ramp.
    pub drain_changed_ms: u64,
    /// Failing probes since the last passing one.
    pub probe_failures: u16,
    /// Passing probes since the last failing one or the last ejection.
    pub probe_successes: u16,
    /// Ejected while probed: stays out until `healthy_after` probes pass.
    pub awaiting_probes: bool,
    /// When the last probe result came (ms since the epoch; 0 = never).
    pub last_probe_ms: u64,
}

/// Bytes of one encoded [`RegionHealth`].
pub const RECORD_LEN: usize = 52;
/// Format tag of an encoded health table; bump when the encoding changes.
const TABLE_FORMAT: u8 = 4;
/// Header bytes of an encoded table: format, record count (u16 LE), layout (u64 LE).
const HEADER_LEN: usize = 11;

/// What a service's health table must look like: how many slots, and which regions
/// they stand for (a hash of the region names in slot order). A table of another shape
/// was written for other regions and reads as "all healthy", so a policy update that
/// keeps a service's regions keeps its health, and one that changes them starts clean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableShape {
    /// Number of regions (slots).
    pub slots: usize,
    /// Hash of the region names in slot order.
    pub layout: u64,
}

impl TableShape {
    /// The shape of a table for these region names, in slot order.
    pub fn of<'a>(regions: impl IntoIterator<Item = &'a str>) -> Self {
        let mut slots = 0;
        let mut bytes = Vec::new();
        for name in regions {
            slots += 1;
            bytes.extend_from_slice(name.as_bytes());
            bytes.push(0);
        }
        Self {
            slots,
            layout: fnv1a(&bytes),
        }
    }

    /// Whether `bytes` is an encoded table of this shape.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        let count = bytes
            .get(1..3)
            .and_then(|c| c.try_into().ok())
            .map(u16::from_le_bytes);
        let layout = bytes
            .get(3..HEADER_LEN)
            .and_then(|c| c.try_into().ok())
            .map(u64::from_le_bytes);
        bytes.len() == HEADER_LEN + self.slots * RECORD_LEN
            && bytes.first() == Some(&TABLE_FORMAT)
            && count.map(usize::from) == Some(self.slots)
            && layout == Some(self.layout)
    }
}
/// The multiplier stops growing here (ejections are capped by `max_ejection_ms` anyway).
const MAX_MULTIPLIER: u32 = 1_000;

/// What recording an outcome did, for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing worth counting.
    None,
    /// The region was ejected until the given time.
    Ejected {
        /// End of the ejection, ms.
        until_ms: u64,
    },
    /// The region's recovery ramp started over (an answer from elsewhere during it).
    RampRestarted,
    /// Probes let the held region back: its recovery ramp starts.
    ProbesPassed,
}

impl RegionHealth {
    /// How much of its share the region may take at `now_ms`: its health, scaled by
    /// the operator's drain (a region both ramping back and draining takes the product).
    pub fn admission(&self, config: &HealthConfig, now_ms: u64) -> Admission {
        let health = self.health_admission(config, now_ms);
        let permille = match health {
            Admission::Healthy => 1_000,
            Admission::Ramping { permille } => permille,
            Admission::Ejected | Admission::Drained => return health,
        };
        let open = self.drain_permille(config, now_ms);
        if open == 0 {
            return Admission::Drained;
        }
        match permille * open / 1_000 {
            1_000.. => Admission::Healthy,
            scaled => Admission::Ramping {
                permille: scaled.max(1),
            },
        }
    }

    /// How much of its share the drain leaves the region at `now_ms`, in thousandths:
    /// 0 drained, 1000 not drained, in between while the share moves off or comes back
    /// (linearly over `drain_ramp`).
    pub fn drain_permille(&self, config: &HealthConfig, now_ms: u64) -> u32 {
        let settled = if self.drained { 0 } else { 1_000 };
        let since = now_ms.saturating_sub(self.drain_changed_ms);
        if self.drain_changed_ms == 0 || config.drain_ramp_ms == 0 || since >= config.drain_ramp_ms
        {
            return settled;
        }
        let moved = u32::try_from(u128::from(since) * 1_000 / u128::from(config.drain_ramp_ms))
            .unwrap_or(1_000)
            .min(1_000);
        if self.drained { 1_000 - moved } else { moved }
    }

    /// Applies the policy's drain mark at `now_ms`; `ramp`: move the share over
    /// `drain_ramp` (a proxy that already served the region), else at once. A mark
    /// lifted (or set again) while its ramp is under way turns the ramp around where
    /// the share is: it does not jump to the other end first. Returns whether the mark
    /// changed.
    pub fn mark_drained(
        &mut self,
        drained: bool,
        ramp: bool,
        config: &HealthConfig,
        now_ms: u64,
    ) -> bool {
        if self.drained == drained {
            return false;
        }
        // The share kept now, as thousandths: the new ramp starts from it.
        let kept = self.drain_permille(config, now_ms);
        self.drained = drained;
        self.drain_changed_ms = if ramp { now_ms.max(1) } else { 0 };
        let still_to_move = if drained { kept } else { 1_000 - kept };
        if ramp && still_to_move < 1_000 {
            // Back-dated so the ramp's share at `now_ms` is `kept`.
            let done = u64::from(1_000 - still_to_move) * config.drain_ramp_ms / 1_000;
            self.drain_changed_ms = now_ms.saturating_sub(done).max(1);
        }
        true
    }

    /// Whether the region's admission can change with time (an ejection, its ramp or
    /// a drain's ramp happened): otherwise the caller need not ask the host for it.
    pub fn depends_on_time(&self) -> bool {
        self.ejected_until_ms != 0 || self.drain_changed_ms != 0
    }

    /// The admission by health alone (ejection and the recovery ramp).
    fn health_admission(&self, config: &HealthConfig, now_ms: u64) -> Admission {
        if self.is_out(config, now_ms) {
            return Admission::Ejected;
        }
        if self.ejected_until_ms != 0 && config.recovery_ramp_ms > 0 {
            let since = now_ms - self.ejected_until_ms;
            if since < config.recovery_ramp_ms {
                // Start at 5% so a region that is back is noticed at once, then grow linearly.
                let grown = u128::from(since) * 950 / u128::from(config.recovery_ramp_ms);
                let permille = 50 + u32::try_from(grown).unwrap_or(950);
                return Admission::Ramping {
                    permille: permille.min(999),
                };
            }
        }
        Admission::Healthy
    }

    /// Whether the region takes no traffic by health: ejected, or held after its
    /// ejection until probes pass (while they still report).
    fn is_out(&self, config: &HealthConfig, now_ms: u64) -> bool {
        if now_ms < self.ejected_until_ms {
            return true;
        }
        self.awaiting_probes
            && config.probe.as_ref().is_some_and(|probe| {
                now_ms.saturating_sub(self.last_probe_ms) <= probe.evidence_ms()
            })
    }

    /// Records a failed request to the region.
    pub fn record_failure(&mut self, config: &HealthConfig, now_ms: u64) -> Transition {
        if self.is_out(config, now_ms) {
            // A request that was in flight when the region was ejected: already counted.
            return Transition::None;
        }
        self.decay(config, now_ms);
        let ramping = matches!(
            self.health_admission(config, now_ms),
            Admission::Ramping { .. }
        );
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if !ramping && self.consecutive_failures < config.consecutive_failures {
            return Transition::None;
        }
        self.eject(config, now_ms)
    }

    /// Ejects the region from `now_ms` for the base time times its multiplier.
    fn eject(&mut self, config: &HealthConfig, now_ms: u64) -> Transition {
        self.ejections = self.ejections.saturating_add(1).min(MAX_MULTIPLIER);
        let length = config
            .base_ejection_ms
            .saturating_mul(u64::from(self.ejections))
            .min(config.max_ejection_ms);
        self.ejected_until_ms = now_ms.saturating_add(length);
        self.decay_from_ms = self.ejected_until_ms;
        self.consecutive_failures = 0;
        self.awaiting_probes = config.probe.is_some();
        self.probe_successes = 0;
        Transition::Ejected {
            until_ms: self.ejected_until_ms,
        }
    }

    /// Records a probe result: `passed` or not.
    ///
    /// `unhealthy_after` failures in a row eject a region that is in; `healthy_after`
    /// passes in a row let a held region back, its recovery ramp starting then (or when
    /// its ejection time ends, if that is later).
    pub fn record_probe(&mut self, config: &HealthConfig, passed: bool, now_ms: u64) -> Transition {
        let Some(probe) = &config.probe else {
            return Transition::None;
        };
        self.last_probe_ms = now_ms.max(1);
        if !passed {
            self.probe_successes = 0;
            self.probe_failures = self.probe_failures.saturating_add(1);
            if self.is_out(config, now_ms) {
                // Still dead: passes seen during the ejection no longer count.
                self.awaiting_probes = true;
                return Transition::None;
            }
            if self.probe_failures < probe.unhealthy_after {
                return Transition::None;
            }
            self.probe_failures = 0;
            return self.eject(config, now_ms);
        }
        self.probe_failures = 0;
        self.probe_successes = self.probe_successes.saturating_add(1);
        if !self.awaiting_probes || self.probe_successes < probe.healthy_after {
            return Transition::None;
        }
        self.awaiting_probes = false;
        if now_ms >= self.ejected_until_ms {
            // Held past its ejection time: the ramp starts now.
            self.ejected_until_ms = now_ms;
            self.decay_from_ms = now_ms;
        }
        Transition::ProbesPassed
    }

    /// Records a request routed to the region that Envoy answered from another region
    /// (its priority failover stepped in, so the client saw no error).
    ///
    /// While healthy this counts as a failure: the region's endpoints are gone or
    /// ejected. During the recovery ramp it only means "not back yet": Envoy lifts its
    /// own host ejection on its next outlier-detection interval, up to one interval after
    /// ours ended, and a probe sent in that gap is served elsewhere. Ejecting again would
    /// double the ejection for a region that is merely still fenced off by Envoy, so the
    /// ramp starts over from its first step instead, and keeps probing. A real failure
    /// (a failure status or flag) during the ramp still ejects at once.
    pub fn record_served_elsewhere(&mut self, config: &HealthConfig, now_ms: u64) -> Transition {
        if matches!(
            self.health_admission(config, now_ms),
            Admission::Ramping { .. }
        ) {
            self.ejected_until_ms = now_ms;
            // Not healthy yet: the multiplier decays from when it really is.
            self.decay_from_ms = now_ms;
            return Transition::RampRestarted;
        }
        self.record_failure(config, now_ms)
    }

    /// Records a successful request to the region.
    pub fn record_success(&mut self, config: &HealthConfig, now_ms: u64) -> Transition {
        if self.is_out(config, now_ms) {
            // Sent before the ejection; says nothing about now.
            return Transition::None;
        }
        self.consecutive_failures = 0;
        self.decay(config, now_ms);
        Transition::None
    }

    /// Takes one off the multiplier per full `base_ejection_time` without an ejection.
    fn decay(&mut self, config: &HealthConfig, now_ms: u64) {
        if self.ejections == 0 || now_ms <= self.decay_from_ms {
            return;
        }
        let steps = (now_ms - self.decay_from_ms) / config.base_ejection_ms.max(1);
        if steps > 0 {
            let steps32 = u32::try_from(steps).unwrap_or(u32::MAX);
            self.ejections = self.ejections.saturating_sub(steps32);
            self.decay_from_ms = self
                .decay_from_ms
                .saturating_add(steps.saturating_mul(config.base_ejection_ms.max(1)));
        }
    }

    /// Whether a success would leave this record as it is (nothing to count down, no
    /// multiplier to decay): the filter then skips the shared-data round trip.
    pub fn is_pristine(&self) -> bool {
        self.consecutive_failures == 0 && self.ejections == 0
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.consecutive_failures.to_le_bytes());
        out.extend_from_slice(&self.ejections.to_le_bytes());
        out.extend_from_slice(&self.ejected_until_ms.to_le_bytes());
        out.extend_from_slice(&self.decay_from_ms.to_le_bytes());
        out.extend_from_slice(&u32::from(self.drained).to_le_bytes());
        out.extend_from_slice(&self.drain_changed_ms.to_le_bytes());
        out.extend_from_slice(&self.probe_failures.to_le_bytes());
        out.extend_from_slice(&self.probe_successes.to_le_bytes());
        out.extend_from_slice(&u32::from(self.awaiting_probes).to_le_bytes());
        out.extend_from_slice(&self.last_probe_ms.to_le_bytes());
    }

    fn read_from(bytes: &[u8]) -> Option<Self> {
        let u32_at = |at: usize| -> Option<u32> {
            Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
        };
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        let u16_at = |at: usize| -> Option<u16> {
            Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
        };
        Some(Self {
            consecutive_failures: u32_at(0)?,
            ejections: u32_at(4)?,
            ejected_until_ms: u64_at(8)?,
            decay_from_ms: u64_at(16)?,
            drained: u32_at(24)? != 0,
            drain_changed_ms: u64_at(28)?,
            probe_failures: u16_at(36)?,
            probe_successes: u16_at(38)?,
            awaiting_probes: u32_at(40)? != 0,
            last_probe_ms: u64_at(44)?,
        })
    }
}

/// Encodes the health of every region of a service, in slot order.
pub fn encode_table(records: &[RegionHealth], shape: TableShape) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + records.len() * RECORD_LEN);
    out.push(TABLE_FORMAT);
    let count = u16::try_from(records.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&shape.layout.to_le_bytes());
    for record in records.iter().take(usize::from(count)) {
        record.write_to(&mut out);
    }
    out
}

/// Decodes a table of `shape`; anything unreadable or of another shape reads as "all
/// healthy" (a safe start), never as an error.
pub fn decode_table(bytes: Option<&[u8]>, shape: TableShape) -> Vec<RegionHealth> {
    let view = HealthView::new(bytes, shape);
    (0..shape.slots).map(|slot| view.get(slot)).collect()
}

/// Read-only, allocation-free view of an encoded table, for the per-request decision.
#[derive(Debug, Clone, Copy)]
pub struct HealthView<'a> {
    records: &'a [u8],
}

impl<'a> HealthView<'a> {
    /// A view of `bytes` as a table of `shape`; a table of another shape is ignored
    /// (all healthy).
    pub fn new(bytes: Option<&'a [u8]>, shape: TableShape) -> Self {
        let records = bytes
            .filter(|b| shape.matches(b))
            .and_then(|b| b.get(HEADER_LEN..))
            .unwrap_or(&[]);
        Self { records }
    }

    /// Whether any region's admission depends on the time
    /// ([`RegionHealth::depends_on_time`]). When none does, the caller need not ask the
    /// host for the time.
    pub fn depends_on_time(&self) -> bool {
        let set = |bytes: Option<&[u8]>| bytes.is_some_and(|b| b.iter().any(|b| *b != 0));
        // `ejected_until_ms` and `drain_changed_ms`, without decoding the records.
        self.records
            .chunks_exact(RECORD_LEN)
            .any(|record| set(record.get(8..16)) || set(record.get(28..36)))
    }

    /// A view in which every region is healthy.
    pub fn all_healthy() -> Self {
        Self { records: &[] }
    }

    /// The record of `slot` (default when absent).
    pub fn get(&self, slot: usize) -> RegionHealth {
        let start = slot * RECORD_LEN;
        self.records
            .get(start..start + RECORD_LEN)
            .and_then(RegionHealth::read_from)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(threshold: u32) -> HealthConfig {
        HealthConfig {
            consecutive_failures: threshold,
            base_ejection_ms: 1_000,
            max_ejection_ms: 3_000,
            recovery_ramp_ms: 0,
            ..HealthConfig::default()
        }
    }

    #[test]
    fn ejects_after_threshold_and_returns_after_base_time() {
        let cfg = config(3);
        let mut h = RegionHealth::default();
        assert_eq!(h.record_failure(&cfg, 10), Transition::None);
        assert_eq!(h.record_failure(&cfg, 11), Transition::None);
        assert_eq!(h.admission(&cfg, 11), Admission::Healthy);
        assert_eq!(
            h.record_failure(&cfg, 12),
            Transition::Ejected { until_ms: 1_012 }
        );
        assert_eq!(h.admission(&cfg, 1_011), Admission::Ejected);
        assert_eq!(h.admission(&cfg, 1_012), Admission::Healthy);
    }

    #[test]
    fn a_success_resets_the_count() {
        let cfg = config(2);
        let mut h = RegionHealth::default();
        h.record_failure(&cfg, 1);
        h.record_success(&cfg, 2);
        assert_eq!(h.record_failure(&cfg, 3), Transition::None);
        assert!(matches!(
            h.record_failure(&cfg, 4),
            Transition::Ejected { .. }
        ));
    }

    #[test]
    fn repeated_ejections_grow_up_to_the_maximum_and_decay_while_healthy() {
        let cfg = config(1);
        let mut h = RegionHealth::default();
        assert_eq!(
            h.record_failure(&cfg, 0),
            Transition::Ejected { until_ms: 1_000 }
        );
        assert_eq!(
            h.record_failure(&cfg, 1_000),
            Transition::Ejected { until_ms: 3_000 }
        );
        assert_eq!(
            h.record_failure(&cfg, 3_000),
            Transition::Ejected { until_ms: 6_000 }
        );
        assert_eq!(
            h.record_failure(&cfg, 6_000),
            Transition::Ejected { until_ms: 9_000 },
            "capped at max"
        );
        assert_eq!(h.ejections, 4);
        // Healthy for 2.5 base times after the last ejection: two steps of decay.
        h.record_success(&cfg, 11_500);
        assert_eq!(h.ejections, 2);
        assert_eq!(
            h.record_failure(&cfg, 11_600),
            Transition::Ejected { until_ms: 14_600 }
        );
    }

    #[test]
    fn failures_from_requests_in_flight_during_an_ejection_do_not_extend_it() {
        let cfg = config(1);
        let mut h = RegionHealth::default();
        h.record_failure(&cfg, 0);
        assert_eq!(h.record_failure(&cfg, 500), Transition::None);
        assert_eq!(h.ejected_until_ms, 1_000);
    }

    #[test]
    fn a_returning_region_ramps_and_is_ejected_again_by_one_failure() {
        let cfg = HealthConfig {
            recovery_ramp_ms: 1_000,
            ..config(5)
        };
        let mut h = RegionHealth::default();
        for t in 0..5 {
            h.record_failure(&cfg, t);
        }
        assert_eq!(h.ejected_until_ms, 1_004);
        assert_eq!(
            h.admission(&cfg, 1_004),
            Admission::Ramping { permille: 50 }
        );
        assert_eq!(
            h.admission(&cfg, 1_504),
            Admission::Ramping { permille: 525 }
        );
        assert_eq!(h.admission(&cfg, 2_004), Admission::Healthy);
        assert!(
            matches!(h.record_failure(&cfg, 1_100), Transition::Ejected { .. }),
            "probation failure"
        );
    }

    #[test]
    fn an_answer_from_elsewhere_during_the_ramp_restarts_it_without_a_longer_ejection() {
        let cfg = HealthConfig {
            recovery_ramp_ms: 1_000,
            ..config(1)
        };
        let mut h = RegionHealth::default();
        assert_eq!(
            h.record_failure(&cfg, 0),
            Transition::Ejected { until_ms: 1_000 }
        );
        // Envoy still fences the region off: the first probe is served elsewhere.
        assert_eq!(
            h.record_served_elsewhere(&cfg, 1_300),
            Transition::RampRestarted
        );
        assert_eq!(h.ejections, 1, "no longer ejection");
        assert_eq!(
            h.admission(&cfg, 1_300),
            Admission::Ramping { permille: 50 }
        );
        assert_eq!(
            h.admission(&cfg, 1_800),
            Admission::Ramping { permille: 525 }
        );
        assert_eq!(h.admission(&cfg, 2_300), Admission::Healthy);
        // Once healthy, an answer from elsewhere is a failure again.
        assert_eq!(
            h.record_served_elsewhere(&cfg, 2_400),
            Transition::Ejected { until_ms: 3_400 },
            "one base time since the ramp (re)started has decayed the multiplier: base length"
        );
        // A real failure during the next ramp ejects at once.
        assert!(matches!(
            h.record_failure(&cfg, 4_500),
            Transition::Ejected { .. }
        ));
    }

    #[test]
    fn an_answer_from_elsewhere_while_healthy_counts_towards_the_threshold() {
        let cfg = config(2);
        let mut h = RegionHealth::default();
        assert_eq!(h.record_served_elsewhere(&cfg, 1), Transition::None);
        assert!(matches!(
            h.record_served_elsewhere(&cfg, 2),
            Transition::Ejected { .. }
        ));
        assert_eq!(
            h.record_served_elsewhere(&cfg, 3),
            Transition::None,
            "in flight during the ejection"
        );
    }

    fn drain_config(ramp_ms: u64) -> HealthConfig {
        HealthConfig {
            drain_ramp_ms: ramp_ms,
            recovery_ramp_ms: 1_000,
            ..config(1)
        }
    }

    #[test]
    fn a_drain_moves_the_share_off_over_the_ramp_and_back_the_same_way() {
        let cfg = drain_config(10_000);
        let mut h = RegionHealth::default();
        assert!(h.mark_drained(true, true, &cfg, 100_000));
        assert!(
            !h.mark_drained(true, true, &cfg, 100_500),
            "already drained"
        );
        let share = |h: &RegionHealth, now| match h.admission(&cfg, now) {
            Admission::Healthy => 1_000,
            Admission::Ramping { permille } => permille,
            Admission::Drained | Admission::Ejected => 0,
        };
        assert_eq!(share(&h, 100_000), 1_000);
        assert_eq!(share(&h, 102_500), 750);
        assert_eq!(share(&h, 105_000), 500);
        assert_eq!(share(&h, 110_000), 0);
        assert_eq!(h.admission(&cfg, 110_000), Admission::Drained);
        assert!(h.depends_on_time());
        // Lifted: back over the same ramp.
        assert!(h.mark_drained(false, true, &cfg, 200_000));
        assert_eq!(share(&h, 200_000), 0);
        assert_eq!(share(&h, 201_000), 100);
        assert_eq!(share(&h, 205_000), 500);
        assert_eq!(h.admission(&cfg, 210_000), Admission::Healthy);
    }

    #[test]
    fn a_drain_lifted_half_way_turns_back_from_where_the_share_is() {
        let cfg = drain_config(10_000);
        let mut h = RegionHealth::default();
        h.mark_drained(true, true, &cfg, 100_000);
        assert_eq!(h.drain_permille(&cfg, 104_000), 600);
        // Lifted at 60% kept: it goes on from 60%, up, and is whole 4 s later.
        assert!(h.mark_drained(false, true, &cfg, 104_000));
        assert_eq!(h.drain_permille(&cfg, 104_000), 600);
        assert_eq!(h.drain_permille(&cfg, 106_000), 800);
        assert_eq!(h.drain_permille(&cfg, 108_000), 1_000);
        // Drained again half way back: down from there.
        h.mark_drained(true, true, &cfg, 107_000);
        assert_eq!(h.drain_permille(&cfg, 107_000), 900);
        assert_eq!(h.drain_permille(&cfg, 112_000), 400);
        assert_eq!(h.drain_permille(&cfg, 116_000), 0);
    }

    #[test]
    fn a_drain_without_a_ramp_holds_at_once_and_needs_no_clock() {
        let cfg = drain_config(10_000);
        let mut h = RegionHealth::default();
        // A proxy that starts with the region drained.
        assert!(h.mark_drained(true, false, &cfg, 100_000));
        assert_eq!(h.admission(&cfg, 100_000), Admission::Drained);
        assert!(!h.depends_on_time());
        // A ramp of 0s: at once as well.
        let mut h = RegionHealth::default();
        let at_once = drain_config(0);
        h.mark_drained(true, true, &at_once, 100_000);
        assert_eq!(h.admission(&at_once, 100_000), Admission::Drained);
    }

    #[test]
    fn a_draining_region_is_not_ejected_by_one_failure_and_an_ejection_wins() {
        let cfg = HealthConfig {
            consecutive_failures: 2,
            ..drain_config(10_000)
        };
        let mut h = RegionHealth::default();
        h.mark_drained(true, true, &cfg, 100_000);
        assert_eq!(h.record_failure(&cfg, 101_000), Transition::None);
        assert!(matches!(
            h.record_failure(&cfg, 101_001),
            Transition::Ejected { .. }
        ));
        assert_eq!(h.admission(&cfg, 101_002), Admission::Ejected);
        // Back from the ejection while still draining: the product of both ramps.
        let until = h.ejected_until_ms;
        match h.admission(&cfg, until + 500) {
            Admission::Ramping { permille } => assert!(permille < 525 / 2 + 300, "{permille}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tables_round_trip_and_bad_bytes_read_as_healthy() {
        let records = vec![
            RegionHealth {
                consecutive_failures: 1,
                ejections: 2,
                ejected_until_ms: 3,
                decay_from_ms: 4,
                drained: true,
                drain_changed_ms: 5,
                probe_failures: 6,
                probe_successes: 7,
                awaiting_probes: true,
                last_probe_ms: 8,
            },
            RegionHealth::default(),
        ];
        let shape = TableShape::of(["a", "b"]);
        let bytes = encode_table(&records, shape);
        assert_eq!(bytes.len(), 11 + 2 * RECORD_LEN);
        assert_eq!(decode_table(Some(&bytes), shape), records);
        let other_regions = TableShape::of(["a", "c"]);
        assert_eq!(
            decode_table(Some(&bytes), other_regions),
            vec![RegionHealth::default(); 2]
        );
        let three = TableShape::of(["a", "b", "c"]);
        assert_eq!(
            decode_table(Some(&bytes), three),
            vec![RegionHealth::default(); 3],
            "other shape"
        );
        assert_eq!(
            decode_table(Some(&bytes[..10]), shape),
            vec![RegionHealth::default(); 2]
        );
        assert_eq!(decode_table(None, shape), vec![RegionHealth::default(); 2]);
    }

    fn probed(threshold: u32) -> HealthConfig {
        HealthConfig {
            probe: Some(ProbeConfig {
                path: "/healthz".into(),
                authority: "reviews".into(),
                clusters: vec![],
                interval_ms: 100,
                timeout_ms: 50,
                expect_statuses: vec![200],
                healthy_after: 2,
                unhealthy_after: 3,
            }),
            ..config(threshold)
        }
    }

    #[test]
    fn failing_probes_eject_a_region_without_any_request() {
        let cfg = probed(5);
        let mut h = RegionHealth::default();
        assert_eq!(h.record_probe(&cfg, false, 100), Transition::None);
        assert_eq!(h.record_probe(&cfg, false, 200), Transition::None);
        assert_eq!(h.admission(&cfg, 200), Admission::Healthy);
        assert_eq!(
            h.record_probe(&cfg, false, 300),
            Transition::Ejected { until_ms: 1_300 }
        );
        assert_eq!(h.admission(&cfg, 300), Admission::Ejected);
        // A pass between failures starts the count over.
        let mut h = RegionHealth::default();
        h.record_probe(&cfg, false, 100);
        h.record_probe(&cfg, false, 200);
        h.record_probe(&cfg, true, 300);
        assert_eq!(h.record_probe(&cfg, false, 400), Transition::None);
    }

    #[test]
    fn a_probed_region_stays_out_after_its_ejection_until_probes_pass() {
        let cfg = probed(1);
        let mut h = RegionHealth::default();
        assert!(matches!(
            h.record_failure(&cfg, 0),
            Transition::Ejected { until_ms: 1_000 }
        ));
        // Still dead when the ejection ends: the hold keeps it out.
        h.record_probe(&cfg, false, 900);
        h.record_probe(&cfg, false, 1_000);
        assert_eq!(h.admission(&cfg, 1_050), Admission::Ejected);
        assert_eq!(h.record_probe(&cfg, true, 1_100), Transition::None);
        assert_eq!(
            h.admission(&cfg, 1_150),
            Admission::Ejected,
            "one pass is not enough"
        );
        assert_eq!(h.record_probe(&cfg, true, 1_200), Transition::ProbesPassed);
        assert_eq!(
            h.admission(&cfg, 1_200),
            Admission::Healthy,
            "no ramp configured"
        );
        // Without probes the same region would have been back at 1_000.
        let mut passive = RegionHealth::default();
        passive.record_failure(&config(1), 0);
        assert_eq!(passive.admission(&config(1), 1_000), Admission::Healthy);
    }

    #[test]
    fn the_recovery_ramp_starts_when_the_probes_pass() {
        let cfg = HealthConfig {
            recovery_ramp_ms: 1_000,
            ..probed(1)
        };
        let mut h = RegionHealth::default();
        h.record_failure(&cfg, 0);
        h.record_probe(&cfg, true, 3_000);
        h.record_probe(&cfg, true, 3_100);
        assert_eq!(
            h.admission(&cfg, 3_100),
            Admission::Ramping { permille: 50 }
        );
        assert!(
            matches!(h.admission(&cfg, 3_600), Admission::Ramping { permille } if permille > 500)
        );
        assert_eq!(h.admission(&cfg, 4_100), Admission::Healthy);
    }

    #[test]
    fn passes_during_the_ejection_let_it_end_on_time_unless_a_later_probe_fails() {
        let cfg = probed(1);
        let mut h = RegionHealth::default();
        h.record_failure(&cfg, 0);
        h.record_probe(&cfg, true, 100);
        assert_eq!(h.record_probe(&cfg, true, 200), Transition::ProbesPassed);
        assert_eq!(h.admission(&cfg, 1_000), Admission::Healthy);
        let mut h = RegionHealth::default();
        h.record_failure(&cfg, 0);
        h.record_probe(&cfg, true, 100);
        h.record_probe(&cfg, true, 200);
        h.record_probe(&cfg, false, 900);
        assert_eq!(h.admission(&cfg, 1_000), Admission::Ejected, "dead again");
    }

    #[test]
    fn a_hold_without_fresh_probe_results_lapses_to_the_ejection_time() {
        let cfg = probed(1);
        let evidence = cfg.probe.as_ref().map_or(0, ProbeConfig::evidence_ms);
        let mut h = RegionHealth::default();
        h.record_failure(&cfg, 0);
        h.record_probe(&cfg, false, 1_000);
        assert_eq!(h.admission(&cfg, 1_000 + evidence), Admission::Ejected);
        assert_eq!(
            h.admission(&cfg, 1_001 + evidence),
            Admission::Healthy,
            "the prober went away: the region returns as without probes"
        );
        // A policy without probes ignores the hold.
        assert_eq!(h.admission(&config(1), 1_000), Admission::Healthy);
    }

    #[test]
    fn probe_results_mean_nothing_to_a_service_without_probes() {
        let cfg = config(1);
        let mut h = RegionHealth::default();
        for t in 0..10 {
            assert_eq!(h.record_probe(&cfg, false, t), Transition::None);
        }
        assert_eq!(h, RegionHealth::default());
    }
}
