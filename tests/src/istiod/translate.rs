//! `translate`: the bootstrap istiod's pushes amount to for one proxy — node,
//! listeners with their route configurations, clusters with endpoints — plus the ECDS
//! files of its wasm filters.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::endpoints::{self, IstioEndpoint, LocalityGroup};
use super::load::{ClusterManifests, Loaded};
use super::objects::{Gateway, Server};
use super::wasm::{self, WasmFilterConfig};
use super::{
    Environment, Proxy, ProxyRole, Registry, TranslateError, Translated, agent, clusters, routes,
};

/// Everything one translation looks at.
pub struct Context<'a> {
    pub manifests: &'a ClusterManifests,
    pub registry: &'a Registry,
    pub proxy: &'a Proxy,
    pub env: &'a Environment,
    /// The proxy's augmented labels (failoverPriority key-form compares with these).
    pub proxy_labels: BTreeMap<String, String>,
    /// The proxy's locality as istiod knows it (locality failover is relative to it).
    pub proxy_locality: super::Locality,
}

/// Access log path (relative to the run directory, Envoy's working directory).
pub const ACCESS_LOG: &str = "access.log";
/// Outlier detection event log path (relative, like [`ACCESS_LOG`]).
pub const OUTLIER_LOG: &str = "outlier.log";
/// Worker threads when [`Environment::concurrency`] is 0.
pub const DEFAULT_CONCURRENCY: u32 = 2;

/// Builds the Envoy configuration istiod would push to `proxy` in the cluster of
/// `manifests`, with `registry` as the service registry. Anything in the manifests it
/// does not understand is an error.
pub fn translate(
    manifests: &ClusterManifests,
    registry: &Registry,
    proxy: &Proxy,
    env: &Environment,
) -> Result<Translated, TranslateError> {
    let ctx = Context {
        manifests,
        registry,
        proxy,
        env,
        proxy_labels: endpoints::proxy_labels(proxy),
        proxy_locality: agent::istiod_locality(proxy),
    };
    let injected = agent::injected_env(manifests)?;
    agent::check_injected(injected.as_ref(), proxy)?;
    let filters = wasm::filters_for(manifests, proxy, env)?;
    let mut listeners = Vec::new();
    let mut names = Vec::new();
    let mut extra_clusters = Vec::new();
    match proxy.role {
        ProxyRole::Sidecar => {
            // One outbound listener per service port (`buildSidecarOutboundListeners`),
            // its routes from RDS `"<port>"` (inline here).
            let mut by_port: BTreeMap<u16, Vec<String>> = BTreeMap::new();
            for (host, port) in clusters::services(&registry.workloads).into_keys() {
                by_port.entry(port).or_default().push(host);
            }
            for (port, hosts) in by_port {
                let rc = routes::sidecar_route_config(&ctx, port, &hosts)?;
                let name = listener_name(port);
                listeners.push(http_listener(&name, port, rc, &filters, false));
                names.push((name, port));
            }
        }
        ProxyRole::Gateway => {
            let (http, tls) = gateway_servers(&ctx)?;
            for (port, servers) in http {
                let rc = routes::gateway_route_config(&ctx, port, &servers)?;
                let name = listener_name(port);
                listeners.push(http_listener(&name, port, rc, &filters, true));
                names.push((name, port));
            }
            for (port, servers) in tls {
                let name = listener_name(port);
                let (listener, clusters) = east_west_listener(&ctx, &name, port, &servers)?;
                listeners.push(listener);
                extra_clusters.extend(clusters);
                names.push((name, port));
            }
        }
    }
    let mut all_clusters = clusters::build(&ctx)?;
    all_clusters.extend(extra_clusters);
    let bootstrap = json!({
        "node": agent::node(proxy, injected.as_ref()),
        "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": 0 } } },
        "static_resources": {
            "listeners": listeners,
            "clusters": all_clusters,
            "secrets": super::tls::bootstrap_secrets(&proxy.spiffe_id()),
        },
        "cluster_manager": { "outlier_detection": { "event_log_path": OUTLIER_LOG } },
    });
    Ok(Translated {
        bootstrap,
        ecds: filters
            .iter()
            .map(|f| (f.ecds_file.clone(), f.ecds_response(1)))
            .collect(),
        listeners: names,
        concurrency: if env.concurrency == 0 {
            DEFAULT_CONCURRENCY
        } else {
            env.concurrency
        },
    })
}

