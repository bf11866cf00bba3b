//! The validated, compiled policy: wire types become this once, at configuration
//! time, so the per-request path only looks things up.

use std::collections::{BTreeMap, BTreeSet};

use crate::cluster::OutboundCluster;
use crate::error::{FieldPath, PolicyError, PolicyErrors, Problem, Written};
use crate::flags::{RESPONSE_FLAGS, ResponseFlags};
use crate::hash::fnv1a;
use crate::health::{HealthConfig, TableShape};
use crate::probe::ProbeConfig;
use crate::token::{check_route_token, route_header_value};
use crate::wire::{self, API_VERSION, DEFAULT_ROUTING_HEADER};

/// Index of a region in [`CompiledPolicy::regions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionId(pub u16);

/// Index of a service in [`CompiledPolicy::services`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId(pub u16);

/// Index of a region among the regions where one service runs (its health slot).
pub type Slot = usize;

/// A policy that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledPolicy {
    regions: Vec<String>,
    routing_header: String,
    /// Per region ([`RegionId`] order): the routing header value that routes there,
    /// `<region>.<routeToken>`, built once so a request writes it as is.
    routing_values: Vec<String>,
    source_region: Option<RegionId>,
    /// Istio cluster ID -> region (`clusterRegions`).
    cluster_regions: BTreeMap<String, RegionId>,
    service_from_route: bool,
    pub(crate) explain: bool,
    services: Vec<CompiledService>,
    hosts: BTreeMap<String, ServiceId>,
    fingerprint: u64,
}

/// One service's compiled rules.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledService {
    name: String,
    /// Slot -> region where the service runs.
    regions: Vec<RegionId>,
    /// Region (any of the mesh) -> failover chain as slots.
    failover: BTreeMap<RegionId, Vec<Slot>>,
    /// Source region -> (slot, weight), weights summing to 100.
    distribute: BTreeMap<RegionId, Vec<(Slot, u32)>>,
    health: HealthConfig,
    table_shape: TableShape,
    /// Per slot: the operator drained the region for this service.
    drained: Vec<bool>,
}

impl CompiledPolicy {
    /// Region names, indexed by [`RegionId`].
    pub fn regions(&self) -> &[String] {
        &self.regions
    }
    /// Name of a region.
    pub fn region_name(&self, id: RegionId) -> &str {
        self.regions
            .get(usize::from(id.0))
            .map_or("", String::as_str)
    }
    /// Looks a region up by name.
    pub fn region_id(&self, name: &str) -> Option<RegionId> {
        self.regions
            .iter()
            .position(|r| r == name)
            .and_then(|i| u16::try_from(i).ok())
            .map(RegionId)
    }
    /// The lowercase header the filter sets.
    pub fn routing_header(&self) -> &str {
        &self.routing_header
    }
    /// The routing header value that routes to `id` (`<region>.<routeToken>`),
    /// precomputed: the request path formats nothing.
    pub fn routing_value(&self, id: RegionId) -> &str {
        self.routing_values
            .get(usize::from(id.0))
            .map_or("", String::as_str)
    }
    /// The pinned source region, if the policy pins one.
    pub fn pinned_source_region(&self) -> Option<RegionId> {
        self.source_region
    }
    /// The region of an Istio cluster ID, from `clusterRegions`.
    pub fn cluster_region(&self, cluster_id: &str) -> Option<RegionId> {
        self.cluster_regions.get(cluster_id).copied()
    }
    /// Whether a request whose `:authority` names no service is looked up by the
    /// cluster of its route (`serviceFromRoute`; ingress gateways). Off, such requests
    /// cost no property read.
    pub fn service_from_route(&self) -> bool {
        self.service_from_route
    }
    /// All services, indexed by [`ServiceId`].
    pub fn services(&self) -> &[CompiledService] {
        &self.services
    }
    /// One service.
    pub fn service(&self, id: ServiceId) -> Option<&CompiledService> {
        self.services.get(usize::from(id.0))
    }
    /// A stable hash of the policy's content, to tell policies apart in logs.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The service a request's `:authority` names, in any form a mesh uses
    /// (`reviews`, `reviews:9080`, `reviews.default.svc.cluster.local:9080` ...).
    /// Parses nothing: strips a port and compares; allocates only for uppercase input.
    pub fn service_for_authority(&self, authority: &str) -> Option<ServiceId> {
        let host = match authority.rsplit_once(':') {
            Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                host
            }
            _ => authority,
        };
        self.service_for_host(host.strip_suffix('.').unwrap_or(host))
    }

    /// The service of an Istio outbound cluster, `outbound|PORT|SUBSET|HOST`, by its
    /// HOST: what names the service where `:authority` does not (an ingress gateway's
    /// requests carry the gateway's address or external name). Any other cluster name
    /// is `None`. Allocates only for uppercase input.
    pub fn service_for_cluster(&self, cluster_name: &str) -> Option<ServiceId> {
        self.service_for_host(OutboundCluster::parse(cluster_name)?.host)
    }

    /// A host name, case-insensitively, among every form of the services' hosts.
    fn service_for_host(&self, host: &str) -> Option<ServiceId> {
        if host.bytes().any(|b| b.is_ascii_uppercase()) {
            self.hosts.get(&host.to_ascii_lowercase()).copied()
        } else {
            self.hosts.get(host).copied()
        }
    }
}

