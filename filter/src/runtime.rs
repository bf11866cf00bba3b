//! The per-VM runtime of an active policy: per service its plan, round-robin state,
//! copy of the shared health, spill windows and counters, and the VM's part in active
//! probing. Requests ask it to decide and to record; the root's tick refreshes it.
//! All its state is behind these methods.

use std::cell::{Cell, RefCell};

use geolb_policy::health::{HealthView, Transition};
use geolb_policy::outcome::Verdict;
use geolb_policy::probe::Schedule;
use geolb_policy::routing::{Decision, RoundRobin, SourcePlan, SpillView};
use geolb_policy::source::{ProxyIdentity, SourceRegion};
use geolb_policy::spill::{Window, sample};
use geolb_policy::store::{
    Observation, SharedTable, StoreError, health_key, hold_lease, prober_key, take_vm_number,
    vm_number_key,
};
use geolb_policy::{CompiledPolicy, CompiledService, ServiceId, Slot};

use crate::host::{Host, Level};
use crate::metrics::{GlobalCounters, RegionCounter, ServiceCounters};

/// A success's served region is checked once every this many successes per region and
/// VM, and on the first success after every tick: a region whose traffic Envoy's
/// priority failover serves elsewhere is noticed within this many of its requests or
/// one tick, whichever comes first.
pub const LOCALITY_CHECK_EVERY: u32 = 16;

/// How often each VM re-reads the shared health of the services it routes: the
/// longest another worker's ejection takes to reach this one.
pub const HEALTH_REFRESH_MS: u32 = 100;

/// The `user-agent` of probes, so that access logs and apps can tell them apart.
pub const PROBE_USER_AGENT: &str = "geolb-probe";

/// A valid policy ready for requests.
#[derive(Debug)]
pub struct Active {
    policy: CompiledPolicy,
    services: Vec<ServiceRuntime>,
    /// xorshift state for the ramp dice (randomness for the pure core).
    rng: Cell<u64>,
    /// The time at this VM's last tick (ms): graded spill's clock, 100 ms coarse, so
    /// the request path asks the host for the time only when an ejection or a drain
    /// ramp needs it.
    clock: Cell<u64>,
    /// Active probing, when a service has probes.
    prober: Option<RefCell<Prober>>,
}

/// This VM's part in the proxy's active probing: it probes only while it holds the
/// proxy's lease; the probes it sent and awaits.
#[derive(Debug)]
struct Prober {
    lease_key: String,
    numbers_key: String,
    schedule: Schedule,
    holding: bool,
    in_flight: Vec<InFlight>,
    /// Per (service, slot) whose dispatch the host refused: logged once.
    refused: Vec<(usize, Slot)>,
}

/// A probe awaiting its answer.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    token: u32,
    service: u16,
    slot: Slot,
}

/// One service as this VM routes it.
#[derive(Debug)]
pub struct ServiceRuntime {
    plan: SourcePlan,
    round_robin: RefCell<RoundRobin>,
    health_key: String,
    counters: ServiceCounters,
    /// This VM's copy of the service's shared health table: refreshed on every tick
    /// while the service has traffic, and right after this VM records an outcome, so
    /// the request path makes no shared-data call.
    health: RefCell<Option<Vec<u8>>>,
    loaded: Cell<bool>,
    used_since_tick: Cell<bool>,
    /// Per slot: successes left until the next served-region check.
    locality_countdown: Vec<Cell<u32>>,
    /// Per slot: this VM's recent outcomes, for graded spill (never shared: each
    /// worker measures its own sample of the traffic).
    spill: RefCell<Vec<Window>>,
}

impl ServiceRuntime {
    /// The runtime of `service` for a proxy in `source`, its shared table seeded.
    fn new<H: Host>(
        host: &H,
        plugin: &str,
        policy: &CompiledPolicy,
        service: &CompiledService,
        source: Option<geolb_policy::RegionId>,
    ) -> Self {
        let plan = SourcePlan::new(service, source);
        let key = health_key(plugin, service.name());
        match (SharedTable {
            store: host,
            key: &key,
            shape: service.table_shape(),
        })
        .seed(service.drained(), service.health(), host.now_ms())
        {
            Ok(changed) => log_drain_changes(host, policy, service, &changed),
            Err(err) => host.log(
                Level::Warn,
                &format!("geolb: cannot seed shared health {key}: {err}"),
            ),
        }
        show_drained(host, policy, service);
        let regions = service.regions().len();
        Self {
            round_robin: RefCell::new(plan.round_robin()),
            plan,
            health_key: key,
            counters: ServiceCounters::define(host, policy, service),
            health: RefCell::new(None),
            loaded: Cell::new(false),
            used_since_tick: Cell::new(false),
            locality_countdown: (0..regions).map(|_| Cell::new(0)).collect(),
            spill: RefCell::new(vec![Window::default(); regions]),
        }
    }

