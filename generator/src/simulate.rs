//! What a plan does while regions fail, before it ships: the share of each service's
//! requests that each region takes, from proxies in one source region.
//!
//! Nothing here decides a route. A simulated proxy runs the core exactly as the filter
//! does: the compiled policy of the plan's sidecars, [`SourcePlan::decide`] over the
//! shared health table, [`classify`] of each outcome, [`store::record`] into the table,
//! the graded-spill windows and, for probed services, the probe results. Only the
//! upstreams are simulated: a down region refuses connections, a degraded one answers
//! 503 to the given share of its requests, a drained one is drained by the policy.
//!
//! The proxy sends [`REQUESTS_PER_SECOND`] requests per service. The split is counted
//! over [`MEASURED_MS`] after a [`WARM_UP_MS`] warm-up, so a dead region's share is
//! what it is once its ejection has settled, re-admission attempts included.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use geolb_policy::flags::ResponseFlags;
use geolb_policy::health::{HealthConfig, HealthView, Transition};
use geolb_policy::outcome::{ResponseFacts, classify};
use geolb_policy::routing::{Decision, RoundRobin, RouteReason, SourcePlan, SpillView};
use geolb_policy::spill::{Window, sample};
use geolb_policy::store::{Observation, SharedStore, SharedTable, StoreError};
use geolb_policy::units::DurationText;
use geolb_policy::{CompiledPolicy, CompiledService, RegionId, parse_policy};
use serde::Serialize;

use crate::plan::Plan;
use crate::policy::{PolicyFor, wire_policy};
use crate::topology::Topology;

pub mod plot;
pub mod timeline;

/// Requests per second the simulated proxy sends to each service.
pub const REQUESTS_PER_SECOND: u64 = 100;
/// Simulated time before counting starts.
pub const WARM_UP_MS: u64 = 120_000;
/// Simulated time over which the split is counted.
pub const MEASURED_MS: u64 = 600_000;
/// The status a degraded or refusing region answers with.
const FAILED_STATUS: u16 = 503;
/// Envoy's upstream-connection-failure flag, which a down region's requests carry.
const CONNECT_FAILURE: ResponseFlags = ResponseFlags(0x20);
/// Where a request goes when no region admits it: the mesh's own load balancing.
pub const MESH_DEFAULT: &str = "mesh-default";
/// Any route token will do: the simulation never builds a header.
pub const TOKEN: &str = "simulation-only-token-never-sent";

/// What the upstreams of one region do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RegionState {
    /// Answers every request.
    Up,
    /// Refuses every connection.
    Down,
    /// Answers 503 to this percent of its requests (1..=100).
    Degraded(u8),
}

/// What happens to a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Its upstreams refuse every connection.
    Down,
    /// Its upstreams answer 503 to this percent of their requests (1..=100).
    Degraded(u8),
    /// The plan drains it (as `regions[].drained: true` would): a policy update.
    Drained,
}

impl Condition {
    /// The option that sets it.
    pub fn option(self) -> &'static str {
        match self {
            Condition::Down => "--down",
            Condition::Degraded(_) => "--degraded",
            Condition::Drained => "--drained",
        }
    }
}

/// When a condition holds: from `start_ms` until `end_ms` (not included; `None`: to
/// the end). Written `START..END`, `START..` or `..END` with plan durations (`10s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// When it starts, ms from the start.
    pub start_ms: u64,
    /// When it stops, ms from the start; `None`: it never does.
    pub end_ms: Option<u64>,
}

impl Span {
    /// All along.
    pub const ALWAYS: Span = Span {
        start_ms: 0,
        end_ms: None,
    };

    /// Parses `START..END` (either side may be left out, not both).
    pub fn parse(text: &str) -> Result<Span, String> {
        let (start, end) = text
            .split_once("..")
            .ok_or_else(|| format!("{text:?} is not START..END (such as 10s..40s)"))?;
        let millis = |side: &str| -> Result<Option<u64>, String> {
            if side.is_empty() {
                return Ok(None);
            }
            DurationText::parse(side)
                .map(|d| Some(d.millis()))
                .map_err(|e| format!("{side:?}: {e}"))
        };
        let span = Span {
            start_ms: millis(start)?.unwrap_or(0),
            end_ms: millis(end)?,
        };
        match span.end_ms {
            _ if start.is_empty() && end.is_empty() => {
                Err(format!("{text:?} names neither a start nor an end"))
            }
            Some(end_ms) if end_ms <= span.start_ms => {
                Err(format!("{text:?} ends before it starts"))
            }
            _ => Ok(span),
        }
    }

