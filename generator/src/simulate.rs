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

use geolb_policy::health::{HealthConfig, HealthView, Transition};
use geolb_policy::outcome::{ResponseFacts, ResponseFlags, classify};
use geolb_policy::routing::{Decision, RouteReason, SourcePlan, SpillView};
use geolb_policy::spill::{Window, sample};
use geolb_policy::store::{self, Observation, SharedStore, StoreError};
use geolb_policy::{CompiledPolicy, CompiledService, RegionId, parse_policy};
use serde::Serialize;

use crate::plan::Plan;
use crate::policy::{PolicyFor, wire_policy};
use crate::topology::Topology;

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
const TOKEN: &str = "simulation-only-token-never-sent";

/// What the upstreams of one region do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionState {
    /// Answers every request.
    Up,
    /// Refuses every connection.
    Down,
    /// Answers 503 to this percent of its requests (1..=100).
    Degraded(u8),
}

/// A failure scenario: where the proxies are and what each region does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scenario {
    /// The proxies' region.
    pub from: String,
    /// Regions whose upstreams refuse every connection.
    pub down: BTreeSet<String>,
    /// Regions that fail a percent of their requests.
    pub degraded: BTreeMap<String, u8>,
    /// Regions the plan drains (as `regions[].drained: true` would).
    pub drained: BTreeSet<String>,
}

/// A scenario that names something the plan does not have.
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

/// Runs `scenario` against `plan` (a plan that validated) and returns the split.
pub fn simulate(plan: &Plan, scenario: &Scenario) -> Result<Split, ScenarioError> {
    let topo = Topology::new(plan);
    check(&topo, scenario)?;
    let mut wire = wire_policy(&topo, PolicyFor::Sidecars, TOKEN);
    wire.drain.extend(scenario.drained.iter().cloned());
    wire.drain.sort();
    wire.drain.dedup();
    let json = serde_json::to_vec(&wire).map_err(|e| ScenarioError::Policy(e.to_string()))?;
    let policy = parse_policy(&json).map_err(|e| ScenarioError::Policy(e.to_string()))?;
    let source = policy.region_id(&scenario.from);
    let services = policy
        .services()
        .iter()
        .map(|service| {
            let counts = Proxy::new(&policy, service, source, scenario).run();
            (service.name().to_owned(), percents(&counts))
        })
        .collect();
    Ok(Split(services))
}

/// Refuses regions the plan does not have.
fn check(topo: &Topology<'_>, scenario: &Scenario) -> Result<(), ScenarioError> {
    let known: Vec<String> = topo.regions().into_iter().map(str::to_owned).collect();
    let unknown = |option: &'static str, region: &String| {
        (!known.contains(region)).then(|| ScenarioError::UnknownRegion {
            option,
            region: region.clone(),
            known: known.clone(),
        })
    };
    let named = std::iter::once(("--from", &scenario.from))
        .chain(scenario.down.iter().map(|r| ("--down", r)))
        .chain(scenario.degraded.keys().map(|r| ("--degraded", r)))
        .chain(scenario.drained.iter().map(|r| ("--drained", r)));
    for (option, region) in named {
        if let Some(error) = unknown(option, region) {
            return Err(error);
        }
    }
    match scenario
        .degraded
        .iter()
        .find(|(_, percent)| !(1..=100).contains(*percent))
    {
        Some((region, percent)) => Err(ScenarioError::Percent {
            region: region.clone(),
            percent: *percent,
        }),
        None => Ok(()),
    }
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
    policy: &'p CompiledPolicy,
    service: &'p CompiledService,
    plan: SourcePlan,
    /// What each slot's upstreams do.
    states: Vec<RegionState>,
    /// Per slot: the fraction of failures owed so far, in percent points (a degraded
    /// region fails exactly its percent of every hundred requests, spread evenly).
    owed: Vec<u32>,
    store: OneKeyStore,
    spill: Vec<Window>,
    random: u64,
}