    /// The service's counters.
    pub(crate) fn counters(&self) -> &ServiceCounters {
        &self.counters
    }

    /// Marks the service as having had traffic since the last tick (its counts and
    /// health copy are then handled by the next tick).
    pub(crate) fn mark_active(&self) {
        self.used_since_tick.set(true);
    }

    /// Whether this success's served region should be read (and counts it).
    pub(crate) fn locality_check_due(&self, slot: Slot) -> bool {
        let Some(countdown) = self.locality_countdown.get(slot) else {
            return false;
        };
        match countdown.get() {
            0 => {
                countdown.set(LOCALITY_CHECK_EVERY - 1);
                true
            }
            n => {
                countdown.set(n - 1);
                false
            }
        }
    }

    /// Gives a finished request's verdict to graded spill, which learns in this VM
    /// alone (see [`sample`]). `checked`: its served region was read; `ramping`: the
    /// region was ramping back or draining.
    pub(crate) fn learn(
        &self,
        service: &CompiledService,
        slot: Slot,
        verdict: Verdict,
        checked: bool,
        ramping: bool,
        clock: u64,
    ) {
        if let (Some((failed, weight)), Some(window)) = (
            sample(verdict, checked, LOCALITY_CHECK_EVERY, ramping),
            self.spill.borrow_mut().get_mut(slot),
        ) {
            window.record(failed, weight, service.health(), clock);
        }
    }

    /// Records `observation` of `slot` in the shared table and in this VM's view of it:
    /// the copy re-read (this VM sees its own news at once, others on their next
    /// tick), an ejection counted and the region's spill window forgotten, a store
    /// failure counted. Returns the time it used and what changed.
    pub(crate) fn record<H: Host>(
        &self,
        host: &H,
        service: &CompiledService,
        slot: Slot,
        observation: Observation,
    ) -> (u64, Result<Transition, StoreError>) {
        let now = host.now_ms();
        let recorded = SharedTable {
            store: host,
            key: &self.health_key,
            shape: service.table_shape(),
        }
        .record(slot, observation, service.health(), now);
        self.reload_health(host);
        match &recorded {
            Ok(Transition::Ejected { .. }) => {
                self.counters.region(RegionCounter::Ejections, slot);
                if let Some(window) = self.spill.borrow_mut().get_mut(slot) {
                    window.forget();
                }
            }
            Ok(_) => {}
            Err(_) => self.counters.health_store_error(),
        }
        (now, recorded)
    }

    /// `on_tick` work: a service that had traffic gets fresh health, its counters
    /// flushed and the next success of every region checked; an idle one's copy is
    /// dropped, so that its next request reads the shared table instead of a copy
    /// that may be stale by then.
    fn on_tick<H: Host>(&self, host: &H) {
        if !self.used_since_tick.replace(false) {
            self.loaded.set(false);
            return;
        }
        self.reload_health(host);
        self.counters.flush(host);
        for countdown in &self.locality_countdown {
            countdown.set(0);
        }
    }

    /// Re-reads the shared table.
    fn reload_health<H: Host>(&self, host: &H) {
        let fresh = host
            .get(&self.health_key)
            .ok()
            .flatten()
            .map(|(bytes, _)| bytes);
        *self.health.borrow_mut() = fresh;
        self.loaded.set(true);
    }
}

impl Active {
    /// Builds the per-VM runtime of a valid policy: source region, plans, counters,
    /// seeded shared health. `first_sighting`: this VM is the proxy's first to apply
    /// this update, so it logs and counts what is per proxy (the source region).
    pub(crate) fn activate<H: Host>(
        host: &H,
        plugin: &str,
        policy: CompiledPolicy,
        node: ProxyIdentity<'_>,
        counters: &GlobalCounters,
        first_sighting: bool,
    ) -> Self {
        let resolution = policy.source_region(node);
        let source = resolution.region();
        // Per proxy, not per VM: only the first VM to apply this update tells.
        let conflict = matches!(
            resolution,
            SourceRegion::Known {
                locality_disagrees: Some(_),
                ..
            }
        );
        if first_sighting && (conflict || source.is_none()) {
            if conflict {
                GlobalCounters::bump(host, counters.source_region_conflicts);
            }
            host.log(
                Level::Warn,
                &format!("geolb: {}", resolution.explain(&policy)),
            );
        }
        let services = policy
            .services()
            .iter()
            .map(|service| ServiceRuntime::new(host, plugin, &policy, service, source))
            .collect();
        host.log(
            Level::Info,
            &format!(
                "geolb: policy {:016x} active: {} services, {}",
                policy.fingerprint(),
                policy.services().len(),
                resolution.explain(&policy)
            ),
        );
        let seed_value = (host.now_ms() ^ policy.fingerprint()) | 1;
        let prober = policy
            .services()
            .iter()
            .any(|s| s.health().probe.is_some())
            .then(|| {
                RefCell::new(Prober {
                    lease_key: prober_key(plugin),
                    numbers_key: vm_number_key(plugin),
                    schedule: Schedule::new(policy.services().len()),
                    holding: false,
                    in_flight: Vec::new(),
                    refused: Vec::new(),
                })
            });
        Self {
            policy,
            services,
            rng: Cell::new(seed_value),
            clock: Cell::new(host.now_ms()),
            prober,
        }
    }

