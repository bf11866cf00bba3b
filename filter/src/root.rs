//! Per-VM state: the active policy, compiled once per configuration, with the
//! per-service round-robin state and counter ids the requests use.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use geolb_policy::health::Transition;
use geolb_policy::lifecycle::{InvalidConfig, on_invalid_config};
use geolb_policy::probe::Schedule;
use geolb_policy::routing::{RoundRobin, SourcePlan};
use geolb_policy::source::{ProxyIdentity, SourceRegion};
use geolb_policy::spill::Window;
use geolb_policy::store::{
    Observation, SharedTable, applied_key, claim_update, health_key, hold_lease, prober_key,
    take_vm_number, vm_number_key,
};
use geolb_policy::{
    CompiledPolicy, CompiledService, DEFAULT_ROUTING_HEADER, ServiceId, Slot, fnv1a, parse_policy,
    passthrough_routing_header,
};

use crate::host::{Host, Level, string_property};
use crate::metrics::{GlobalCounters, RegionCounter, ServiceCounters};
use crate::request::Request;

/// Name used in keys and logs when the host does not tell the plugin's name.
const FALLBACK_PLUGIN_NAME: &str = "geolb";

/// What the VM does with requests.
#[derive(Debug, Default)]
enum Mode {
    /// Not configured yet.
    #[default]
    Unconfigured,
    /// The first policy was invalid: route nothing, only strip client routing headers
    /// (the header the refused configuration names, when it names a valid one).
    Passthrough(Rc<str>),
    /// Routing with a valid policy.
    Active(Rc<Active>),
}

/// The filter's root context logic. Envoy creates one root context per configuration
/// in every VM; the roots of one VM share its [`VmMemory`].
#[derive(Debug, Default)]
pub struct Root {
    mode: Mode,
    counters: Option<GlobalCounters>,
    vm: Rc<VmMemory>,
    /// This root's number among the proxy's VMs (its name as the prober lease's
    /// owner), taken on the first tick that needs it.
    prober_id: Cell<Option<u64>>,
}

/// What the root contexts of one VM share: the policy the VM applied last. A VM that
/// has one is not Envoy's configuration canary (a fresh clone per configuration).
#[derive(Debug, Default)]
pub struct VmMemory {
    last_active: RefCell<Option<Rc<Active>>>,
}