/// Istio's listener name for a port on all addresses: `0.0.0.0_<port>`.
pub fn listener_name(port: u16) -> String {
    format!("0.0.0.0_{port}")
}

/// An HTTP listener with the connection manager istiod builds for outbound traffic:
/// Istio's HTTP filter chain with the wasm filters (ECDS) in their phases' places
/// ([`super::http_filters::chain`]), an access log, the route configuration inline.
/// Bound to 127.0.0.1:0 (istio's outbound listeners are virtual, reached via iptables;
/// the harness reads the bound port).
fn http_listener(
    name: &str,
    port: u16,
    route_config: Value,
    filters: &[WasmFilterConfig],
    gateway: bool,
) -> Value {
    let http_filters = super::http_filters::chain(filters);
    json!({
        "name": name,
        "address": { "socket_address": { "address": "127.0.0.1", "port_value": 0 } },
        "traffic_direction": "OUTBOUND",
        "filter_chains": [{ "filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": format!("outbound_0.0.0.0_{port}"),
                // Gateways are the edge: they trust the peer address, sidecars do not.
                "use_remote_address": gateway,
                "route_config": route_config,
                "http_filters": http_filters,
                "access_log": access_log(),
            },
        }] }],
    })
}

/// The connection managers' access log: [`ACCESS_LOG`] in the harness's format
/// (`crate::config::ACCESS_LOG_FORMAT`: upstream cluster and host per request).
pub fn access_log() -> Value {
    json!([{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": ACCESS_LOG,
            "log_format": { "text_format_source": { "inline_string": crate::config::ACCESS_LOG_FORMAT } },
        },
    }])
}

type ServersByPort<'m> = BTreeMap<u16, Vec<(&'m Loaded<Gateway>, &'m Server)>>;

/// The servers of the Gateways whose selector matches the proxy's labels, by port:
/// HTTP ones, and TLS `AUTO_PASSTHROUGH` ones (the east-west gateway). Other server
/// kinds are not rendered for data traffic by geolb and are errors.
fn gateway_servers<'m>(
    ctx: &Context<'m>,
) -> Result<(ServersByPort<'m>, ServersByPort<'m>), TranslateError> {
    let mut http: ServersByPort<'m> = BTreeMap::new();
    let mut tls: ServersByPort<'m> = BTreeMap::new();
    let mut selected = 0;
    for gw in &ctx.manifests.gateways {
        let sel = &gw.value.spec.selector;
        if sel.is_empty() || !sel.iter().all(|(k, v)| ctx.proxy.labels.get(k) == Some(v)) {
            continue;
        }
        selected += 1;
        for (i, server) in gw.value.spec.servers.iter().enumerate() {
            let protocol = server.port.protocol.to_ascii_uppercase();
            let mode = server.tls.as_ref().map(|t| t.mode.as_str());
            match (protocol.as_str(), mode) {
                ("HTTP", None) => http
                    .entry(server.port.number)
                    .or_default()
                    .push((gw, server)),
                ("TLS", Some("AUTO_PASSTHROUGH")) => {
                    tls.entry(server.port.number)
                        .or_default()
                        .push((gw, server));
                }
                _ => {
                    return Err(gw.error(
                        &format!("spec.servers[{i}]"),
                        format!(
                            "a {} server{} is not translated by the stand-in",
                            server.port.protocol,
                            mode.map(|m| format!(" with tls mode {m}"))
                                .unwrap_or_default()
                        ),
                    ));
                }
            }
        }
    }
    if selected == 0 {
        return Err(TranslateError {
            at: format!("clusters/{}", ctx.manifests.cluster),
            message: format!(
                "no Gateway selects the gateway proxy's labels {:?}",
                ctx.proxy.labels
            ),
        });
    }
    Ok((http, tls))
}

