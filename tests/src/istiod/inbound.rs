//! The destination side of Istio mTLS: a workload's sidecar inbound listener, which
//! terminates the mTLS a client sidecar (directly, or through an east-west gateway)
//! originated and hands plain HTTP to the app.
//!
//! Istio captures inbound traffic with iptables into `virtualInbound` (port 15006,
//! pilot/pkg/networking/core/listener_inbound.go) and picks the filter chain by the
//! original destination port; here the client reaches the listener directly (the
//! registry's `Workload.address` is this listener), so the chains match on transport
//! and ALPN only. PERMISSIVE (Istio's default PeerAuthentication) keeps a plaintext
//! chain next to the mTLS one.

use std::net::SocketAddr;

use serde_json::{Value, json};

use super::agent::node;
use super::tls::{ISTIO_MTLS_ALPNS, inbound_mtls_socket};
use super::translate::access_log;
use super::{Proxy, Translated};

/// Istio's inbound capture listener name and port.
pub const VIRTUAL_INBOUND: &str = "virtualInbound";
pub const VIRTUAL_INBOUND_PORT: u16 = 15006;

/// `inbound|PORT||` (`model.BuildInboundSubsetKey`): the cluster to the app itself.
pub fn inbound_cluster_name(port: u16) -> String {
    format!("inbound|{port}||")
}

/// The inbound cluster: the app on `app` (STATIC; istiod uses ORIGINAL_DST or
/// 127.0.0.1/pod IP, the stand-in knows the address).
pub fn inbound_cluster(port: u16, app: SocketAddr) -> Value {
    let name = inbound_cluster_name(port);
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "10s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": { "socket_address": {
                "address": app.ip().to_string(),
                "port_value": app.port(),
            } } } }] }],
        },
    })
}

/// The HTTP connection manager of an inbound chain: every request to the app
/// (`inbound|http|PORT` virtual host with domain `*`, as istiod builds it).
fn inbound_hcm(port: u16, access_log: &Value) -> Value {
    let cluster = inbound_cluster_name(port);
    json!({
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": format!("inbound_0.0.0.0_{port}"),
            "access_log": access_log,
            "http_filters": [{
                "name": "envoy.filters.http.router",
                "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
            }],
            "route_config": {
                "name": cluster,
                "virtual_hosts": [{
                    "name": format!("inbound|http|{port}"),
                    "domains": ["*"],
                    "routes": [{
                        "name": "default",
                        "match": { "prefix": "/" },
                        "route": { "cluster": cluster, "timeout": "0s" },
                    }],
                }],
            },
        },
    })
}

/// The `virtualInbound` listener for an app serving `port`: an mTLS chain (TLS with an
/// Istio ALPN, client certificate required) and a plaintext chain (PERMISSIVE), both
/// to `inbound|PORT||`. `access_log` is the HCM's `access_log` list
/// ([`super::translate::access_log`]).
pub fn virtual_inbound_listener(port: u16, access_log: &Value) -> Value {
    json!({
        "name": VIRTUAL_INBOUND,
        "address": { "socket_address": { "address": "127.0.0.1", "port_value": 0 } },
        "listener_filters": [{
            "name": "envoy.filters.listener.tls_inspector",
            "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector" },
        }],
        "filter_chains": [
            {
                "name": format!("0.0.0.0_{port}_mtls"),
                "filter_chain_match": {
                    "transport_protocol": "tls",
                    "application_protocols": ISTIO_MTLS_ALPNS,
                },
                "transport_socket": inbound_mtls_socket(),
                "filters": [inbound_hcm(port, access_log)],
            },
            {
                "name": format!("0.0.0.0_{port}_plaintext"),
                "filter_chain_match": { "transport_protocol": "raw_buffer" },
                "filters": [inbound_hcm(port, access_log)],
            },
        ],
    })
}

/// The configuration of a destination sidecar: `proxy`'s inbound listener for its app
/// on `app` serving `port`, the inbound cluster, nothing outbound (these tests send no
/// traffic from the destination app). Start it before the gateways and clients: its
/// listener is the address the registry gives the workload.
pub fn translate_inbound(
    proxy: &Proxy,
    port: u16,
    app: SocketAddr,
    concurrency: u32,
) -> Translated {
    let bootstrap = json!({
        "node": node(proxy, None),
        "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": 0 } } },
        "static_resources": {
            "listeners": [virtual_inbound_listener(port, &access_log())],
            "clusters": [inbound_cluster(port, app)],
            "secrets": super::tls::bootstrap_secrets(&proxy.spiffe_id()),
        },
    });
    Translated {
        bootstrap,
        ecds: Default::default(),
        listeners: vec![(VIRTUAL_INBOUND.to_string(), VIRTUAL_INBOUND_PORT)],
        concurrency: concurrency.max(1),
    }
}