/// A valid policy ready for requests.
#[derive(Debug)]
pub struct Active {
    pub(crate) policy: CompiledPolicy,
    pub(crate) services: Vec<ServiceRuntime>,
    /// xorshift state for the ramp dice (randomness for the pure core).
    rng: Cell<u64>,
    /// The time at this VM's last tick (ms): graded spill's clock, 100 ms coarse, so
    /// the request path asks the host for the time only when an ejection or a drain
    /// ramp needs it.
    pub(crate) clock: Cell<u64>,
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

/// The `user-agent` of probes, so that access logs and apps can tell them apart.
pub const PROBE_USER_AGENT: &str = "geolb-probe";

/// One service as this VM routes it.
#[derive(Debug)]
pub struct ServiceRuntime {
    pub(crate) plan: SourcePlan,
    pub(crate) round_robin: RefCell<RoundRobin>,
    pub(crate) health_key: String,
    pub(crate) counters: ServiceCounters,
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
    pub(crate) spill: RefCell<Vec<Window>>,
}

/// A success's served region is checked once every this many successes per region and
/// VM, and on the first success after every tick: a region whose traffic Envoy's
/// priority failover serves elsewhere is noticed within this many of its requests or
/// one tick, whichever comes first.
pub const LOCALITY_CHECK_EVERY: u32 = 16;

/// How often each VM re-reads the shared health of the services it routes: the
/// longest another worker's ejection takes to reach this one.
pub const HEALTH_REFRESH_MS: u32 = 100;

impl ServiceRuntime {
    /// Runs `f` over this VM's copy of the health table (loading it on first use).
    pub(crate) fn with_health<H: Host, R>(
        &self,
        host: &H,
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> R {
        if !self.loaded.get() {
            self.reload_health(host);
        }
        self.mark_active();
        f(self.health.borrow().as_deref())
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

    /// `on_tick` work of a service that had traffic: fresh health, counters flushed,
    /// the next success of every region checked.
    fn on_tick<H: Host>(&self, host: &H) {
        self.reload_health(host);
        self.counters.flush(host);
        for countdown in &self.locality_countdown {
            countdown.set(0);
        }
    }

    /// Re-reads the shared table.
    pub(crate) fn reload_health<H: Host>(&self, host: &H) {
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
    /// A service's runtime state and compiled rules.
    pub(crate) fn service(&self, id: ServiceId) -> Option<(&ServiceRuntime, &CompiledService)> {
        Some((
            self.services.get(usize::from(id.0))?,
            self.policy.service(id)?,
        ))
    }

    /// Next pseudo-random number: only decides ramp admissions.
    pub(crate) fn dice(&self) -> u32 {
        let (next, number) = geolb_policy::dice::roll(self.rng.get());
        self.rng.set(next);
        number
    }
}

impl Root {
    /// A root context in the VM whose roots share `vm` (`Root::default()`: a fresh VM).
    pub fn in_vm(vm: Rc<VmMemory>) -> Self {
        Self {
            vm,
            ..Self::default()
        }
    }

    /// Applies a new plugin configuration. Returns what `on_configure` must return:
    /// `false` refuses an invalid update (Envoy keeps the previous policy serving);
    /// an invalid *first* policy is accepted as pass-through, because Envoy 1.40 exits
    /// when `on_configure` fails at start-up; a VM that applied a policy before never
    /// refuses ([`on_invalid_config`]).
    pub fn configure<H: Host>(&mut self, host: &H) -> bool {
        let counters = *self
            .counters
            .get_or_insert_with(|| GlobalCounters::define(host));
        let plugin = string_property(host, &["plugin_name"])
            .unwrap_or_else(|| FALLBACK_PLUGIN_NAME.to_owned());
        let accepted_key = format!("geolb/{plugin}/accepted");
        let config = host.plugin_configuration().unwrap_or_default();
        // Every VM of the proxy (Envoy's canary, the main thread's, each worker's)
        // applies an accepted configuration: the first of them logs and counts for the
        // proxy. A refusal happens in the canary alone: each is one refused update.
        let claim = || claim_update(host, &applied_key(&plugin), fnv1a(&config)).unwrap_or(true);
        let node = NodeFacts::read(host);
        match parse_policy(&config).and_then(|policy| policy.fit_for(node.identity())) {
            Ok(policy) => {
                let first = claim();
                let active = Rc::new(activate(host, &plugin, policy, &node, &counters, first));
                if let Err(err) = host.set(&accepted_key, b"1", 0) {
                    host.log(
                        Level::Warn,
                        &format!("geolb: cannot record the accepted policy: {err}"),
                    );
                }
                if first {
                    GlobalCounters::bump(host, counters.policy_accepted);
                }
                self.serve(host, active);
                true
            }
            Err(errors) => {
                let problem = errors.to_string();
                let previous = match &self.mode {
                    Mode::Active(active) => Some(active.clone()),
                    _ => self.vm.last_active.borrow().clone(),
                };
                let accepted_before = matches!(host.get(&accepted_key), Ok(Some(_)));
                match (
                    on_invalid_config(accepted_before, previous.is_some()),
                    previous,
                ) {
                    (InvalidConfig::KeepServing, Some(previous)) => {
                        if claim() {
                            GlobalCounters::bump(host, counters.policy_rejected);
                            host.log(Level::Error, &format!("geolb: policy update refused, the previous policy keeps serving (Envoy applied the update without the filter's canary refusing it: proxy-wasm remembered an earlier verdict on the same configuration): {problem}"));
                        }
                        self.serve(host, previous);
                        true
                    }
                    (InvalidConfig::Refuse | InvalidConfig::KeepServing, _) => {
                        GlobalCounters::bump(host, counters.policy_rejected);
                        host.log(Level::Error, &format!("geolb: policy update refused, the previous policy keeps serving: {problem}"));
                        false
                    }
                    (InvalidConfig::PassThrough, _) => {
                        if claim() {
                            GlobalCounters::bump(host, counters.policy_rejected);
                            host.log(
                                Level::Error,
                                &format!("geolb: invalid policy, passing traffic through to the mesh's default routing: {problem}"),
                            );
                        }
                        self.mode =
                            Mode::Passthrough(Rc::from(passthrough_routing_header(&config)));
                        true
                    }
                }
            }
        }
    }

    /// Routes new requests with `active` and remembers it as this VM's last policy.
    fn serve<H: Host>(&mut self, host: &H, active: Rc<Active>) {
        *self.vm.last_active.borrow_mut() = Some(active.clone());
        self.mode = Mode::Active(active);
        host.set_tick_period_ms(HEALTH_REFRESH_MS);
    }

    /// The state a new request starts from.
    pub fn request(&self) -> Request {
        match &self.mode {
            Mode::Active(active) => Request::new(Some(active.clone()), None),
            Mode::Passthrough(header) => Request::new(None, Some(header.clone())),
            Mode::Unconfigured => Request::new(None, None),
        }
    }

    /// `on_tick`: for every service that had traffic since the last tick, refreshes this
    /// VM's copy of the shared health and adds the counts to Envoy's counters; an idle
    /// service's copy is dropped, to be read afresh by its next request. Sends the
    /// probes that are due when this VM holds the proxy's prober lease.
    pub fn tick<H: Host>(&self, host: &H) {
        if let Mode::Active(active) = &self.mode {
            active.clock.set(host.now_ms());
            if let Some(prober) = &active.prober {
                self.probe_round(host, active, &mut prober.borrow_mut());
            }
            for service in &active.services {
                if service.used_since_tick.replace(false) {
                    service.on_tick(host);
                } else {
                    // Idle: no refresh now, but the next request reads the shared table
                    // instead of a copy that may be stale by then.
                    service.loaded.set(false);
                }
            }
        }
    }

    /// Sends the probes that are due, if this VM holds (or can take) the lease.
    fn probe_round<H: Host>(&self, host: &H, active: &Active, prober: &mut Prober) {
        let now = active.clock.get();
        let owner = match self.prober_id.get() {
            Some(id) => id,
            None => match take_vm_number(host, &prober.numbers_key) {
                Ok(id) => {
                    self.prober_id.set(Some(id));
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
        for (index, service) in active.policy.services().iter().enumerate() {
            let Some(probe) = &service.health().probe else {
                continue;
            };
            if !prober.schedule.take_due(index, probe.interval_ms, now) {
                continue;
            }
            let (Ok(id), Some(runtime)) = (u16::try_from(index), active.services.get(index)) else {
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
    pub fn probe_answered<H: Host>(&self, host: &H, token: u32) {
        let Mode::Active(active) = &self.mode else {
            return;
        };
        let Some(prober) = &active.prober else {
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
        let Some((runtime, service)) = active.service(ServiceId(flight.service)) else {
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
        let now = host.now_ms();
        let recorded = SharedTable {
            store: host,
            key: &runtime.health_key,
            shape: service.table_shape(),
        }
        .record(
            flight.slot,
            Observation::Probe { passed },
            service.health(),
            now,
        );
        runtime.reload_health(host);
        runtime.mark_active();
        let region = service
            .region_of(flight.slot)
            .map_or("", |r| active.policy.region_name(r));
        match recorded {
            Ok(Transition::Ejected { until_ms }) => {
                runtime.counters.region(RegionCounter::Ejections, flight.slot);
                if let Some(window) = runtime.spill.borrow_mut().get_mut(flight.slot) {
                    window.forget();
                }
                host.log(
                    Level::Warn,
                    &format!(
                        "geolb: region {region} of service {} ejected for {} ms: {} probes in a row failed (last: {})",
                        service.name(),
                        until_ms.saturating_sub(now),
                        probe.unhealthy_after,
                        status.map_or_else(|| "no answer".to_owned(), |s| format!("status {s}")),
                    ),
                );
            }
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
            Err(err) => {
                runtime.counters.health_store_error();
                host.log(
                    Level::Warn,
                    &format!("geolb: probe of {} not recorded: {err}", service.name()),
                );
            }
        }
    }

    /// Whether requests are being routed (a valid policy is active).
    pub fn is_active(&self) -> bool {
        matches!(self.mode, Mode::Active(_))
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

/// What the proxy's bootstrap node says about it, read once per configuration.
struct NodeFacts {
    cluster_id: Option<String>,
    locality_region: Option<String>,
    node_id: Option<String>,
}

impl NodeFacts {
    fn read<H: Host>(host: &H) -> Self {
        Self {
            cluster_id: string_property(host, &NODE_CLUSTER_ID),
            locality_region: string_property(host, &NODE_LOCALITY_REGION),
            node_id: string_property(host, &NODE_ID),
        }
    }

    fn identity(&self) -> ProxyIdentity<'_> {
        ProxyIdentity {
            cluster_id: self.cluster_id.as_deref(),
            locality_region: self.locality_region.as_deref(),
            node_id: self.node_id.as_deref(),
        }
    }
}

/// Builds the per-VM runtime of a valid policy: source region, plans, counters,
/// seeded shared health. `first_sighting`: this VM is the proxy's first to apply this
/// update, so it logs and counts what is per proxy (the source region).
fn activate<H: Host>(
    host: &H,
    plugin: &str,
    policy: CompiledPolicy,
    node: &NodeFacts,
    counters: &GlobalCounters,
    first_sighting: bool,
) -> Active {
    let resolution = policy.source_region(node.identity());
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
        .map(|service| {
            let plan = SourcePlan::new(service, source);
            let key = health_key(plugin, service.name());
            match (SharedTable {
                store: host,
                key: &key,
                shape: service.table_shape(),
            })
            .seed(service.drained(), service.health(), host.now_ms())
            {
                Ok(changed) => log_drain_changes(host, &policy, service, &changed),
                Err(err) => host.log(
                    Level::Warn,
                    &format!("geolb: cannot seed shared health {key}: {err}"),
                ),
            }
            show_drained(host, &policy, service);
            ServiceRuntime {
                round_robin: RefCell::new(plan.round_robin()),
                plan,
                health_key: key,
                counters: ServiceCounters::define(host, &policy, service),
                health: RefCell::new(None),
                loaded: Cell::new(false),
                used_since_tick: Cell::new(false),
                locality_countdown: (0..service.regions().len()).map(|_| Cell::new(0)).collect(),
                spill: RefCell::new(vec![Window::default(); service.regions().len()]),
            }
        })
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
    Active {
        policy,
        services,
        rng: Cell::new(seed_value),
        clock: Cell::new(host.now_ms()),
        prober,
    }
}

/// The proxy's Istio cluster ID, as the injector sets it (`ISTIO_META_CLUSTER_ID`).
/// How it reads in Envoy 1.40 is pinned in `tests/tests/envoy_facts.rs`.
pub const NODE_CLUSTER_ID: [&str; 4] = ["xds", "node", "metadata", "CLUSTER_ID"];
/// The proxy's node id (`sidecar~...`, `router~...` for gateways).
pub const NODE_ID: [&str; 3] = ["xds", "node", "id"];
/// The proxy's region as istio-agent wrote it into the bootstrap, when it did.
pub const NODE_LOCALITY_REGION: [&str; 4] = ["xds", "node", "locality", "region"];

/// The routing header name requests strip when no configuration arrived (or the
/// refused one names no valid header).
pub(crate) const PASSTHROUGH_HEADER: &str = DEFAULT_ROUTING_HEADER;
