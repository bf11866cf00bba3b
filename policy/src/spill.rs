//! Graded spill: a degraded region, failing part of its requests but not enough in a
//! row to be ejected, sheds part of its share down its own failover chain, in
//! proportion to how much it fails.
//!
//! Each worker keeps a sliding window of its own outcomes per region (no shared data:
//! every worker sees the same failure rate in its own sample of the traffic). The
//! region keeps `1 - SPILL_FACTOR x failure rate` of its share, never less than
//! [`KEPT_FLOOR`] so the region keeps being measured and its share comes back as soon
//! as it recovers. Envoy's priority load uses a similar product for the other reason:
//! with its overprovisioning factor 1.4 a priority keeps all of its load until fewer
//! than 1/1.4 = 71% of its hosts are healthy, because the healthy hosts have headroom
//! to absorb the rest. A region that answers 503 to 30% of the requests it gets has no
//! such headroom to use: every request sent there has a 30% chance to need a retry
//! elsewhere. So geolb sheds from the first failures, with the same factor as slope.
//!
//! | failure rate | Envoy (1.4 x healthy share) keeps | geolb keeps |
//! |---:|---:|---:|
//! | 10% | 100% | 86% |
//! | 30% | 98% | 58% |
//! | 60% | 56% | 16% |
//! | 70% or more | 42% or less | 5% |

use crate::health::HealthConfig;
use crate::outcome::{FailureKind, Verdict};

/// The slope of the curve: the share kept falls by this much per unit of failure rate.
pub const SPILL_FACTOR_PERMILLE: u32 = 1_400;
/// A degraded region keeps at least this much of its share (thousandths).
pub const KEPT_FLOOR: u32 = 50;
/// A window with fewer outcomes than this says nothing: the whole share is kept.
pub const MIN_SAMPLES: u32 = 20;

/// What one finished request tells the window of its region: `(failed, weight)`, or
/// nothing. Every failure counts once; a success counts only when its served region
/// was read (`region_read`), because a retry that another region answered looks like a
/// success until then, and it stands for the `read_one_in` successes it was sampled
/// from (as does a success served elsewhere). A request to a region ramping back from
/// an ejection tells nothing: the ejection state machine judges those (an answer from
/// elsewhere then only restarts the ramp), and the window starts afresh after it.
pub fn sample(
    verdict: Verdict,
    region_read: bool,
    read_one_in: u32,
    ramping: bool,
) -> Option<(bool, u32)> {
    if ramping {
        return None;
    }
    match verdict {
        Verdict::Failure(FailureKind::ServedElsewhere) => Some((true, read_one_in)),
        Verdict::Failure(_) => Some((true, 1)),
        Verdict::Success if region_read => Some((false, read_one_in)),
        Verdict::Success | Verdict::Ignore => None,
    }
}

/// Outcomes in one half of a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    ok: u32,
    failed: u32,
}

/// One worker's recent outcomes of one region: two buckets of half the window each,
/// the older one weighted down as the newer one fills (a sliding window without a
/// ring of timestamps).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// Start of the current bucket, ms (0: nothing recorded yet).
    bucket_start_ms: u64,
    current: Counts,
    previous: Counts,
}

impl Window {
    /// Records an outcome at `now_ms` that stands for `weight` requests (a sampled
    /// outcome stands for the requests it was sampled from). With `spill_window_ms` 0
    /// (graded spill off) nothing is kept.
    pub fn record(&mut self, failed: bool, weight: u32, config: &HealthConfig, now_ms: u64) {
        if config.spill_window_ms == 0 {
            return;
        }
        self.roll(config, now_ms);
        let counts = &mut self.current;
        if failed {
            counts.failed = counts.failed.saturating_add(weight);
        } else {
            counts.ok = counts.ok.saturating_add(weight);
        }
    }

    /// Forgets every outcome: the region was just ejected, which acted on them.
    pub fn forget(&mut self) {
        *self = Window::default();
    }

    /// How much of its share the region keeps at `now_ms`, in thousandths.
    pub fn kept_permille(&self, config: &HealthConfig, now_ms: u64) -> u32 {
        let Some((ok, failed)) = self.recent(config, now_ms) else {
            return 1_000;
        };
        let total = ok + failed;
        if total < f64::from(MIN_SAMPLES) || failed <= 0.0 {
            return 1_000;
        }
        let shed = failed / total * f64::from(SPILL_FACTOR_PERMILLE);
        // Whole thousandths, rounded; within 50..=1000.
        let kept = (1_000.0 - shed)
            .round()
            .clamp(f64::from(KEPT_FLOOR), 1_000.0);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let kept = kept as u32;
        kept
    }