/// A Go duration (`1m`, `1.5s`, `100ms`, `1h30m`) as an Envoy JSON duration (`60s`).
pub fn duration<T>(loaded: &Loaded<T>, field: &str, text: &str) -> Result<String, TranslateError> {
    parse_duration_nanos(text)
        .map(|n| {
            let secs = n / 1_000_000_000;
            let frac = n % 1_000_000_000;
            if frac == 0 {
                format!("{secs}s")
            } else {
                let f = format!("{frac:09}");
                format!("{secs}.{}s", f.trim_end_matches('0'))
            }
        })
        .ok_or_else(|| loaded.error(field, format!("`{text}` is not a duration")))
}

/// Nanoseconds of a Go duration, `None` if it is not one.
pub fn parse_duration_nanos(text: &str) -> Option<u128> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: u128 = match unit {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" => 1_000,
            "ns" => 1,
            _ => return None,
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        total += int * scale;
        if !frac.is_empty() {
            let digits: u32 = u32::try_from(frac.len()).ok()?;
            let frac_value: u128 = frac.parse().ok()?;
            total += frac_value * scale / 10u128.checked_pow(digits)?;
        }
        rest = tail;
    }
    Some(total)
}

// ---- Multi-network hooks ---------------------------------------------------------
// Filled by helper "multinet": tests/src/istiod/{network,tls,eastwest}.rs.

/// Network view, split horizon, SNI-DNAT mTLS filter (`EndpointBuilder.generate`,
/// pilot/pkg/xds/endpoints/endpoint_builder.go): see
/// [`super::network::endpoints_for_proxy`].
pub fn network_view(
    ctx: &Context<'_>,
    cluster: &str,
    endpoints: Vec<IstioEndpoint>,
) -> Result<Vec<IstioEndpoint>, TranslateError> {
    super::network::endpoints_for_proxy(
        ctx.manifests,
        ctx.registry,
        ctx.proxy,
        ctx.env,
        cluster,
        endpoints,
    )
}

/// Auto mTLS: see [`super::tls::transport_socket_matches_for`]; the server must
/// present one of the identities of the cluster's service (`cluster_cache.go` passes
/// `PushContext.ServiceAccounts(host, namespace)`).
pub fn transport_socket_matches(
    ctx: &Context<'_>,
    cluster: &str,
    groups: &[LocalityGroup],
) -> Result<Option<Value>, TranslateError> {
    let host = cluster.rsplit('|').next().unwrap_or_default();
    let sans = super::tls::service_accounts(&ctx.registry.workloads, host);
    Ok(super::tls::transport_socket_matches_for(
        cluster, groups, &sans,
    ))
}

/// The east-west gateway's `AUTO_PASSTHROUGH` listener and its SNI-DNAT clusters: see
/// [`super::eastwest::listener_and_clusters`].
fn east_west_listener(
    ctx: &Context<'_>,
    name: &str,
    port: u16,
    servers: &[(&Loaded<Gateway>, &Server)],
) -> Result<(Value, Vec<Value>), TranslateError> {
    super::eastwest::listener_and_clusters(ctx, name, port, servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_become_envoy_durations() {
        let loaded = Loaded {
            file: "f.yaml".into(),
            value: (),
        };
        let d = |t: &str| duration(&loaded, "x", t);
        assert_eq!(d("1m").unwrap(), "60s");
        assert_eq!(d("1h30m").unwrap(), "5400s");
        assert_eq!(d("100ms").unwrap(), "0.1s");
        assert_eq!(d("1.5s").unwrap(), "1.5s");
        assert!(d("10").is_err());
        assert!(d("5 minutes").is_err());
    }
}