    /// The compiled policy.
    pub(crate) fn policy(&self) -> &CompiledPolicy {
        &self.policy
    }

    /// The time at this VM's last tick (ms).
    pub(crate) fn clock(&self) -> u64 {
        self.clock.get()
    }

    /// A service's runtime state and compiled rules.
    pub(crate) fn service(&self, id: ServiceId) -> Option<(&ServiceRuntime, &CompiledService)> {
        Some((
            self.services.get(usize::from(id.0))?,
            self.policy.service(id)?,
        ))
    }

    /// The core's decision for a request to `runtime`'s service, over this VM's copy
    /// of its health (loaded on first use), and whether the chosen region's record
    /// was pristine (a success then changes nothing).
    pub(crate) fn decide<H: Host>(
        &self,
        host: &H,
        runtime: &ServiceRuntime,
        service: &CompiledService,
    ) -> (Decision, bool) {
        if !runtime.loaded.get() {
            runtime.reload_health(host);
        }
        runtime.mark_active();
        let health = runtime.health.borrow();
        let view = HealthView::new(health.as_deref(), service.table_shape());
        // A table without ejections or drain ramps reads the same at any time: skip
        // the clock.
        let now = if view.depends_on_time() {
            host.now_ms()
        } else {
            0
        };
        let windows = runtime.spill.borrow();
        let decision = runtime.plan.decide(
            &mut runtime.round_robin.borrow_mut(),
            &view,
            service.health(),
            now,
            self.dice(),
            SpillView::new(&windows, self.clock.get()),
        );
        let pristine = match decision {
            Decision::Route { slot, .. } => view.get(slot).is_pristine(),
            _ => false,
        };
        (decision, pristine)
    }

    /// Next pseudo-random number: only decides ramp admissions.
    fn dice(&self) -> u32 {
        let (next, number) = geolb_policy::dice::roll(self.rng.get());
        self.rng.set(next);
        number
    }

    /// `on_tick`: the clock, this VM's probes when it holds the proxy's prober lease
    /// (`prober_id`: the root's number among the proxy's VMs, taken when first
    /// needed), and every service's tick work.
    pub(crate) fn tick<H: Host>(&self, host: &H, prober_id: &Cell<Option<u64>>) {
        self.clock.set(host.now_ms());
        if let Some(prober) = &self.prober {
            self.probe_round(host, prober_id, &mut prober.borrow_mut());
        }
        for service in &self.services {
            service.on_tick(host);
        }
    }

    /// Sends the probes that are due, if this VM holds (or can take) the lease.
    fn probe_round<H: Host>(&self, host: &H, prober_id: &Cell<Option<u64>>, prober: &mut Prober) {
        let now = self.clock.get();
        let owner = match prober_id.get() {
            Some(id) => id,
            None => match take_vm_number(host, &prober.numbers_key) {
                Ok(id) => {
                    prober_id.set(Some(id));
                    id
                }
                Err(err) => {
                    host.log(Level::Warn, &format!("geolb: no prober number yet: {err}"));
                    return;
                }
            },
        };
        let holding = hold_lease(host, &prober.lease_key, owner, now).unwrap_or(false);
        if !holding {
            prober.holding = false;
            return;
        }
        if !prober.holding {
            // Taken over (or first): probe every service now rather than a whole
            // interval after the previous holder's last round.
            prober.holding = true;
            prober.schedule.restart();
        }
        for (index, service) in self.policy.services().iter().enumerate() {
            let Some(probe) = &service.health().probe else {
                continue;
            };
            if !prober.schedule.take_due(index, probe.interval_ms, now) {
                continue;
            }
            let (Ok(id), Some(runtime)) = (u16::try_from(index), self.services.get(index)) else {
                continue;
            };
            let headers = [
                (":method", "GET"),
                (":path", probe.path.as_str()),
                (":authority", probe.authority.as_str()),
                ("user-agent", PROBE_USER_AGENT),
            ];
            for (slot, cluster) in probe.clusters.iter().enumerate() {
                if prober
                    .in_flight
                    .iter()
                    .any(|f| f.service == id && f.slot == slot)
                {
                    continue;
                }
                match host.dispatch_http_call(cluster, &headers, probe.timeout_ms) {
                    Ok(token) => {
                        prober.in_flight.push(InFlight {
                            token,
                            service: id,
                            slot,
                        });
                        runtime.counters.region(RegionCounter::Probes, slot);
                        runtime.mark_active();
                    }
                    Err(why) if !prober.refused.contains(&(index, slot)) => {
                        prober.refused.push((index, slot));
                        host.log(
                            Level::Warn,
                            &format!(
                                "geolb: cannot probe service {} through cluster {cluster}: {why} (is the probe subset in its DestinationRule?); its health stays with live traffic",
                                service.name()
                            ),
                        );
                    }
                    Err(_) => {}
                }
            }
        }
    }