impl CompiledService {
    /// Name used in stats and logs.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Regions where the service runs, in slot order.
    pub fn regions(&self) -> &[RegionId] {
        &self.regions
    }
    /// The region of a slot.
    pub fn region_of(&self, slot: Slot) -> Option<RegionId> {
        self.regions.get(slot).copied()
    }
    /// The slot of a region, if the service runs there.
    pub fn slot_of(&self, region: RegionId) -> Option<Slot> {
        self.regions.iter().position(|r| *r == region)
    }
    /// The failover chain of a region, as slots.
    pub fn failover_chain(&self, region: RegionId) -> &[Slot] {
        self.failover.get(&region).map_or(&[], Vec::as_slice)
    }
    /// The weights from a source region, as (slot, weight).
    pub fn distribution(&self, source: RegionId) -> Option<&[(Slot, u32)]> {
        self.distribute.get(&source).map(Vec::as_slice)
    }
    /// Health settings.
    pub fn health(&self) -> &HealthConfig {
        &self.health
    }
    /// Per slot: whether the operator drained the region for this service.
    pub fn drained(&self) -> &[bool] {
        &self.drained
    }
    /// The shape of this service's shared health table.
    pub fn table_shape(&self) -> TableShape {
        self.table_shape
    }
}

impl TryFrom<&wire::Policy> for CompiledPolicy {
    type Error = PolicyErrors;

    fn try_from(policy: &wire::Policy) -> Result<Self, PolicyErrors> {
        let mut errors = Vec::new();
        let root = FieldPath::root();
        let routing_header = check_envelope(policy, &mut errors);
        check_mesh_regions(&policy.regions, &root.field("regions"), &mut errors);
        let regions = Regions {
            names: &policy.regions,
        };

        let source_region = policy
            .source_region
            .as_ref()
            .and_then(|name| regions.resolve(name, &root.field("sourceRegion"), &mut errors));

        let cluster_regions = compile_cluster_regions(
            &policy.cluster_regions,
            &regions,
            &root.field("clusterRegions"),
            &mut errors,
        );

        let mesh_drain =
            compile_mesh_drain(&policy.drain, &regions, &root.field("drain"), &mut errors);

        let defaults = compile_health(
            &HealthConfig::default(),
            policy.health.as_ref(),
            &root.field("health"),
            &mut errors,
        );

        let services = compile_services(
            &policy.services,
            &regions,
            &mesh_drain,
            &defaults,
            &root.field("services"),
            &mut errors,
        );

        if !errors.is_empty() {
            return Err(PolicyErrors(errors));
        }
        let hosts = host_index(&policy.services);
        let canonical = serde_json::to_vec(policy).unwrap_or_default();
        let routing_values = policy
            .regions
            .iter()
            .map(|region| route_header_value(region, &policy.route_token))
            .collect();
        Ok(CompiledPolicy {
            regions: policy.regions.clone(),
            routing_header,
            routing_values,
            source_region,
            cluster_regions,
            service_from_route: policy.service_from_route,
            explain: policy.explain,
            services,
            hosts,
            fingerprint: fnv1a(&canonical),
        })
    }
}