    /// Whether it holds at `now_ms`.
    pub fn holds(self, now_ms: u64) -> bool {
        now_ms >= self.start_ms && self.end_ms.is_none_or(|end| now_ms < end)
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |ms: u64| DurationText::from_millis(ms).as_str().to_owned();
        let start = if self.start_ms == 0 {
            String::new()
        } else {
            text(self.start_ms)
        };
        let end = self.end_ms.map(text).unwrap_or_default();
        write!(f, "{start}..{end}")
    }
}

/// One region's condition over a span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The region.
    pub region: String,
    /// What happens to it.
    pub condition: Condition,
    /// When.
    pub during: Span,
}

/// A failure scenario: where the proxies are and what happens to which region when.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scenario {
    /// The proxies' region.
    pub from: String,
    /// What happens, in the order given. A region down and degraded at once is down;
    /// degraded twice at once, it fails the larger percent.
    pub changes: Vec<Change>,
}

impl Scenario {
    /// Proxies in `region`, every region up.
    pub fn from(region: &str) -> Self {
        Self {
            from: region.to_owned(),
            changes: Vec::new(),
        }
    }

    /// Adds `condition` to `region` during `span`.
    #[must_use]
    pub fn with(mut self, region: &str, condition: Condition, during: Span) -> Self {
        self.changes.push(Change {
            region: region.to_owned(),
            condition,
            during,
        });
        self
    }

    /// What `region`'s upstreams do at `now_ms`.
    fn state_at(&self, region: &str, now_ms: u64) -> RegionState {
        let mut state = RegionState::Up;
        for change in self.holding(now_ms).filter(|c| c.region == region) {
            state = match (state, change.condition) {
                (_, Condition::Down) | (RegionState::Down, _) => RegionState::Down,
                (RegionState::Degraded(a), Condition::Degraded(b)) => {
                    RegionState::Degraded(a.max(b))
                }
                (_, Condition::Degraded(p)) => RegionState::Degraded(p),
                (other, Condition::Drained) => other,
            };
        }
        state
    }

    /// The regions drained at `now_ms`.
    fn drained_at(&self, now_ms: u64) -> BTreeSet<String> {
        self.holding(now_ms)
            .filter(|c| c.condition == Condition::Drained)
            .map(|c| c.region.clone())
            .collect()
    }

    fn holding(&self, now_ms: u64) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(move |c| c.during.holds(now_ms))
    }

    /// When the set of drained regions may change: each is a policy update.
    fn drain_moments(&self) -> Vec<u64> {
        let mut moments: Vec<u64> = self
            .changes
            .iter()
            .filter(|c| c.condition == Condition::Drained)
            .flat_map(|c| std::iter::once(c.during.start_ms).chain(c.during.end_ms))
            .chain(std::iter::once(0))
            .collect();
        moments.sort_unstable();
        moments.dedup();
        moments
    }
}

/// A scenario that names something the plan does not have, or that cannot be played.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// `--<option> <region>` names no region of the plan.
    #[error("{option} {region}: the plan has no region {region:?} (its regions: {})", known.join(", "))]
    UnknownRegion {
        /// The option, such as `--down`.
        option: &'static str,
        /// The name given.
        region: String,
        /// The plan's regions.
        known: Vec<String>,
    },
    /// A degraded percent outside 1..=100.
    #[error("--degraded {region}={percent}: the percent of failed requests must be 1..100")]
    Percent {
        /// The region.
        region: String,
        /// The value given.
        percent: u8,
    },
    /// A time span in a steady-state simulation.
    #[error("{option} {region}@{span}: a time span needs --timeline")]
    SpanWithoutTimeline {
        /// The option.
        option: &'static str,
        /// The region.
        region: String,
        /// The span given.
        span: Span,
    },
    /// A span that starts after the timeline ends.
    #[error("{option} {region}@{span}: starts after the timeline ends ({})", DurationText::from_millis(*length_ms).as_str())]
    SpanAfterEnd {
        /// The option.
        option: &'static str,
        /// The region.
        region: String,
        /// The span given.
        span: Span,
        /// The timeline's length.
        length_ms: u64,
    },
    /// The plan's policy is refused by the core (a validated plan never is).
    #[error("the plan's policy is refused by the filter: {0}")]
    Policy(String),
}

/// Per service (`name.namespace`), per region: the percent of requests it took
/// (one decimal; each service's numbers sum to 100). [`MESH_DEFAULT`] holds the share
/// no region admitted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Split(pub BTreeMap<String, BTreeMap<String, f64>>);