    /// `on_http_call_response`: a probe's answer (or its failure) reaches the shared
    /// health of its region.
    pub(crate) fn probe_answered<H: Host>(&self, host: &H, token: u32) {
        let Some(prober) = &self.prober else {
            return;
        };
        let flight = {
            let mut prober = prober.borrow_mut();
            let Some(at) = prober.in_flight.iter().position(|f| f.token == token) else {
                // Sent under an earlier policy: its answer means nothing to this one.
                return;
            };
            prober.in_flight.swap_remove(at)
        };
        let Some((runtime, service)) = self.service(ServiceId(flight.service)) else {
            return;
        };
        let Some(probe) = &service.health().probe else {
            return;
        };
        let status = host.http_call_status();
        let passed = probe.passes(status);
        if !passed {
            runtime
                .counters
                .region(RegionCounter::ProbeFailures, flight.slot);
        }
        let (now, recorded) =
            runtime.record(host, service, flight.slot, Observation::Probe { passed });
        runtime.mark_active();
        let region = service
            .region_of(flight.slot)
            .map_or("", |r| self.policy.region_name(r));
        match recorded {
            Ok(Transition::Ejected { until_ms }) => host.log(
                Level::Warn,
                &format!(
                    "geolb: region {region} of service {} ejected for {} ms: {} probes in a row failed (last: {})",
                    service.name(),
                    until_ms.saturating_sub(now),
                    probe.unhealthy_after,
                    status.map_or_else(|| "no answer".to_owned(), |s| format!("status {s}")),
                ),
            ),
            Ok(Transition::ProbesPassed) => host.log(
                Level::Info,
                &format!(
                    "geolb: region {region} of service {} passed {} probes in a row: it returns, ramping over {} ms",
                    service.name(),
                    probe.healthy_after,
                    service.health().recovery_ramp_ms,
                ),
            ),
            Ok(Transition::None | Transition::RampRestarted) => {}
            Err(err) => host.log(
                Level::Warn,
                &format!("geolb: probe of {} not recorded: {err}", service.name()),
            ),
        }
    }
}

/// One log line per region whose drain mark this VM was the proxy's first to apply.
fn log_drain_changes<H: Host>(
    host: &H,
    policy: &CompiledPolicy,
    service: &CompiledService,
    changed: &[Slot],
) {
    let ramp_ms = service.health().drain_ramp_ms;
    for &slot in changed {
        let Some(region) = service.region_of(slot) else {
            continue;
        };
        let drained = service.drained().get(slot).copied().unwrap_or(false);
        host.log(
            Level::Info,
            &format!(
                "geolb: region {} of service {} {}, over {ramp_ms} ms",
                policy.region_name(region),
                service.name(),
                if drained {
                    "drained: its share moves down its failover chain"
                } else {
                    "no longer drained: its share comes back"
                },
            ),
        );
    }
}

/// Sets the `geolb.drained` gauge of each region of `service`: 1 while the policy
/// drains it.
fn show_drained<H: Host>(host: &H, policy: &CompiledPolicy, service: &CompiledService) {
    for (slot, region) in service.regions().iter().enumerate() {
        let name = format!(
            "geolb.drained;service={};region={}",
            service.name(),
            policy.region_name(*region)
        );
        if let Some(gauge) = host.define_gauge(&name) {
            let drained = service.drained().get(slot).copied().unwrap_or(false);
            host.set_gauge(gauge, u64::from(drained));
        }
    }
}