/// The policy's format version, routing header and route token; returns the header.
fn check_envelope(policy: &wire::Policy, errors: &mut Vec<PolicyError>) -> String {
    let root = FieldPath::root();
    if policy.api_version != API_VERSION {
        errors.push(root.field("apiVersion").error(Problem::UnsupportedVersion {
            found: policy.api_version.clone(),
            expected: API_VERSION,
        }));
    }
    let routing_header = policy
        .routing_header
        .clone()
        .unwrap_or_else(|| DEFAULT_ROUTING_HEADER.to_owned());
    if let Err(why) = check_header_name(&routing_header) {
        errors.push(root.field("routingHeader").error(Problem::InvalidName {
            value: routing_header.clone(),
            what: "header name",
            why,
        }));
    }
    if let Err(why) = check_route_token(&policy.route_token) {
        errors.push(
            root.field("routeToken")
                .error(Problem::InvalidRouteToken { why }),
        );
    }
    routing_header
}

/// Every service: some, at most 65535, each name once and each host claimed by one.
fn compile_services(
    wire_services: &[wire::Service],
    regions: &Regions<'_>,
    mesh_drain: &[RegionId],
    defaults: &HealthConfig,
    services_path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) -> Vec<CompiledService> {
    check_count(
        wire_services.len(),
        services_path,
        "at most 65535 services",
        errors,
    );
    let mut services = Vec::with_capacity(wire_services.len());
    let mut claimed_hosts: BTreeMap<String, String> = BTreeMap::new();
    let mut names = BTreeSet::new();
    for (index, service) in wire_services.iter().enumerate() {
        let path = services_path.index(index);
        if !names.insert(service.name.as_str()) {
            errors.push(
                path.field("name")
                    .error(Problem::Duplicate(service.name.clone())),
            );
        }
        for (h, host) in service.hosts.iter().enumerate() {
            let host_lc = host.to_ascii_lowercase();
            if let Some(other) = claimed_hosts.get(&host_lc) {
                errors.push(path.field("hosts").index(h).error(Problem::HostClaimed {
                    host: host.clone(),
                    other: other.clone(),
                }));
            } else {
                claimed_hosts.insert(host_lc, service.name.clone());
            }
        }
        if let Some(compiled) =
            compile_service(service, regions, mesh_drain, defaults, &path, errors)
        {
            services.push(compiled);
        }
    }
    services
}

/// A list the compiled policy numbers with `u16`s: some, at most 65535.
fn check_count(len: usize, path: &FieldPath, why: &'static str, errors: &mut Vec<PolicyError>) {
    if len == 0 {
        errors.push(path.error(Problem::Empty));
    }
    if len > usize::from(u16::MAX) {
        errors.push(path.error(Problem::OutOfRange {
            value: len as u64,
            why,
        }));
    }
}

/// The mesh's regions: some, at most 65535 (a region is a `u16`), valid, each once.
fn check_mesh_regions(names: &[String], path: &FieldPath, errors: &mut Vec<PolicyError>) {
    check_count(names.len(), path, "at most 65535 regions", errors);
    let mut seen = BTreeSet::new();
    for (i, region) in names.iter().enumerate() {
        if let Err(why) = check_label_value(region) {
            errors.push(path.index(i).error(Problem::InvalidName {
                value: region.clone(),
                what: "region",
                why,
            }));
        }
        if !seen.insert(region.as_str()) {
            errors.push(path.index(i).error(Problem::Duplicate(region.clone())));
        }
    }
}

