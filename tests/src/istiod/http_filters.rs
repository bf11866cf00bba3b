//! The HTTP filter chain of an outbound sidecar or gateway connection manager, in the
//! order Istio 1.30.3 builds it (pilot/pkg/networking/core/listener_builder.go
//! `buildHTTPConnectionManager`):
//!
//! 1. metadata exchange (`istio.metadata_exchange`), then CUSTOM authorization
//!    (ext_authz), when an AuthorizationPolicy asks for it;
//! 2. AUTHN-phase extensions, the authentication filters (jwt_authn for a
//!    RequestAuthentication; inbound and gateways only);
//! 3. AUTHZ-phase extensions, the authorization filters (RBAC for an
//!    AuthorizationPolicy; inbound and gateways only);
//! 4. STATS-phase extensions, then extensions without a phase (`PopAppendHTTPTrafficExtension`,
//!    pilot/pkg/networking/core/extension/extensionfilter.go, in priority order);
//! 5. gRPC stats (`xdsfilters.GrpcStats`, pilot/pkg/xds/filters/filters.go), ALPN
//!    override (`istio.alpn`), fault, CORS, telemetry (`istio.stats`), router.
//!
//! The stand-in runs upstream Envoy, which has none of Istio's own filters
//! (`istio.metadata_exchange`, `istio.alpn`, `istio.stats`): those are left out. In
//! their place before the extensions it puts one upstream filter that, like Istio's
//! authentication and authorization filters or an earlier-phase extension, selects the
//! route before geolb runs: `envoy.filters.http.rbac` allowing everything, in the
//! authorization place, with a per-route configuration on every route
//! ([`route_reader_per_filter_config`]). Its shadow policy is named after the route, and
//! Envoy puts the shadow policy that matched into the request's dynamic metadata, which
//! the access log prints (`rbac=`): the route the RBAC filter saw, i.e. the route Envoy
//! had selected for the headers as they arrived. A request that geolb re-routes shows a
//! different route in `route=`. So the tests see the header change re-select the route
//! after an earlier filter resolved it (Envoy 1.40 clears the route cache on a header
//! change of a proxy-wasm ABI 0.2.1 module, and geolb calls `clear_route_cache` itself
//! too; tests/tests/envoy_facts.rs pins the first).

use serde_json::{Value, json};

use super::wasm::{Phase, WasmFilterConfig};

/// The route-reading filter the stand-in puts in the authorization place.
pub const ROUTE_READER_FILTER: &str = "envoy.filters.http.rbac";
/// Prefix of its per-route shadow policy: `route:<route name>`.
pub const ROUTE_POLICY_PREFIX: &str = "route:";
const RBAC_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC";
const RBAC_PER_ROUTE_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute";

/// An RBAC rule set with one policy `name` that every request matches.
fn allow_all(name: &str) -> Value {
    json!({
        "action": "ALLOW",
        "policies": { name: {
            "permissions": [{ "any": true }],
            "principals": [{ "any": true }],
        } },
    })
}

fn typed(name: &str, type_url: &str) -> Value {
    json!({ "name": name, "typed_config": { "@type": type_url } })
}

/// The connection manager's HTTP filters around `extensions` (each placed by its
/// phase), as the module doc lists them.
pub fn chain(extensions: &[WasmFilterConfig]) -> Vec<Value> {
    let of = |phase: Phase| {
        extensions
            .iter()
            .filter(move |e| e.phase == phase)
            .map(WasmFilterConfig::http_filter)
    };
    let mut filters: Vec<Value> = Vec::new();
    filters.extend(of(Phase::Authn));
    filters.extend(of(Phase::Authz));
    filters.push(json!({
        "name": ROUTE_READER_FILTER,
        "typed_config": { "@type": RBAC_TYPE, "rules": allow_all("stand-in-allow-all") },
    }));
    filters.extend(of(Phase::Stats));
    filters.extend(of(Phase::Unspecified));
    filters.push(json!({
        "name": "envoy.filters.http.grpc_stats",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig",
            "emit_filter_state": true,
            "stats_for_all_methods": false,
        },
    }));
    filters.push(typed(
        "envoy.filters.http.fault",
        "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
    ));
    filters.push(typed(
        "envoy.filters.http.cors",
        "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors",
    ));
    filters.push(typed(
        "envoy.filters.http.router",
        "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
    ));
    filters
}

/// The `typed_per_filter_config` every route gets: the route reader's allow-all rules
/// with a shadow policy `route:<route_name>` (see the module doc).
pub fn route_reader_per_filter_config(route_name: &str) -> Value {
    json!({ ROUTE_READER_FILTER: {
        "@type": RBAC_PER_ROUTE_TYPE,
        "rbac": {
            "rules": allow_all("stand-in-allow-all"),
            "shadow_rules": allow_all(&format!("{ROUTE_POLICY_PREFIX}{route_name}")),
        },
    } })
}