/// Runs `scenario` against `plan` (a plan that validated) and returns the split once
/// it has settled: every change holds all along.
pub fn simulate(plan: &Plan, scenario: &Scenario) -> Result<Split, ScenarioError> {
    if let Some(c) = scenario.changes.iter().find(|c| c.during != Span::ALWAYS) {
        return Err(ScenarioError::SpanWithoutTimeline {
            option: c.condition.option(),
            region: c.region.clone(),
            span: c.during,
        });
    }
    let policies = Policies::compile(plan, scenario)?;
    let services = policies
        .names()
        .into_iter()
        .map(|name| {
            let mut counts = policies.regions_of(&name);
            if let Some(proxy) = Proxy::new(&policies, &name, scenario) {
                proxy.run(WARM_UP_MS + MEASURED_MS, |now, to| {
                    if now >= WARM_UP_MS {
                        *counts.entry(to.to_owned()).or_default() += 1;
                    }
                });
            }
            let split = percents(&counts);
            (name, split)
        })
        .collect();
    Ok(Split(services))
}

/// The plan's compiled sidecar policy for each set of drained regions the scenario
/// goes through (a drain is a policy update).
pub(crate) struct Policies {
    by_drained: BTreeMap<BTreeSet<String>, CompiledPolicy>,
    source: Option<RegionId>,
}

impl Policies {
    pub(crate) fn compile(plan: &Plan, scenario: &Scenario) -> Result<Self, ScenarioError> {
        let topo = Topology::new(plan);
        check(&topo, scenario)?;
        let wire = wire_policy(&topo, PolicyFor::Sidecars, TOKEN);
        let mut by_drained = BTreeMap::new();
        for moment in scenario.drain_moments() {
            let drained = scenario.drained_at(moment);
            if by_drained.contains_key(&drained) {
                continue;
            }
            let mut wire = wire.clone();
            wire.drain.extend(drained.iter().cloned());
            wire.drain.sort();
            wire.drain.dedup();
            let json =
                serde_json::to_vec(&wire).map_err(|e| ScenarioError::Policy(e.to_string()))?;
            let policy = parse_policy(&json).map_err(|e| ScenarioError::Policy(e.to_string()))?;
            by_drained.insert(drained, policy);
        }
        let source = by_drained
            .values()
            .next()
            .and_then(|p| p.region_id(&scenario.from));
        Ok(Self { by_drained, source })
    }

    /// The policy in force at `now_ms` and its service `name`.
    fn in_force(
        &self,
        scenario: &Scenario,
        name: &str,
        now_ms: u64,
    ) -> Option<(&CompiledPolicy, &CompiledService)> {
        let policy = self.by_drained.get(&scenario.drained_at(now_ms))?;
        let service = policy.services().iter().find(|s| s.name() == name)?;
        Some((policy, service))
    }

    /// Every service, `name.namespace`.
    pub(crate) fn names(&self) -> Vec<String> {
        self.by_drained.values().next().map_or_else(Vec::new, |p| {
            p.services().iter().map(|s| s.name().to_owned()).collect()
        })
    }

    /// Every region of service `name`, each at 0: the ones that take nothing are
    /// listed too.
    pub(crate) fn regions_of(&self, name: &str) -> BTreeMap<String, u64> {
        self.by_drained
            .values()
            .next()
            .and_then(|p| {
                let service = p.services().iter().find(|s| s.name() == name)?;
                Some(
                    service
                        .regions()
                        .iter()
                        .map(|id| (p.region_name(*id).to_owned(), 0))
                        .collect(),
                )
            })
            .unwrap_or_default()
    }
}

/// The percents a degraded region may fail: a region failing none is healthy.
pub const DEGRADED_PERCENTS: std::ops::RangeInclusive<u8> = 1..=100;

/// Refuses regions the plan does not have and percents outside [`DEGRADED_PERCENTS`].
fn check(topo: &Topology<'_>, scenario: &Scenario) -> Result<(), ScenarioError> {
    let known: Vec<String> = topo.regions().into_iter().map(str::to_owned).collect();
    let named = std::iter::once(("--from", &scenario.from)).chain(
        scenario
            .changes
            .iter()
            .map(|c| (c.condition.option(), &c.region)),
    );
    for (option, region) in named {
        if !known.contains(region) {
            return Err(ScenarioError::UnknownRegion {
                option,
                region: region.clone(),
                known,
            });
        }
    }
    for change in &scenario.changes {
        if let Condition::Degraded(percent) = change.condition
            && !DEGRADED_PERCENTS.contains(&percent)
        {
            return Err(ScenarioError::Percent {
                region: change.region.clone(),
                percent,
            });
        }
    }
    Ok(())
}