/// The cluster table: each Istio cluster ID valid, each region known.
fn compile_cluster_regions(
    table: &BTreeMap<String, String>,
    regions: &Regions<'_>,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) -> BTreeMap<String, RegionId> {
    let mut cluster_regions = BTreeMap::new();
    for (cluster_id, region) in table {
        let at = path.key(cluster_id);
        if let Err(why) = check_label_value(cluster_id) {
            errors.push(at.key_error(Problem::InvalidName {
                value: cluster_id.clone(),
                what: "Istio cluster ID",
                why,
            }));
        }
        if let Some(id) = regions.resolve(region, &at, errors) {
            cluster_regions.insert(cluster_id.clone(), id);
        }
    }
    cluster_regions
}

/// The mesh-wide drained regions: known, each once.
fn compile_mesh_drain(
    names: &[String],
    regions: &Regions<'_>,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) -> Vec<RegionId> {
    let mut mesh_drain = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let at = path.index(i);
        if let Some(id) = regions.resolve(name, &at, errors) {
            if mesh_drain.contains(&id) {
                errors.push(at.error(Problem::Duplicate(name.clone())));
            } else {
                mesh_drain.push(id);
            }
        }
    }
    mesh_drain
}

/// Region lookups against the policy's region list, reporting unknown names.
struct Regions<'a> {
    names: &'a [String],
}

impl Regions<'_> {
    /// The region a value names.
    fn resolve(
        &self,
        name: &str,
        path: &FieldPath,
        errors: &mut Vec<PolicyError>,
    ) -> Option<RegionId> {
        self.lookup(name, path, Written::Value, errors)
    }

    /// The region the map key `path` ends in names.
    fn resolve_key(
        &self,
        name: &str,
        path: &FieldPath,
        errors: &mut Vec<PolicyError>,
    ) -> Option<RegionId> {
        self.lookup(name, path, Written::Key, errors)
    }

    fn lookup(
        &self,
        name: &str,
        path: &FieldPath,
        written: Written,
        errors: &mut Vec<PolicyError>,
    ) -> Option<RegionId> {
        match self
            .names
            .iter()
            .position(|r| r == name)
            .and_then(|i| u16::try_from(i).ok())
        {
            Some(i) => Some(RegionId(i)),
            None => {
                let problem = Problem::UnknownRegion {
                    region: name.to_owned(),
                    known: self.names.join(", "),
                };
                errors.push(path.error_in(written, problem));
                None
            }
        }
    }
}

fn compile_service(
    service: &wire::Service,
    regions: &Regions<'_>,
    mesh_drain: &[RegionId],
    defaults: &HealthConfig,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) -> Option<CompiledService> {
    let before = errors.len();
    if let Err(why) = check_service_name(&service.name) {
        errors.push(path.field("name").error(Problem::InvalidName {
            value: service.name.clone(),
            what: "service name",
            why,
        }));
    }
    check_hosts(&service.hosts, &path.field("hosts"), errors);
    let targets = Targets {
        service,
        regions,
        slots: service_slots(service, regions, &path.field("regions"), errors),
        runs_in: service.regions.join(", "),
    };
    let failover = compile_failover(&targets, &path.field("failover"), errors);
    let distribute = compile_distribution(&targets, &path.field("distribute"), errors);
    let drained = compile_drain(&targets, mesh_drain, &path.field("drain"), errors);
    let mut health = compile_health(
        defaults,
        service.health.as_ref(),
        &path.field("health"),
        errors,
    );
    if let Some(settings) = &service.probe {
        health.probe = compile_probe(settings, service, &path.field("probe"), errors);
    }
    (errors.len() == before).then(|| CompiledService {
        table_shape: TableShape::of(service.regions.iter().map(String::as_str)),
        name: service.name.clone(),
        regions: targets.slots,
        failover,
        distribute,
        health,
        drained,
    })
}

/// A service's hosts: valid, and each once (hosts are case-insensitive).
fn check_hosts(hosts: &[String], path: &FieldPath, errors: &mut Vec<PolicyError>) {
    if hosts.is_empty() {
        errors.push(path.error(Problem::Empty));
    }
    let mut seen = BTreeSet::new();
    for (i, host) in hosts.iter().enumerate() {
        if let Err(why) = check_host(host) {
            errors.push(path.index(i).error(Problem::InvalidName {
                value: host.clone(),
                what: "host",
                why,
            }));
        }
        if !seen.insert(host.to_ascii_lowercase()) {
            errors.push(path.index(i).error(Problem::Duplicate(host.clone())));
        }
    }
}

