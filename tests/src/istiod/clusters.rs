//! Outbound clusters: `outbound|PORT||HOST` per service port and
//! `outbound|PORT|SUBSET|HOST` per DestinationRule subset, with the DestinationRule's
//! traffic policy mapped the way istiod maps it
//! (pilot/pkg/networking/core/cluster_builder.go, cluster_traffic_policy.go).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::endpoints::{self, FailoverSettings, IstioEndpoint};
use super::load::Loaded;
use super::objects::{
    ConnectionPool, DestinationRule, LocalityLbSetting, OutlierDetection, TrafficPolicy,
};
use super::translate::{Context, duration, parse_duration_nanos};
use super::{TranslateError, Workload};

/// Istio's mesh default `connectTimeout` (MeshConfig `connect_timeout`: 10s).
pub const DEFAULT_CONNECT_TIMEOUT: &str = "10s";

/// `outbound|PORT|SUBSET|HOST` (`model.BuildSubsetKey`); empty subset = the service.
pub fn cluster_name(port: u16, subset: &str, host: &str) -> String {
    format!("outbound|{port}|{subset}|{host}")
}

/// A host as istiod resolves it in `namespace`: a short name (no dot) becomes
/// `<name>.<namespace>.svc.cluster.local` (`host.Name` resolution with the default
/// domain suffix); anything else is taken as written.
pub fn resolve_host(host: &str, namespace: &str) -> String {
    if host.contains('.') || host.contains('*') {
        host.to_string()
    } else {
        format!("{host}.{namespace}.svc.cluster.local")
    }
}

/// The services of the registry: `(host, port)` → its workloads, sorted.
pub fn services(workloads: &[Workload]) -> BTreeMap<(String, u16), Vec<&Workload>> {
    let mut out: BTreeMap<(String, u16), Vec<&Workload>> = BTreeMap::new();
    for w in workloads {
        out.entry((w.service.clone(), w.port)).or_default().push(w);
    }
    out
}

/// The DestinationRule for `host` (exact host after resolution), if any. Several for
/// one host would be merged by istiod; geolb renders one, so several is an error.
pub fn destination_rule_for<'m>(
    ctx: &Context<'m>,
    host: &str,
) -> Result<Option<&'m Loaded<DestinationRule>>, TranslateError> {
    let mut found = None;
    for dr in &ctx.manifests.destination_rules {
        let resolved = resolve_host(&dr.value.spec.host, dr.value.metadata.namespace());
        if resolved.contains('*') {
            return Err(dr.error(
                "spec.host",
                "wildcard hosts are not rendered by geolb; the stand-in does not translate them",
            ));
        }
        if resolved == host
            && let Some(first) = found.replace(dr)
        {
            return Err(dr.error(
                    "spec.host",
                    format!(
                        "a second DestinationRule for {host} (the first is in {}); the stand-in does not merge them",
                        first.file
                    ),
                ));
        }
    }
    Ok(found)
}

/// One field of the effective policy and the field path it came from.
struct Sourced<'a, T> {
    value: &'a T,
    path: String,
}

/// A cluster's effective traffic policy: the top-level one with the subset's fields
/// replacing it field by field (`MergeTrafficPolicy`,
/// pilot/pkg/networking/core/cluster_builder.go).
#[derive(Default)]
struct Policy<'a> {
    pool: Option<Sourced<'a, ConnectionPool>>,
    locality: Option<Sourced<'a, LocalityLbSetting>>,
    outlier: Option<Sourced<'a, OutlierDetection>>,
}

impl<'a> Policy<'a> {
    fn overlay(&mut self, tp: &'a TrafficPolicy, path: &str) {
        if let Some(p) = &tp.connection_pool {
            self.pool = Some(Sourced {
                value: p,
                path: format!("{path}.connectionPool"),
            });
        }
        if let Some(lb) = &tp.load_balancer {
            self.locality = Some(Sourced {
                value: &lb.locality_lb_setting,
                path: format!("{path}.loadBalancer.localityLbSetting"),
            });
        }
        if let Some(o) = &tp.outlier_detection {
            self.outlier = Some(Sourced {
                value: o,
                path: format!("{path}.outlierDetection"),
            });
        }
    }
}

/// Every outbound cluster the proxy gets: per registry service port the default
/// cluster and one per subset of its DestinationRule.
pub fn build(ctx: &Context<'_>) -> Result<Vec<Value>, TranslateError> {
    build_named(ctx, cluster_name)
}