/// The shared-data store of one simulated proxy: one key, the host's CAS rules.
#[derive(Debug, Default)]
struct OneKeyStore(RefCell<Option<(Vec<u8>, u32)>>);

impl SharedStore for OneKeyStore {
    fn get(&self, _key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        Ok(self.0.borrow().clone())
    }
    fn set(&self, _key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        let mut entry = self.0.borrow_mut();
        let current = entry.as_ref().map_or(0, |(_, c)| *c);
        if cas != 0 && cas != current {
            return Err(StoreError::CasMismatch);
        }
        *entry = Some((value.to_vec(), current.wrapping_add(1).max(1)));
        Ok(())
    }
}

/// One proxy sending one service's requests through the core.
struct Proxy<'p> {
    policies: &'p Policies,
    scenario: &'p Scenario,
    policy: &'p CompiledPolicy,
    service: &'p CompiledService,
    plan: SourcePlan,
    round_robin: RoundRobin,
    config: HealthConfig,
    /// Per slot: the fraction of failures owed so far, in percent points (a degraded
    /// region fails exactly its percent of every hundred requests, spread evenly).
    owed: Vec<u32>,
    store: OneKeyStore,
    spill: Vec<Window>,
    random: u64,
    /// Policy updates still to come (drains starting or ending), earliest last.
    updates: Vec<u64>,
}

impl<'p> Proxy<'p> {
    /// The proxy as it starts: the policy in force at 0, the table seeded with its
    /// drains (which hold at once: no ramp). `None` when no policy has service `name`.
    fn new(policies: &'p Policies, name: &str, scenario: &'p Scenario) -> Option<Self> {
        let (policy, service) = policies.in_force(scenario, name, 0)?;
        let mut updates = scenario.drain_moments();
        updates.retain(|at| *at > 0);
        updates.reverse();
        let plan = SourcePlan::new(service, policies.source);
        let store = OneKeyStore::default();
        let _ = SharedTable {
            store: &store,
            key: "",
            shape: service.table_shape(),
        }
        .seed(service.drained(), service.health(), 0);
        Some(Self {
            policies,
            scenario,
            policy,
            service,
            round_robin: plan.round_robin(),
            plan,
            config: service.health().clone(),
            owed: vec![0; service.regions().len()],
            spill: vec![Window::default(); service.regions().len()],
            store,
            random: 0x9E37_79B9_7F4A_7C15,
            updates,
        })
    }

    /// Applies the policy in force at `now_ms`, as the filter does on an update: the
    /// service's plan is rebuilt and the shared table seeded with its drain marks
    /// (a drain that starts or ends now ramps).
    fn apply_policy(&mut self, now_ms: u64) {
        let Some((policy, service)) =
            self.policies
                .in_force(self.scenario, self.service.name(), now_ms)
        else {
            return;
        };
        self.policy = policy;
        self.service = service;
        self.plan = SourcePlan::new(service, self.policies.source);
        self.round_robin = self.plan.round_robin();
        self.config = service.health().clone();
        let _ = SharedTable {
            store: &self.store,
            key: "",
            shape: service.table_shape(),
        }
        .seed(service.drained(), service.health(), now_ms);
    }

    /// Sends one request every `1000 / REQUESTS_PER_SECOND` ms until `until_ms`, with
    /// the probe rounds and policy updates in between; `count(now_ms, region)` hears
    /// where each went.
    fn run(mut self, until_ms: u64, mut count: impl FnMut(u64, &str)) {
        let step_ms = 1_000 / REQUESTS_PER_SECOND;
        let mut next_probe_ms = 0;
        let mut now_ms = 0;
        while now_ms < until_ms {
            while let Some(at) = self.updates.pop_if(|at| *at <= now_ms) {
                self.apply_policy(at);
            }
            if let Some(interval) = self.config.probe.as_ref().map(|p| p.interval_ms) {
                while next_probe_ms <= now_ms {
                    self.probe_round(next_probe_ms);
                    next_probe_ms += interval.max(1);
                }
            }
            let chosen = self.request(now_ms);
            count(now_ms, &chosen);
            now_ms += step_ms;
        }
    }

