//! The filter's policy, built from the plan with the pure crate's wire types and
//! serialized by serde: the WasmPlugin `pluginConfig` is never hand-templated.

use geolb_policy::Segment::{Field, Index, Key};
use geolb_policy::units::WholeNumber;
use geolb_policy::wire::{self, HealthSettings};
use geolb_policy::{API_VERSION, FieldPath, Segment};

use crate::plan::{OutlierDetection, Service};
use crate::source::FieldPath as PlanPath;
use crate::topology::Topology;

/// Which proxies a policy is for: sidecars and ingress gateways differ in how the
/// filter finds the destination service. Both learn their region the same way (the
/// cluster table, then the node locality), so one policy serves every cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyFor {
    /// The mesh's sidecars: `:authority` names the service. No route lookup, so
    /// traffic geolb does not manage costs nothing extra.
    Sidecars,
    /// The ingress gateways: their requests carry an external Host, so the service is
    /// found from the route's cluster (`serviceFromRoute`).
    Gateways,
}

/// The policy for one kind of proxy of the mesh, carrying `route_token` (the current
/// secret's, [`crate::secret::RouteSecrets::tokens`]).
pub fn wire_policy(topo: &Topology<'_>, proxies: PolicyFor, route_token: &str) -> wire::Policy {
    let plan = topo.plan;
    wire::Policy {
        api_version: API_VERSION.to_owned(),
        regions: topo.regions().into_iter().map(str::to_owned).collect(),
        routing_header: plan.filter.routing_header.clone(),
        route_token: route_token.to_owned(),
        source_region: None,
        cluster_regions: plan
            .clusters
            .iter()
            .map(|c| (Topology::cluster_id(c).to_owned(), c.region.clone()))
            .collect(),
        service_from_route: proxies == PolicyFor::Gateways,
        drain: plan
            .regions
            .iter()
            .filter(|r| r.drained)
            .map(|r| r.name.clone())
            .collect(),
        // The internet must not learn the mesh's regions from a gateway's answers.
        explain: plan.filter.explain && proxies == PolicyFor::Sidecars,
        health: plan.filter.health.clone(),
        services: plan.services.iter().map(|s| service(topo, s)).collect(),
    }
}

/// The name a service has in the policy (stats, logs): `name.namespace`.
pub fn policy_name(service: &Service) -> String {
    format!("{}.{}", service.name, service.namespace)
}

fn service(topo: &Topology<'_>, s: &Service) -> wire::Service {
    let traffic = s.traffic.clone().unwrap_or_default();
    wire::Service {
        name: policy_name(s),
        hosts: vec![Topology::service_host(s)],
        regions: topo
            .service_regions(s)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        failover: traffic.failover,
        distribute: traffic.distribute,
        drain: traffic.drain,
        health: service_health(s),
        probe: s.probe.as_ref().map(|p| wire::ProbeSettings {
            path: p.path.clone(),
            port: WholeNumber(u64::from(s.port)),
            interval: p.interval.clone(),
            timeout: p.timeout.clone(),
            expect_statuses: p
                .expect_statuses
                .as_ref()
                .map(|codes| codes.iter().map(|c| WholeNumber(u64::from(*c))).collect()),
            healthy_after: p.healthy_after.map(|n| WholeNumber(u64::from(n))),
            unhealthy_after: p.unhealthy_after.map(|n| WholeNumber(u64::from(n))),
        }),
    }
}

/// The filter's health settings of a service: the service's `health`, field by field
/// over what its DestinationRule `outlierDetection` implies, so that the filter ejects
/// a region on the same evidence and for as long as Envoy ejects a host.
fn service_health(s: &Service) -> Option<HealthSettings> {
    let explicit = s.health.clone();
    let implied = s.outlier_detection.as_ref().map(|o| {
        let base = o.base_ejection_time.clone();
        // The filter's default cap (300s) must not fall below a longer base time.
        let default_max = geolb_policy::health::HealthConfig::default().max_ejection_ms;
        let max = base.as_ref().filter(|b| b.millis() > default_max).cloned();
        HealthSettings {
            consecutive_failures: implied_failures(o).map(|(n, _)| WholeNumber(u64::from(n))),
            base_ejection_time: base,
            max_ejection_time: max,
            ..HealthSettings::default()
        }
    });
    match (explicit, implied) {
        (Some(e), Some(i)) => Some(HealthSettings {
            consecutive_failures: e.consecutive_failures.or(i.consecutive_failures),
            base_ejection_time: e.base_ejection_time.or(i.base_ejection_time),
            max_ejection_time: e.max_ejection_time.or(i.max_ejection_time),
            ..e
        }),
        (e, i) => e.or(i).filter(|h| *h != HealthSettings::default()),
    }
}