/// [`build`] with clusters named by `name(port, subset, host)`: the east-west gateway's
/// SNI-DNAT clusters are the same clusters named `outbound_.PORT_.SUBSET_.HOST`
/// (`buildOutboundSniDnatClusters`, pilot/pkg/networking/core/cluster.go; helper
/// "multinet").
pub fn build_named(
    ctx: &Context<'_>,
    name_of: fn(u16, &str, &str) -> String,
) -> Result<Vec<Value>, TranslateError> {
    let mut out = Vec::new();
    for ((host, port), workloads) in services(&ctx.registry.workloads) {
        let endpoints: Vec<IstioEndpoint> =
            workloads.iter().map(|w| IstioEndpoint::of(w)).collect();
        let dr = destination_rule_for(ctx, &host)?;
        let mut top = Policy::default();
        if let Some(tp) = dr.and_then(|d| d.value.spec.traffic_policy.as_ref()) {
            top.overlay(tp, "spec.trafficPolicy");
        }
        let name = name_of(port, "", &host);
        out.push(cluster(ctx, dr, &name, &top, endpoints.clone())?);
        let Some(dr) = dr else {
            continue;
        };
        for (i, subset) in dr.value.spec.subsets.iter().enumerate() {
            let mut policy = Policy::default();
            if let Some(tp) = &dr.value.spec.traffic_policy {
                policy.overlay(tp, "spec.trafficPolicy");
            }
            if let Some(tp) = &subset.traffic_policy {
                policy.overlay(tp, &format!("spec.subsets[{i}].trafficPolicy"));
            }
            let selected: Vec<IstioEndpoint> = endpoints
                .iter()
                .filter(|e| e.selected_by(&subset.labels))
                .cloned()
                .collect();
            let name = name_of(port, &subset.name, &host);
            out.push(cluster(ctx, Some(dr), &name, &policy, selected)?);
        }
    }
    Ok(out)
}

/// Istio's default circuit breaker thresholds (`getDefaultCircuitBreakerThresholds`:
/// every limit at MaxUint32, remaining tracked), before the connection pool's.
fn circuit_breakers(pool: Option<&Sourced<'_, ConnectionPool>>) -> Value {
    let max = u64::from(u32::MAX);
    let mut t = json!({
        "max_connections": max,
        "max_pending_requests": max,
        "max_requests": max,
        "max_retries": max,
        "track_remaining": true,
    });
    if let Some(p) = pool {
        // istiod applies a limit only when it is > 0 (it cannot tell 0 from unset).
        let mut set = |k: &str, v: Option<u32>| {
            if let (Some(v), Some(obj)) = (v.filter(|v| *v > 0), t.as_object_mut()) {
                obj.insert(k.into(), json!(v));
            }
        };
        if let Some(tcp) = &p.value.tcp {
            set("max_connections", tcp.max_connections);
        }
        if let Some(http) = &p.value.http {
            set("max_pending_requests", http.http1_max_pending_requests);
            set("max_requests", http.http2_max_requests);
            set("max_retries", http.max_retries);
        }
    }
    json!({ "thresholds": [t] })
}

/// `applyOutlierDetection` (cluster_traffic_policy.go): consecutive 5xx and gateway
/// errors with enforcement 100 % when > 0 (0 otherwise), success-rate ejection off,
/// interval / base ejection time as given (a base above 300 s also becomes
/// `max_ejection_time`), max ejection percent when > 0.
fn outlier_json<T>(
    dr: &Loaded<T>,
    o: &Sourced<'_, OutlierDetection>,
) -> Result<Value, TranslateError> {
    let v = o.value;
    let mut m = serde_json::Map::new();
    m.insert("enforcing_success_rate".into(), json!(0));
    if let Some(n) = v.consecutive_5xx_errors {
        m.insert("consecutive_5xx".into(), json!(n));
        m.insert(
            "enforcing_consecutive_5xx".into(),
            json!(if n > 0 { 100 } else { 0 }),
        );
    }
    if let Some(n) = v.consecutive_gateway_errors {
        m.insert("consecutive_gateway_failure".into(), json!(n));
        m.insert(
            "enforcing_consecutive_gateway_failure".into(),
            json!(if n > 0 { 100 } else { 0 }),
        );
    }
    if let Some(d) = &v.interval {
        m.insert(
            "interval".into(),
            json!(duration(dr, &format!("{}.interval", o.path), d)?),
        );
    }
    if let Some(d) = &v.base_ejection_time {
        let base = duration(dr, &format!("{}.baseEjectionTime", o.path), d)?;
        // Envoy caps ejections at max_ejection_time (default 300 s); istiod raises the
        // cap to a longer base ejection time.
        if parse_duration_nanos(d).is_some_and(|n| n > 300 * 1_000_000_000) {
            m.insert("max_ejection_time".into(), json!(base));
        }
        m.insert("base_ejection_time".into(), json!(base));
    }
    if let Some(p) = v.max_ejection_percent.filter(|p| *p > 0) {
        if p > 100 {
            return Err(dr.error(
                &format!("{}.maxEjectionPercent", o.path),
                format!("{p} is not a percentage"),
            ));
        }
        m.insert("max_ejection_percent".into(), json!(p));
    }
    Ok(Value::Object(m))
}

