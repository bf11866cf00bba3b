//! The east-west gateway: what istiod builds for a gateway pod selected by a Gateway
//! server in `AUTO_PASSTHROUGH` mode (geolb's `cross-network-gateway`, port 15443,
//! hosts `*.local`).
//!
//! `builtAutoPassthroughFilterChains` (pilot/pkg/networking/core/gateway.go): behind a
//! `tls_inspector`, one filter chain per in-mesh cluster SNI
//! `outbound_.PORT_.SUBSET_.HOST` (the service's and one per DestinationRule subset), each
//! matching that SNI and an Istio mTLS ALPN, with a `tcp_proxy` to the SNI-DNAT cluster
//! of the same name. `buildOutboundSniDnatClusters` (pilot/pkg/networking/core/cluster.go)
//! builds those clusters with the subset's traffic policy and no TLS origination: the
//! client's mTLS passes through to the destination sidecar. Their endpoints are the
//! gateway's network view (`ISTIO_META_REQUESTED_NETWORK_VIEW`) restricted to mTLS
//! endpoints (`EndpointsWithMTLSFilter`).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::TranslateError;
use super::clusters;
use super::load::Loaded;
use super::objects::{Gateway, Server};
use super::tls::{self, ISTIO_MTLS_ALPNS};
use super::translate::Context;

/// The east-west gateway's part of a translation: for the AUTO_PASSTHROUGH `servers` on
/// `port`, the listener `name` and the SNI-DNAT clusters of every registry service a
/// server host covers (`builtAutoPassthroughFilterChains` iterates the proxy's
/// services and keeps those whose host is a `SubsetOf` a server host).
pub fn listener_and_clusters(
    ctx: &Context<'_>,
    name: &str,
    port: u16,
    servers: &[(&Loaded<Gateway>, &Server)],
) -> Result<(Value, Vec<Value>), TranslateError> {
    let mut covered: BTreeSet<(u16, String)> = BTreeSet::new();
    for (host, service_port) in clusters::services(&ctx.registry.workloads).into_keys() {
        for (gw, server) in servers {
            let i = gw
                .value
                .spec
                .servers
                .iter()
                .position(|s| std::ptr::eq(s, *server))
                .unwrap_or_default();
            for (j, server_host) in server.hosts.iter().enumerate() {
                let path = format!("spec.servers[{i}].hosts[{j}]");
                if server_host_covers(gw, &path, server_host, &host)? {
                    covered.insert((service_port, host.clone()));
                }
            }
        }
    }
    let is_covered = |sni: &str| {
        covered.iter().any(|(p, h)| {
            sni.starts_with(&format!("outbound_.{p}_.")) && sni.ends_with(&format!("_.{h}"))
        })
    };
    let sni_clusters: Vec<Value> = clusters::build_named(ctx, tls::sni)?
        .into_iter()
        .filter(|c| {
            c.get("name")
                .and_then(Value::as_str)
                .is_some_and(is_covered)
        })
        .collect();
    let snis: Vec<String> = sni_clusters
        .iter()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    let mut listener = auto_passthrough_listener(port, &snis);
    if let Some(obj) = listener.as_object_mut() {
        obj.insert("name".into(), json!(name));
    }
    Ok((listener, sni_clusters))
}

/// Whether a Gateway server host covers a service host (`host.Name.SubsetOf`): exact,
/// `*` (everything) or `*.suffix` (any name ending in `.suffix`). Namespace-scoped forms
/// (`ns/host`) are not rendered by geolb and are an error.
pub fn server_host_covers(
    gw: &Loaded<Gateway>,
    path: &str,
    server_host: &str,
    host: &str,
) -> Result<bool, TranslateError> {
    if server_host.contains('/') {
        return Err(gw.error(
            path,
            format!("`{server_host}`: namespace-scoped hosts are not rendered by geolb; the stand-in does not translate them"),
        ));
    }
    Ok(match server_host.strip_prefix('*') {
        Some("") => true,
        Some(suffix) if suffix.starts_with('.') => host.ends_with(suffix),
        Some(_) => {
            return Err(gw.error(
                path,
                format!("`{server_host}`: a wildcard must be `*` or `*.suffix`"),
            ));
        }
        None => host == server_host,
    })
}

/// The gateway listener `0.0.0.0_PORT` for AUTO_PASSTHROUGH: one filter chain per SNI
/// (sorted, as istiod's `sortFilterChains` makes the order deterministic), each a
/// `tcp_proxy` to the cluster of that name.
pub fn auto_passthrough_listener(port: u16, snis: &[String]) -> Value {
    let mut snis = snis.to_vec();
    snis.sort();
    snis.dedup();
    let chains: Vec<Value> = snis
        .iter()
        .map(|sni| {
            json!({
                "name": sni,
                "filter_chain_match": {
                    "server_names": [sni],
                    "application_protocols": ISTIO_MTLS_ALPNS,
                },
                "filters": [{
                    "name": "envoy.filters.network.tcp_proxy",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                        "stat_prefix": sni,
                        "cluster": sni,
                    },
                }],
            })
        })
        .collect();
    json!({
        "name": format!("0.0.0.0_{port}"),
        "address": { "socket_address": { "address": "127.0.0.1", "port_value": 0 } },
        "listener_filters": [{
            "name": "envoy.filters.listener.tls_inspector",
            "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector" },
        }],
        "filter_chains": chains,
    })
}