/// Where a service runs, as its slots: the declared order.
fn service_slots(
    service: &wire::Service,
    regions: &Regions<'_>,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) -> Vec<RegionId> {
    let mut slots: Vec<RegionId> = Vec::new();
    if service.regions.is_empty() {
        errors.push(path.error(Problem::Empty));
    }
    for (i, name) in service.regions.iter().enumerate() {
        let at = path.index(i);
        if let Some(id) = regions.resolve(name, &at, errors) {
            if slots.contains(&id) {
                errors.push(at.error(Problem::Duplicate(name.clone())));
            } else {
                slots.push(id);
            }
        }
    }
    slots
}

/// The regions a service's rules may send its traffic to: those it runs in.
struct Targets<'a> {
    service: &'a wire::Service,
    regions: &'a Regions<'a>,
    slots: Vec<RegionId>,
    /// Where it runs, for messages.
    runs_in: String,
}

impl Targets<'_> {
    /// The slot of the target region written at `at`.
    fn slot_of(
        &self,
        region: &str,
        at: &FieldPath,
        written: Written,
        errors: &mut Vec<PolicyError>,
    ) -> Option<Slot> {
        let id = self.regions.lookup(region, at, written, errors)?;
        let slot = self.slots.iter().position(|r| *r == id);
        if slot.is_none() {
            let problem = Problem::NotServed {
                service: self.service.name.clone(),
                region: region.to_owned(),
                runs_in: self.runs_in.clone(),
            };
            errors.push(at.error_in(written, problem));
        }
        slot
    }
}

/// Failover chains: each region's chain names, once each, other regions the service
/// runs in.
fn compile_failover(
    targets: &Targets<'_>,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) -> BTreeMap<RegionId, Vec<Slot>> {
    let mut failover = BTreeMap::new();
    for (from, chain) in &targets.service.failover {
        let at = path.key(from);
        let Some(from_id) = targets.regions.resolve_key(from, &at, errors) else {
            continue;
        };
        if chain.is_empty() {
            errors.push(at.error(Problem::EmptyChain { from: from.clone() }));
        }
        let mut compiled = Vec::with_capacity(chain.len());
        for (i, to) in chain.iter().enumerate() {
            let at = at.index(i);
            if to == from {
                errors.push(at.error(Problem::FailoverToSelf {
                    region: from.clone(),
                    service: targets.service.name.clone(),
                }));
                continue;
            }
            if let Some(slot) = targets.slot_of(to, &at, Written::Value, errors) {
                if compiled.contains(&slot) {
                    errors.push(at.error(Problem::Duplicate(to.clone())));
                } else {
                    compiled.push(slot);
                }
            }
        }
        failover.insert(from_id, compiled);
    }
    failover
}

/// Distributions: per source region, weights 1..100 summing to 100 over regions the
/// service runs in.
fn compile_distribution(
    targets: &Targets<'_>,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) -> BTreeMap<RegionId, Vec<(Slot, u32)>> {
    let mut distribute = BTreeMap::new();
    for (from, weights) in &targets.service.distribute {
        let at = path.key(from);
        let Some(from_id) = targets.regions.resolve_key(from, &at, errors) else {
            continue;
        };
        if weights.is_empty() {
            errors.push(at.error(Problem::EmptyDistribution { from: from.clone() }));
            continue;
        }
        let mut compiled = Vec::with_capacity(weights.len());
        let mut sum: u64 = 0;
        let mut weights_ok = true;
        for (to, weight) in weights {
            let at = at.key(to);
            sum = sum.saturating_add(weight.0);
            if !(1..=100).contains(&weight.0) {
                errors.push(at.error(Problem::WeightOutOfRange {
                    from: from.clone(),
                    to: to.clone(),
                    weight: weight.0,
                }));
                weights_ok = false;
            }
            if let Some(slot) = targets.slot_of(to, &at, Written::Key, errors) {
                compiled.push((slot, u32::try_from(weight.0).unwrap_or(0)));
            }
        }
        if weights_ok && sum != 100 {
            errors.push(at.error(Problem::WeightSum {
                from: from.clone(),
                sum,
                weights: weights.iter().map(|(r, w)| (r.clone(), w.0)).collect(),
            }));
        }
        // Declared order is the map's (sorted) order; keep the slot order for SWRR ties.
        compiled.sort_unstable();
        distribute.insert(from_id, compiled);
    }
    distribute
}

