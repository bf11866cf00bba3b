//! The root context: a configuration in, the VM's mode out (an active policy's
//! runtime, pass-through, or unconfigured), and the timer and probe answers handed
//! to the active runtime.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use geolb_policy::lifecycle::{InvalidConfig, on_invalid_config};
use geolb_policy::source::ProxyIdentity;
use geolb_policy::store::{applied_key, claim_update};
use geolb_policy::{fnv1a, parse_policy, passthrough_routing_header};

use crate::host::{Host, Level, string_property};
use crate::metrics::GlobalCounters;
use crate::request::Request;
use crate::runtime::{Active, HEALTH_REFRESH_MS};

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
                let active = Rc::new(Active::activate(
                    host,
                    &plugin,
                    policy,
                    node.identity(),
                    &counters,
                    first,
                ));
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
            active.tick(host, &self.prober_id);
        }
    }

    /// `on_http_call_response`: a probe's answer (or its failure) reaches the shared
    /// health of its region.
    pub fn probe_answered<H: Host>(&self, host: &H, token: u32) {
        if let Mode::Active(active) = &self.mode {
            active.probe_answered(host, token);
        }
    }

    /// Whether requests are being routed (a valid policy is active).
    pub fn is_active(&self) -> bool {
        matches!(self.mode, Mode::Active(_))
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

/// The proxy's Istio cluster ID, as the injector sets it (`ISTIO_META_CLUSTER_ID`).
/// How it reads in Envoy 1.40 is pinned in `tests/tests/envoy_facts.rs`.
pub const NODE_CLUSTER_ID: [&str; 4] = ["xds", "node", "metadata", "CLUSTER_ID"];
/// The proxy's node id (`sidecar~...`, `router~...` for gateways).
pub const NODE_ID: [&str; 3] = ["xds", "node", "id"];
/// The proxy's region as istio-agent wrote it into the bootstrap, when it did.
pub const NODE_LOCALITY_REGION: [&str; 4] = ["xds", "node", "locality", "region"];