/// The count of an `outlierDetection` that the filter's `consecutiveFailures` follows,
/// and the field it comes from: `consecutive5xxErrors`, else `consecutiveGatewayErrors`.
/// A 0 implies nothing: istiod turns it into a detector Envoy never enforces.
fn implied_failures(o: &OutlierDetection) -> Option<(u32, &'static str)> {
    [
        (o.consecutive_5xx_errors, "consecutive5xxErrors"),
        (o.consecutive_gateway_errors, "consecutiveGatewayErrors"),
    ]
    .into_iter()
    .find_map(|(n, field)| n.filter(|n| *n > 0).map(|n| (n, field)))
}

/// The `outlierDetection` field a service's policy health field came from, where the
/// service's own `health` leaves it unset; `None`: from `health`.
fn implied_by(s: &Service, field: &str) -> Option<&'static str> {
    let explicit = s.health.as_ref();
    let od = s.outlier_detection.as_ref();
    match field {
        "consecutiveFailures" if explicit.is_none_or(|h| h.consecutive_failures.is_none()) => {
            od.and_then(implied_failures).map(|(_, f)| f)
        }
        "baseEjectionTime" | "maxEjectionTime"
            if explicit.is_none_or(|h| {
                h.base_ejection_time.is_none() && h.max_ejection_time.is_none()
            }) =>
        {
            od.filter(|o| o.base_ejection_time.is_some())
                .map(|_| "baseEjectionTime")
        }
        _ => None,
    }
}

/// Whether a policy field holds a service's region rules (failover chains,
/// distributions, drains), which the core owns: the generator reports the core's
/// findings on them as its own.
pub fn is_region_rule(policy_path: &FieldPath) -> bool {
    match policy_path.segments() {
        [Field(services), Index(_), Field(f), ..] if services == "services" => {
            ["failover", "distribute", "drain"].contains(&f.as_str())
        }
        [Field(f), ..] => f == "drain",
        _ => false,
    }
}

/// The plan field a policy field came from, by the policy path's structure (the
/// policy is built from the plan by [`wire_policy`]: its services are the plan's, in
/// order), following a service's implied health settings to its `outlierDetection`.
pub fn plan_path(plan: &crate::plan::Plan, policy_path: &FieldPath) -> PlanPath {
    let root = PlanPath::root();
    match policy_path.segments() {
        [Field(f), rest @ ..] if f == "health" => within(root.key("filter").key("health"), rest),
        [Field(f), ..] if f == "routingHeader" => root.key("filter").key("routingHeader"),
        // The policy lists the drained regions; the plan marks them in `regions[]`.
        [Field(f), ..] if f == "drain" => root.key("regions"),
        [Field(f), Index(i), rest @ ..] if f == "services" => {
            service_path(plan.services.get(*i), root.key("services").index(*i), rest)
        }
        _ => root,
    }
}

/// The plan field of a path below `services[i]` of the policy.
fn service_path(service: Option<&Service>, at: PlanPath, rest: &[Segment]) -> PlanPath {
    match rest {
        [Field(f), ..] if ["failover", "distribute", "drain"].contains(&f.as_str()) => {
            within(at.key("traffic"), rest)
        }
        // The probe goes to the service's own port.
        [Field(f), Field(p), ..] if f == "probe" && p == "port" => at.key("port"),
        [Field(f), Field(field)] if f == "health" => {
            match service.and_then(|s| implied_by(s, field)) {
                Some(implied) => at.key("outlierDetection").key(implied),
                None => at.key("health").key(field),
            }
        }
        [Field(f), ..] if f == "health" || f == "probe" => within(at, rest),
        _ => at,
    }
}

/// `at` extended by the policy path's remaining steps, which the plan shares.
fn within(at: PlanPath, rest: &[Segment]) -> PlanPath {
    rest.iter().fold(at, |at, segment| match segment {
        Field(name) | Key(name) => at.key(name),
        Index(i) => at.index(*i),
    })
}