/// Drained slots: the mesh-wide marks of regions the service runs in, and its own;
/// one region must stay undrained.
fn compile_drain(
    targets: &Targets<'_>,
    mesh_drain: &[RegionId],
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) -> Vec<bool> {
    let service = targets.service;
    let mut drained: Vec<bool> = targets
        .slots
        .iter()
        .map(|r| mesh_drain.contains(r))
        .collect();
    let mut own_drain = BTreeSet::new();
    for (i, region) in service.drain.iter().enumerate() {
        let at = path.index(i);
        if !own_drain.insert(region.as_str()) {
            errors.push(at.error(Problem::Duplicate(region.clone())));
        } else if let Some(slot) = targets.slot_of(region, &at, Written::Value, errors)
            && let Some(mark) = drained.get_mut(slot)
        {
            *mark = true;
        }
    }
    if !drained.is_empty() && drained.iter().all(|d| *d) {
        // Drained by the mesh-wide marks alone: the mesh's `drain` is at fault.
        let at = if service.drain.is_empty() {
            FieldPath::root().field("drain")
        } else {
            path.clone()
        };
        errors.push(at.error(Problem::DrainsEveryRegion(service.name.clone())));
    }
    drained
}

fn compile_health(
    base: &HealthConfig,
    settings: Option<&wire::HealthSettings>,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) -> HealthConfig {
    let mut config = base.clone();
    let Some(settings) = settings else {
        return config;
    };
    if let Some(n) = settings.consecutive_failures {
        match u32::try_from(n.0) {
            Ok(v) if (1..=10_000).contains(&v) => config.consecutive_failures = v,
            _ => errors.push(
                path.field("consecutiveFailures")
                    .error(Problem::OutOfRange {
                        value: n.0,
                        why: "must be 1..10000",
                    }),
            ),
        }
    }
    if let Some(d) = &settings.base_ejection_time {
        if d.millis() == 0 {
            errors.push(path.field("baseEjectionTime").error(Problem::OutOfRange {
                value: 0,
                why: "must be at least 1ms",
            }));
        }
        config.base_ejection_ms = d.millis().max(1);
    }
    if let Some(d) = &settings.max_ejection_time {
        config.max_ejection_ms = d.millis();
    }
    if config.max_ejection_ms < config.base_ejection_ms {
        errors.push(path.field("maxEjectionTime").error(Problem::OutOfRange {
            value: config.max_ejection_ms,
            why: "in ms, must be at least baseEjectionTime",
        }));
    }
    if let Some(d) = &settings.drain_ramp {
        config.drain_ramp_ms = d.millis();
    }
    if let Some(d) = &settings.spill_window {
        config.spill_window_ms = d.millis();
    }
    if let Some(d) = &settings.recovery_ramp {
        config.recovery_ramp_ms = d.millis();
    }
    if let Some(codes) = &settings.failure_status_codes {
        let mut compiled = Vec::with_capacity(codes.len());
        for (i, code) in codes.iter().enumerate() {
            match u16::try_from(code.0) {
                Ok(c) if (100..=599).contains(&c) => compiled.push(c),
                _ => errors.push(path.field("failureStatusCodes").index(i).error(
                    Problem::OutOfRange {
                        value: code.0,
                        why: "an HTTP status code is 100..599",
                    },
                )),
            }
        }
        compiled.sort_unstable();
        compiled.dedup();
        config.failure_status_codes = compiled;
    }
    if let Some(flags) = &settings.failure_response_flags {
        let mut bits = 0u64;
        for (i, flag) in flags.iter().enumerate() {
            match ResponseFlags::bit(flag) {
                Some(bit) => bits |= bit,
                None => errors.push(
                    path.field("failureResponseFlags").index(i).error(
                        Problem::UnknownResponseFlag {
                            flag: flag.clone(),
                            known: RESPONSE_FLAGS
                                .iter()
                                .map(|(n, _)| *n)
                                .collect::<Vec<_>>()
                                .join(", "),
                        },
                    ),
                ),
            }
        }
        config.failure_flags = ResponseFlags(bits);
    }
    config
}