    /// The outcomes of the last window, the older bucket weighted by how much of it
    /// still lies inside the window; `None` when graded spill is off or nothing is recent.
    fn recent(&self, config: &HealthConfig, now_ms: u64) -> Option<(f64, f64)> {
        let half = config.spill_window_ms / 2;
        if half == 0 || self.bucket_start_ms == 0 {
            return None;
        }
        let age = now_ms.saturating_sub(self.bucket_start_ms);
        let (current, previous, into_current) = if age < half {
            (self.current, self.previous, age)
        } else if age < 2 * half {
            // The current bucket is the previous one now.
            (Counts::default(), self.current, age - half)
        } else {
            return None;
        };
        #[allow(clippy::cast_precision_loss)]
        let weight = 1.0 - into_current as f64 / half as f64;
        let ok = f64::from(current.ok) + f64::from(previous.ok) * weight;
        let failed = f64::from(current.failed) + f64::from(previous.failed) * weight;
        Some((ok, failed))
    }

    /// Starts a new bucket when the current one is full.
    fn roll(&mut self, config: &HealthConfig, now_ms: u64) {
        let half = (config.spill_window_ms / 2).max(1);
        let age = now_ms.saturating_sub(self.bucket_start_ms);
        if self.bucket_start_ms == 0 || age >= 2 * half {
            *self = Window {
                bucket_start_ms: now_ms.max(1),
                ..Window::default()
            };
        } else if age >= half {
            self.previous = self.current;
            self.current = Counts::default();
            self.bucket_start_ms = self.bucket_start_ms.saturating_add(half);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> HealthConfig {
        HealthConfig {
            spill_window_ms: 10_000,
            ..HealthConfig::default()
        }
    }

    /// A window of `n` outcomes at `now`, `failed_in` of every 10 failing.
    fn window(n: u32, failed_in_ten: u32, now: u64) -> Window {
        let mut w = Window::default();
        for i in 0..n {
            w.record(i % 10 < failed_in_ten, 1, &config(), now);
        }
        w
    }

    #[test]
    fn the_share_kept_follows_the_documented_curve() {
        let cfg = config();
        for (failed_in_ten, kept) in [(0, 1_000), (1, 860), (3, 580), (6, 160), (7, 50), (10, 50)] {
            let w = window(100, failed_in_ten, 1_000);
            let got = w.kept_permille(&cfg, 1_000);
            assert!(
                got.abs_diff(kept) <= 1,
                "{failed_in_ten}0% failing: {got}, want {kept}"
            );
        }
    }

    #[test]
    fn few_samples_say_nothing_and_old_ones_fade() {
        let cfg = config();
        assert_eq!(window(19, 10, 1_000).kept_permille(&cfg, 1_000), 1_000);
        let w = window(100, 3, 1_000);
        // Half a window later they count for all of the previous bucket...
        assert_eq!(w.kept_permille(&cfg, 6_000), 580);
        // ...then fade out: the rate stays while enough of them are left...
        assert_eq!(w.kept_permille(&cfg, 8_500), 580);
        // ...and once too few are, or a whole window later, they say nothing.
        assert_eq!(w.kept_permille(&cfg, 10_500), 1_000);
        assert_eq!(w.kept_permille(&cfg, 11_000), 1_000);
    }

    #[test]
    fn outcomes_count_by_what_is_known_of_their_region() {
        use crate::outcome::FailureKind::*;
        let cases = [
            // (verdict, served region read, ramping) -> sample
            ((Verdict::Success, false, false), None),
            ((Verdict::Success, true, false), Some((false, 16))),
            (
                (Verdict::Failure(Status(503)), false, false),
                Some((true, 1)),
            ),
            (
                (Verdict::Failure(ServedElsewhere), true, false),
                Some((true, 16)),
            ),
            ((Verdict::Ignore, true, false), None),
            ((Verdict::Failure(Flags), false, true), None),
            ((Verdict::Success, true, true), None),
        ];
        for ((verdict, read, ramping), expected) in cases {
            assert_eq!(
                sample(verdict, read, 16, ramping),
                expected,
                "{verdict:?} {read} {ramping}"
            );
        }
    }

    #[test]
    fn graded_spill_off_keeps_everything() {
        let off = HealthConfig {
            spill_window_ms: 0,
            ..HealthConfig::default()
        };
        let mut w = Window::default();
        for _ in 0..100 {
            w.record(true, 1, &off, 1_000);
        }
        assert_eq!(w.kept_permille(&off, 1_000), 1_000);
    }
}