/// One cluster: STATIC with its load assignment inline (the EDS content istiod would
/// push), LEAST_REQUEST (Istio's default `simple`), the policy mapped.
fn cluster(
    ctx: &Context<'_>,
    dr: Option<&Loaded<DestinationRule>>,
    name: &str,
    policy: &Policy<'_>,
    endpoints: Vec<IstioEndpoint>,
) -> Result<Value, TranslateError> {
    let endpoints = super::translate::network_view(ctx, name, endpoints)?;
    let mut c = serde_json::Map::new();
    c.insert("name".into(), json!(name));
    c.insert("type".into(), json!("STATIC"));
    c.insert("lb_policy".into(), json!("LEAST_REQUEST"));
    let mut connect_timeout = DEFAULT_CONNECT_TIMEOUT.to_string();
    let mut common_lb = serde_json::Map::new();

    if let (Some(p), Some(dr)) = (&policy.pool, dr) {
        if let Some(d) = p
            .value
            .tcp
            .as_ref()
            .and_then(|t| t.connect_timeout.as_ref())
        {
            connect_timeout = duration(dr, &format!("{}.tcp.connectTimeout", p.path), d)?;
        }
        // applyConnectionPool: HTTP settings go into the upstream HttpProtocolOptions.
        if let Some(http) = &p.value.http {
            let mut common = serde_json::Map::new();
            if let Some(n) = http.max_requests_per_connection {
                common.insert("max_requests_per_connection".into(), json!(n));
            }
            if let Some(d) = &http.idle_timeout {
                common.insert(
                    "idle_timeout".into(),
                    json!(duration(dr, &format!("{}.http.idleTimeout", p.path), d)?),
                );
            }
            if !common.is_empty() {
                c.insert(
                    "typed_extension_protocol_options".into(),
                    json!({ "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                        "common_http_protocol_options": common,
                        "explicit_http_config": { "http_protocol_options": {} },
                    } }),
                );
            }
        }
    }
    c.insert("connect_timeout".into(), json!(connect_timeout));
    c.insert(
        "circuit_breakers".into(),
        circuit_breakers(policy.pool.as_ref()),
    );

    // Failover needs outlier detection: without it Envoy would never leave priority 0,
    // so istiod applies no priorities (`enableFailover`,
    // pilot/pkg/networking/core/loadbalancer/loadbalancer.go).
    let outlier = match (&policy.outlier, dr) {
        (Some(o), Some(dr)) => Some((outlier_json(dr, o)?, o.value.min_health_percent)),
        _ => None,
    };
    // GetEffectiveLbSetting: the DestinationRule's setting replaces the mesh default
    // (`enabled: true`, no failover rules) entirely; `enabled: false` turns it off.
    let locality = match &policy.locality {
        Some(l) if l.value.enabled == Some(false) => None,
        Some(l) => Some(FailoverSettings {
            failover: l
                .value
                .failover
                .iter()
                .map(|f| (f.from.clone(), f.to.clone()))
                .collect(),
            failover_priority: l.value.failover_priority.clone(),
        }),
        None => Some(FailoverSettings::default()),
    };
    let mut groups = endpoints::group_by_locality(endpoints);
    if outlier.is_some()
        && let Some(settings) = &locality
    {
        groups =
            endpoints::apply_failover(groups, &ctx.proxy_locality, &ctx.proxy_labels, settings);
        // Locality weights count only with this set; istiod sets it when failover is on.
        common_lb.insert("locality_weighted_lb_config".into(), json!({}));
    }
    if let Some((od, min_health)) = outlier {
        c.insert("outlier_detection".into(), od);
        // Panic mode off by default: healthy_panic_threshold = minHealthPercent (0).
        common_lb.insert(
            "healthy_panic_threshold".into(),
            json!({ "value": f64::from(min_health.unwrap_or(0)) }),
        );
    }
    if !common_lb.is_empty() {
        c.insert("common_lb_config".into(), Value::Object(common_lb));
    }
    if let Some(matches) = super::translate::transport_socket_matches(ctx, name, &groups)? {
        c.insert("transport_socket_matches".into(), matches);
    }
    c.insert(
        "load_assignment".into(),
        endpoints::load_assignment(name, &groups),
    );
    Ok(Value::Object(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::istiod::objects::{HttpPool, TcpPool};

    /// `applyConnectionPool` (cluster_traffic_policy.go) keeps the MaxUint32 defaults for
    /// limits set to 0 (it cannot tell 0 from unset) and applies the others.
    #[test]
    fn zero_pool_limits_keep_istio_defaults() {
        let pool = ConnectionPool {
            tcp: Some(TcpPool {
                max_connections: Some(0),
                connect_timeout: None,
            }),
            http: Some(HttpPool {
                http1_max_pending_requests: Some(7),
                http2_max_requests: Some(0),
                max_requests_per_connection: None,
                max_retries: Some(0),
                idle_timeout: None,
            }),
        };
        let sourced = Sourced {
            value: &pool,
            path: "spec.trafficPolicy.connectionPool".into(),
        };
        let max = u64::from(u32::MAX);
        assert_eq!(
            circuit_breakers(Some(&sourced)),
            json!({ "thresholds": [{
                "max_connections": max,
                "max_pending_requests": 7,
                "max_requests": max,
                "max_retries": max,
                "track_remaining": true,
            }] })
        );
    }
}