fn compile_probe(
    settings: &wire::ProbeSettings,
    service: &wire::Service,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) -> Option<ProbeConfig> {
    use crate::probe::{
        DEFAULT_HEALTHY_AFTER, DEFAULT_INTERVAL_MS, DEFAULT_TIMEOUT_MS, DEFAULT_UNHEALTHY_AFTER,
        MAX_INTERVAL_MS, MIN_INTERVAL_MS,
    };
    let before = errors.len();
    let probe_path = &settings.path;
    if !probe_path.starts_with('/')
        || probe_path.len() > 1024
        || !probe_path.bytes().all(|b| b.is_ascii_graphic())
    {
        errors.push(path.field("path").error(Problem::InvalidName {
            value: probe_path.clone(),
            what: "probe path",
            why: "starts with '/', printable ASCII without spaces, at most 1024 bytes",
        }));
    }
    let port = match u16::try_from(settings.port.0) {
        Ok(p) if p >= 1 => p,
        _ => {
            errors.push(path.field("port").error(Problem::OutOfRange {
                value: settings.port.0,
                why: "a port is 1..65535",
            }));
            0
        }
    };
    let interval_ms = settings
        .interval
        .as_ref()
        .map_or(DEFAULT_INTERVAL_MS, |d| d.millis());
    if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&interval_ms) {
        errors.push(path.field("interval").error(Problem::OutOfRange {
            value: interval_ms,
            why: "in ms, must be 100ms..1h (probes are sent on the filter's 100 ms tick)",
        }));
    }
    let timeout_ms = settings
        .timeout
        .as_ref()
        .map_or(DEFAULT_TIMEOUT_MS.min(interval_ms / 2), |d| d.millis());
    if timeout_ms == 0 || timeout_ms >= interval_ms {
        errors.push(path.field("timeout").error(Problem::OutOfRange {
            value: timeout_ms,
            why: "in ms, must be at least 1ms and below interval",
        }));
    }
    let expect_statuses = compile_expect_statuses(
        settings.expect_statuses.as_deref(),
        &path.field("expectStatuses"),
        errors,
    );
    let healthy_after = probe_count(
        settings.healthy_after,
        DEFAULT_HEALTHY_AFTER,
        &path.field("healthyAfter"),
        errors,
    );
    let unhealthy_after = probe_count(
        settings.unhealthy_after,
        DEFAULT_UNHEALTHY_AFTER,
        &path.field("unhealthyAfter"),
        errors,
    );
    let authority = service.hosts.first()?.clone();
    (errors.len() == before).then(|| ProbeConfig {
        path: probe_path.clone(),
        clusters: ProbeConfig::clusters_for(
            port,
            &authority,
            service.regions.iter().map(String::as_str),
        ),
        authority,
        interval_ms,
        timeout_ms,
        expect_statuses,
        healthy_after,
        unhealthy_after,
    })
}

/// The status codes that pass a probe, sorted and each once (default `[200]`).
fn compile_expect_statuses(
    codes: Option<&[crate::units::WholeNumber]>,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) -> Vec<u16> {
    let Some(codes) = codes else {
        return vec![200];
    };
    if codes.is_empty() {
        errors.push(path.error(Problem::Empty));
    }
    let mut statuses = Vec::with_capacity(codes.len());
    for (i, code) in codes.iter().enumerate() {
        match u16::try_from(code.0) {
            Ok(c) if (100..=599).contains(&c) => statuses.push(c),
            _ => errors.push(path.index(i).error(Problem::OutOfRange {
                value: code.0,
                why: "an HTTP status code is 100..599",
            })),
        }
    }
    statuses.sort_unstable();
    statuses.dedup();
    statuses
}

