//! The filter's policy, built from the plan with the pure crate's wire types and
//! serialized by serde: the WasmPlugin `pluginConfig` is never hand-templated.

use geolb_policy::API_VERSION;
use geolb_policy::units::WholeNumber;
use geolb_policy::wire::{self, HealthSettings};

use crate::plan::{OutlierDetection, Service};
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
        distribute: traffic
            .distribute
            .into_iter()
            .map(|(from, to)| {
                (
                    from,
                    to.into_iter().map(|(r, w)| (r, WholeNumber(w))).collect(),
                )
            })
            .collect(),
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

/// The plan field a service's policy health field came from: the service's own
/// `health`, or, where that leaves it unset, the `outlierDetection` field it follows.
fn health_origin(s: &Service, field: &str) -> String {
    let explicit = s.health.as_ref();
    let od = s.outlier_detection.as_ref();
    let implied = match field {
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
    };
    match implied {
        Some(f) => format!("outlierDetection.{f}"),
        None => format!("health.{field}"),
    }
}

/// Maps a policy field path back to the plan field it came from, following a
/// service's implied health settings to its `outlierDetection`.
pub fn plan_path_in(plan: &crate::plan::Plan, policy_path: &str) -> String {
    let path = plan_path_of(policy_path);
    if let Some(rest) = policy_path.strip_prefix("services[")
        && let Some((index, tail)) = rest.split_once(']')
        && let Some(field) = tail.strip_prefix(".health.")
        && let Some(s) = index
            .parse::<usize>()
            .ok()
            .and_then(|i| plan.services.get(i))
    {
        let name = field.split(['.', '[']).next().unwrap_or(field);
        if !name.is_empty() && name.len() == field.len() {
            return format!("services[{index}].{}", health_origin(s, name));
        }
    }
    path
}

/// Maps a policy field path back to the plan field it came from.
pub fn plan_path_of(policy_path: &str) -> String {
    if let Some(rest) = policy_path.strip_prefix("health") {
        return format!("filter.health{rest}");
    }
    if policy_path.starts_with("routingHeader") {
        return String::from("filter.routingHeader");
    }
    if policy_path.starts_with("drain") {
        // The policy lists the drained regions; the plan marks them in `regions[]`.
        return String::from("regions");
    }
    if let Some(rest) = policy_path.strip_prefix("services[")
        && let Some((index, tail)) = rest.split_once(']')
    {
        let tail = if tail.starts_with(".failover")
            || tail.starts_with(".distribute")
            || tail.starts_with(".drain")
        {
            format!(".traffic{tail}")
        } else if tail.starts_with(".probe.port") {
            // The probe goes to the service's own port.
            String::from(".port")
        } else if tail.starts_with(".health") || tail.starts_with(".probe") {
            tail.to_owned()
        } else {
            String::new()
        };
        return format!("services[{index}]{tail}");
    }
    String::new()
}