impl<'p> Proxy<'p> {
    fn new(
        policy: &'p CompiledPolicy,
        service: &'p CompiledService,
        source: Option<RegionId>,
        scenario: &Scenario,
    ) -> Self {
        let states = service
            .regions()
            .iter()
            .map(|id| {
                let name = policy.region_name(*id);
                if scenario.down.contains(name) {
                    RegionState::Down
                } else if let Some(percent) = scenario.degraded.get(name) {
                    RegionState::Degraded(*percent)
                } else {
                    RegionState::Up
                }
            })
            .collect::<Vec<_>>();
        let store = OneKeyStore::default();
        // As a proxy starts: the table seeded with the policy's drains, no ramp.
        let _ = store::seed(&store, "", service.table_shape(), service.drained(), 0);
        Self {
            policy,
            service,
            plan: SourcePlan::new(service, source),
            owed: vec![0; states.len()],
            spill: vec![Window::default(); states.len()],
            states,
            store,
            random: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// Sends the requests; counts per region name over the measured span.
    fn run(mut self) -> BTreeMap<String, u64> {
        let config = self.service.health().clone();
        let mut round_robin = self.plan.round_robin();
        let step_ms = 1_000 / REQUESTS_PER_SECOND;
        let probe_every = config.probe.as_ref().map(|p| p.interval_ms);
        let mut next_probe_ms = 0;
        // Every region of the service is listed, the ones that took nothing too.
        let mut counts: BTreeMap<String, u64> = self
            .service
            .regions()
            .iter()
            .map(|id| (self.policy.region_name(*id).to_owned(), 0))
            .collect();
        let mut now_ms = 0;
        while now_ms < WARM_UP_MS + MEASURED_MS {
            if let Some(interval) = probe_every {
                while next_probe_ms <= now_ms {
                    self.probe_round(&config, next_probe_ms);
                    next_probe_ms += interval;
                }
            }
            let chosen = self.request(&config, &mut round_robin, now_ms);
            if now_ms >= WARM_UP_MS {
                *counts.entry(chosen).or_default() += 1;
            }
            now_ms += step_ms;
        }
        counts
    }

    /// One request: the core decides, the simulated region answers, the core learns.
    /// Returns where it went.
    fn request(
        &mut self,
        config: &HealthConfig,
        round_robin: &mut geolb_policy::routing::RoundRobin,
        now_ms: u64,
    ) -> String {
        let dice = self.dice();
        let decision = {
            let entry = self.store.0.borrow();
            let table = entry.as_ref().map(|(bytes, _)| bytes.as_slice());
            self.plan.decide(
                round_robin,
                &HealthView::new(table, self.service.table_shape()),
                config,
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
        let facts = match self.answer(slot) {
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
        let verdict = classify(config, region, &facts);
        // The simulated proxy reads every served region: its windows count all.
        if let (Some((failed, weight)), Some(window)) = (
            sample(verdict, true, 1, reason == RouteReason::Ramping),
            self.spill.get_mut(slot),
        ) {
            window.record(failed, weight, config, now_ms);
        }
        if let Some(observation) = Observation::of(verdict) {
            let recorded = store::record(
                &self.store,
                "",
                self.service.table_shape(),
                slot,
                observation,
                config,
                now_ms,
            );
            if let Ok(Transition::Ejected { .. }) = recorded
                && let Some(window) = self.spill.get_mut(slot)
            {
                window.forget();
            }
        }
        region.to_owned()
    }

    /// One probe of every region of a probed service.
    fn probe_round(&mut self, config: &HealthConfig, now_ms: u64) {
        let Some(probe) = config.probe.as_ref() else {
            return;
        };
        for slot in 0..self.states.len() {
            let passed = probe.passes(self.answer(slot));
            let _ = store::record(
                &self.store,
                "",
                self.service.table_shape(),
                slot,
                Observation::Probe { passed },
                config,
                now_ms,
            );
        }
    }

    /// The status `slot`'s upstreams answer with; `None` when they refuse to connect.
    fn answer(&mut self, slot: usize) -> Option<u16> {
        match self.states.get(slot).copied().unwrap_or(RegionState::Up) {
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

    /// xorshift64*, as a proxy's dice: only ramps and partial shares read it.
    fn dice(&mut self) -> u32 {
        self.random ^= self.random >> 12;
        self.random ^= self.random << 25;
        self.random ^= self.random >> 27;
        u32::try_from(self.random.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32).unwrap_or(0)
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