/// A probe count in a row (1..100), `default` when unset.
fn probe_count(
    value: Option<crate::units::WholeNumber>,
    default: u16,
    path: &FieldPath,
    errors: &mut Vec<PolicyError>,
) -> u16 {
    let Some(n) = value else {
        return default;
    };
    match u16::try_from(n.0) {
        Ok(v) if (1..=100).contains(&v) => v,
        _ => {
            errors.push(path.error(Problem::OutOfRange {
                value: n.0,
                why: "must be 1..100",
            }));
            default
        }
    }
}

/// Every `:authority` form of every host. A derived short form (`reviews`) that two
/// services would share is left out: only the forms that name one service match.
fn host_index(services: &[wire::Service]) -> BTreeMap<String, ServiceId> {
    let mut exact: BTreeMap<String, ServiceId> = BTreeMap::new();
    let mut derived: BTreeMap<String, Option<ServiceId>> = BTreeMap::new();
    for (index, service) in services.iter().enumerate() {
        let Ok(id) = u16::try_from(index).map(ServiceId) else {
            continue;
        };
        for host in &service.hosts {
            let host = host.to_ascii_lowercase();
            for form in short_forms(&host) {
                derived
                    .entry(form)
                    .and_modify(|owner| {
                        if *owner != Some(id) {
                            *owner = None;
                        }
                    })
                    .or_insert(Some(id));
            }
            exact.insert(host, id);
        }
    }
    for (form, owner) in derived {
        if let Some(id) = owner {
            exact.entry(form).or_insert(id);
        }
    }
    exact
}

/// `name.ns.svc.<domain>` -> `name`, `name.ns`, `name.ns.svc`.
fn short_forms(host: &str) -> Vec<String> {
    let labels: Vec<&str> = host.split('.').collect();
    match labels.as_slice() {
        [name, namespace, "svc", _domain, ..] => {
            vec![
                (*name).to_owned(),
                format!("{name}.{namespace}"),
                format!("{name}.{namespace}.svc"),
            ]
        }
        _ => Vec::new(),
    }
}

/// Kubernetes label value rules (regions become subset labels and header values).
fn check_label_value(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("it is empty");
    }
    if value.len() > 63 {
        return Err("longer than 63 characters");
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("only letters, digits, '-', '_' and '.' are allowed");
    }
    let edge_ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    if !edge_ok(value.bytes().next()) || !edge_ok(value.bytes().last()) {
        return Err("must start and end with a letter or digit");
    }
    Ok(())
}

/// The routing header a configuration names, read leniently from raw configuration
/// bytes that need not be a valid policy: its `routingHeader` when that is itself a
/// valid header name, else the default. What a proxy whose policy was refused (or
/// that has none) strips from client requests: the header the VirtualServices match
/// is the configured one, so stripping only the default would let a client's value
/// through.
pub fn passthrough_routing_header(config: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct OnlyTheHeader {
        routing_header: Option<serde_json::Value>,
    }
    serde_json::from_slice::<OnlyTheHeader>(config)
        .ok()
        .and_then(|c| match c.routing_header {
            Some(serde_json::Value::String(name)) if check_header_name(&name).is_ok() => Some(name),
            _ => None,
        })
        .unwrap_or_else(|| DEFAULT_ROUTING_HEADER.to_owned())
}

fn check_header_name(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("it is empty");
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("only lowercase letters, digits and '-' are allowed");
    }
    match crate::header::reserved(value) {
        Some(why) => Err(why.explain()),
        None => Ok(()),
    }
}

fn check_host(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("it is empty");
    }
    if value.len() > 253 {
        return Err("longer than 253 characters");
    }
    if value
        .split('.')
        .any(|label| label.is_empty() || label.len() > 63)
    {
        return Err("each dot-separated label must have 1..63 characters");
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err("only letters, digits, '-' and '.' are allowed (no port, no wildcard)");
    }
    Ok(())
}

/// Service names go into stat tags (`;service=<name>`), so no `;` or `=`.
fn check_service_name(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("it is empty");
    }
    if value.len() > 253 {
        return Err("longer than 253 characters");
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err("only lowercase letters, digits, '-', '_' and '.' are allowed");
    }
    Ok(())
}
