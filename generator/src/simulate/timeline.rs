//! A scripted failure played second by second: a region dies at one moment and comes
//! back at another, and the split follows through the plan's own ejection, re-admission
//! and ramp timings, on the core's clock.

use std::collections::BTreeMap;

use geolb_policy::units::DurationText;
use serde::Serialize;

use super::{Change, Condition, Policies, Proxy, Scenario, ScenarioError, percents};
use crate::plan::Plan;

/// The longest timeline played (one hour: 360,000 requests per service).
pub const MAX_LENGTH_MS: u64 = 3_600_000;

/// Parses a timeline's length: a plan duration of 1s to 1h.
pub fn length(text: &str) -> Result<u64, String> {
    let millis = DurationText::parse(text)
        .map_err(|e| format!("{text:?}: {e}"))?
        .millis();
    if (1_000..=MAX_LENGTH_MS).contains(&millis) {
        Ok(millis)
    } else {
        Err(format!("{text:?} is not a length of 1s to 1h"))
    }
}

/// The split second by second, per service and region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    /// The proxies' region.
    pub from: String,
    /// How many seconds were played; each series has this many numbers.
    pub seconds: u64,
    /// What happened when, in time order.
    pub events: Vec<Event>,
    /// Per service (`name.namespace`), per region: the percent of each second's
    /// requests it took. The mesh default is listed when some second had a share
    /// that no region admitted (see `MESH_DEFAULT`).
    pub services: BTreeMap<String, BTreeMap<String, Vec<f64>>>,
}

/// One change of a region's condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// When, ms from the start.
    pub at_ms: u64,
    /// The region.
    pub region: String,
    /// What changed, such as `down` or `back up`.
    pub change: String,
}

/// Plays `scenario` against `plan` (a plan that validated) for `length_ms` and
/// returns the split of every second. The proxies start with the plan as it is at 0.
pub fn play(plan: &Plan, scenario: &Scenario, length_ms: u64) -> Result<Timeline, ScenarioError> {
    if let Some(c) = scenario
        .changes
        .iter()
        .find(|c| c.during.start_ms >= length_ms)
    {
        return Err(ScenarioError::SpanAfterEnd {
            option: c.condition.option(),
            region: c.region.clone(),
            span: c.during,
            length_ms,
        });
    }
    let policies = Policies::compile(plan, scenario)?;
    let seconds = length_ms.div_ceil(1_000);
    let services = policies
        .names()
        .into_iter()
        .map(|name| {
            let zero = policies.regions_of(&name);
            let mut per_second = vec![zero; usize::try_from(seconds).unwrap_or(0)];
            if let Some(proxy) = Proxy::new(&policies, &name, scenario) {
                proxy.run(length_ms, |now_ms, to| {
                    let second = usize::try_from(now_ms / 1_000).unwrap_or(usize::MAX);
                    if let Some(counts) = per_second.get_mut(second) {
                        *counts.entry(to.to_owned()).or_default() += 1;
                    }
                });
            }
            (name, series(&per_second))
        })
        .collect();
    Ok(Timeline {
        from: scenario.from.clone(),
        seconds,
        events: events(&scenario.changes, length_ms),
        services,
    })
}

/// Each second's counts as percents, turned into one series per region.
fn series(per_second: &[BTreeMap<String, u64>]) -> BTreeMap<String, Vec<f64>> {
    let splits: Vec<BTreeMap<String, f64>> = per_second.iter().map(percents).collect();
    let mut regions: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for name in splits.iter().flat_map(BTreeMap::keys) {
        regions.entry(name.clone()).or_default();
    }
    for (name, values) in &mut regions {
        values.extend(
            splits
                .iter()
                .map(|split| split.get(name).copied().unwrap_or(0.0)),
        );
    }
    regions
}

/// The starts and ends of the changes inside the timeline, in time order.
fn events(changes: &[Change], length_ms: u64) -> Vec<Event> {
    let mut events: Vec<Event> = changes
        .iter()
        .flat_map(|c| {
            let (starts, ends) = match c.condition {
                Condition::Down => ("down".to_owned(), "back up".to_owned()),
                Condition::Degraded(p) => (format!("degraded {p}%"), "no longer degraded".into()),
                Condition::Drained => ("drained".to_owned(), "no longer drained".to_owned()),
            };
            let start = Event {
                at_ms: c.during.start_ms,
                region: c.region.clone(),
                change: starts,
            };
            let end = c
                .during
                .end_ms
                .filter(|end| *end < length_ms)
                .map(|at_ms| Event {
                    at_ms,
                    region: c.region.clone(),
                    change: ends,
                });
            std::iter::once(start).chain(end)
        })
        .collect();
    events.sort_by_key(|e| e.at_ms);
    events
}

/// The timeline as tables for people: per service, one row per second, with the
/// events beside the second they happen in.
pub fn table(timeline: &Timeline) -> String {
    let mut text = String::new();
    for (service, regions) in &timeline.services {
        text.push_str(&format!("{service}, from {}\n", timeline.from));
        let widths: Vec<usize> = regions.keys().map(|r| r.len().max(6)).collect();
        text.push_str("  second");
        for (region, width) in regions.keys().zip(&widths) {
            text.push_str(&format!("  {region:>width$}"));
        }
        text.push('\n');
        for second in 0..timeline.seconds {
            let index = usize::try_from(second).unwrap_or(usize::MAX);
            text.push_str(&format!("  {second:>6}"));
            for (values, width) in regions.values().zip(&widths) {
                let percent = values.get(index).copied().unwrap_or(0.0);
                text.push_str(&format!("  {percent:>width$.1}"));
            }
            let notes: Vec<String> = timeline
                .events
                .iter()
                .filter(|e| e.at_ms / 1_000 == second)
                .map(|e| {
                    let at = DurationText::from_millis(e.at_ms);
                    format!("{} {} at {}", e.region, e.change, at.as_str())
                })
                .collect();
            if !notes.is_empty() {
                text.push_str("   <- ");
                text.push_str(&notes.join(", "));
            }
            text.push('\n');
        }
    }
    text
}