    /// One request: the core decides, the simulated region answers, the core learns.
    /// Returns where it went.
    fn request(&mut self, now_ms: u64) -> String {
        let dice = self.dice();
        let decision = {
            let entry = self.store.0.borrow();
            let table = entry.as_ref().map(|(bytes, _)| bytes.as_slice());
            self.plan.decide(
                &mut self.round_robin,
                &HealthView::new(table, self.service.table_shape()),
                &self.config,
                now_ms,
                dice,
                SpillView::new(&self.spill, now_ms),
            )
        };
        let Decision::Route { slot, reason, .. } = decision else {
            return MESH_DEFAULT.to_owned();
        };
        let region = self
            .service
            .region_of(slot)
            .map_or("", |id| self.policy.region_name(id));
        let facts = match self.answer(slot, now_ms) {
            Some(status) => ResponseFacts {
                status: Some(status),
                flags: ResponseFlags(0),
                served_region: Some(region),
            },
            None => ResponseFacts {
                status: Some(FAILED_STATUS),
                flags: CONNECT_FAILURE,
                served_region: None,
            },
        };
        let config = &self.config;
        let verdict = classify(config, region, &facts);
        // The simulated proxy reads every served region: its windows count all.
        if let (Some((failed, weight)), Some(window)) = (
            sample(verdict, true, 1, reason == RouteReason::Ramping),
            self.spill.get_mut(slot),
        ) {
            window.record(failed, weight, config, now_ms);
        }
        if let Some(observation) = Observation::of(verdict) {
            let recorded = SharedTable {
                store: &self.store,
                key: "",
                shape: self.service.table_shape(),
            }
            .record(slot, observation, config, now_ms);
            if let Ok(Transition::Ejected { .. }) = recorded
                && let Some(window) = self.spill.get_mut(slot)
            {
                window.forget();
            }
        }
        region.to_owned()
    }

    /// One probe of every region of a probed service.
    fn probe_round(&mut self, now_ms: u64) {
        let config = self.config.clone();
        let Some(probe) = config.probe.as_ref() else {
            return;
        };
        for slot in 0..self.service.regions().len() {
            let passed = probe.passes(self.answer(slot, now_ms));
            let _ = SharedTable {
                store: &self.store,
                key: "",
                shape: self.service.table_shape(),
            }
            .record(slot, Observation::Probe { passed }, &config, now_ms);
        }
    }

    /// The status `slot`'s upstreams answer with; `None` when they refuse to connect.
    fn answer(&mut self, slot: usize, now_ms: u64) -> Option<u16> {
        let region = self
            .service
            .region_of(slot)
            .map_or("", |id| self.policy.region_name(id));
        match self.scenario.state_at(region, now_ms) {
            RegionState::Up => Some(200),
            RegionState::Down => None,
            RegionState::Degraded(percent) => {
                let mut failed = false;
                if let Some(owed) = self.owed.get_mut(slot) {
                    *owed += u32::from(percent);
                    failed = *owed >= 100;
                    if failed {
                        *owed -= 100;
                    }
                }
                Some(if failed { FAILED_STATUS } else { 200 })
            }
        }
    }

    /// A proxy's dice: only ramps and partial shares read it.
    fn dice(&mut self) -> u32 {
        let (next, number) = geolb_policy::dice::roll(self.random);
        self.random = next;
        number
    }
}

/// Counts to percents with one decimal that sum to exactly 100 (largest remainder).
fn percents(counts: &BTreeMap<String, u64>) -> BTreeMap<String, f64> {
    let total: u64 = counts.values().sum();
    if total == 0 {
        return BTreeMap::new();
    }
    // In tenths of a percent, 1,000 in all: each region's whole tenths, then the tenths
    // left over go to the largest remainders.
    let mut tenths: Vec<(&String, u64, u64)> = counts
        .iter()
        .map(|(name, n)| (name, n * 1_000 / total, n * 1_000 % total))
        .collect();
    let left_over = 1_000 - tenths.iter().map(|(_, whole, _)| whole).sum::<u64>();
    tenths.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)));
    for entry in tenths
        .iter_mut()
        .take(usize::try_from(left_over).unwrap_or(0))
    {
        entry.1 += 1;
    }
    tenths
        .into_iter()
        .map(|(name, t, _)| {
            (
                name.clone(),
                f64::from(u32::try_from(t).unwrap_or(0)) / 10.0,
            )
        })
        .collect()
}

/// The split as a table for people: one block per service.
pub fn table(split: &Split) -> String {
    let mut text = String::new();
    for (service, regions) in &split.0 {
        text.push_str(service);
        text.push('\n');
        for (region, percent) in regions {
            text.push_str(&format!("  {region:<24} {percent:>5.1}%\n"));
        }
    }
    text
}
