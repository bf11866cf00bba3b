//! Route configurations: VirtualService HTTP routes to Envoy routes
//! (pilot/pkg/networking/core/route/route.go `TranslateRoutes`), the virtual hosts of a
//! sidecar's outbound port (pilot/pkg/networking/core/httproute.go) and of a gateway's
//! HTTP server (pilot/pkg/networking/core/gateway.go).

use serde_json::{Value, json};

use super::TranslateError;
use super::clusters::{cluster_name, resolve_host};
use super::http_filters::route_reader_per_filter_config;
use super::load::Loaded;
use super::objects::{Gateway, HttpRoute, Match, Retries, Server, StringMatch, VirtualService};
use super::translate::{Context, duration};

/// Istio's default retry policy (`DefaultPolicy`, Istio 1.30.3
/// pilot/pkg/networking/core/route/retry/retry.go): 2 retries on connect failures,
/// refused streams, unavailable and cancelled, on another host (previous-hosts
/// predicate, up to 5 host selection attempts). `retry_on` names
/// `retriable-status-codes` but istiod sets no codes, so no status code is retried
/// (a 503 answer is not): only a VirtualService `retryOn` with codes adds them.
pub fn default_retry_policy() -> Value {
    json!({
        "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
        "num_retries": 2,
        "retry_host_predicate": [{
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": { "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate" },
        }],
        "host_selection_retry_max_attempts": 5,
    })
}

/// The status codes Go's `http.StatusText` names: istiod's `parseRetryOn` takes a
/// numeric token as a retriable status code only when it is one of these.
const GO_STATUS_TEXT_CODES: &[i64] = &[
    100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304,
    305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415,
    416, 417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505,
    506, 507, 508, 510, 511,
];

/// `parseRetryOn` (retry.go): a token that parses as an integer (`strconv.Atoi`: an
/// optional sign, decimal digits) and names a known HTTP status is a retriable status
/// code; every other token (`599`, `bogus`) stays an Envoy retry condition.
fn parse_retry_on(text: &str) -> (Vec<String>, Vec<u32>) {
    let mut on = Vec::new();
    let mut codes = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<i64>() {
            Ok(code) if GO_STATUS_TEXT_CODES.contains(&code) => {
                codes.extend(u32::try_from(code).ok());
            }
            _ => on.push(part.to_string()),
        }
    }
    (on, codes)
}

/// `ConvertPolicy`'s `retry_on`: the conditions joined by `,`; when there are codes and
/// the joined text does not contain `retriable-status-codes` (a substring test), istiod
/// appends `,retriable-status-codes`, so a `retryOn` of codes only becomes
/// `,retriable-status-codes` (Envoy skips the empty token).
fn retry_on_text(on: &[String], codes: &[u32]) -> String {
    let mut text = on.join(",");
    if !codes.is_empty() && !text.contains("retriable-status-codes") {
        text.push_str(",retriable-status-codes");
    }
    text
}

/// `ConvertPolicy` (retry.go): no `retries` → the default policy; `attempts: 0` →
/// none; else the default with `num_retries` = attempts, `retryOn` (when given)
/// replacing the conditions, split into conditions and status codes ([`retry_on_text`]),
/// the per-try timeout, `retryIgnorePreviousHosts` (false drops the previous-hosts
/// predicate), `retryRemoteLocalities: true` → the previous-priorities retry priority
/// (update frequency 2), and `backoff` → `retry_back_off.base_interval`. geolb renders
/// no consistent-hash load balancer, so the consistent-hash variant (no predicate) is
/// not modelled.
fn retry_policy(
    vs: &Loaded<VirtualService>,
    path: &str,
    retries: Option<&Retries>,
) -> Result<Option<Value>, TranslateError> {
    let Some(r) = retries else {
        return Ok(Some(default_retry_policy()));
    };
    if r.attempts == 0 {
        return Ok(None);
    }
    let mut p = default_retry_policy();
    let Some(obj) = p.as_object_mut() else {
        return Ok(None);
    };
    obj.insert("num_retries".into(), json!(r.attempts));
    if let Some(text) = r.retry_on.as_deref().filter(|t| !t.is_empty()) {
        let (on, codes) = parse_retry_on(text);
        obj.insert("retry_on".into(), json!(retry_on_text(&on, &codes)));
        if !codes.is_empty() {
            obj.insert("retriable_status_codes".into(), json!(codes));
        }
    }
    if let Some(d) = &r.per_try_timeout {
        obj.insert(
            "per_try_timeout".into(),
            json!(duration(vs, &format!("{path}.perTryTimeout"), d)?),
        );
    }
    if r.retry_ignore_previous_hosts == Some(false) {
        obj.remove("retry_host_predicate");
    }
    if r.retry_remote_localities == Some(true) {
        obj.insert(
            "retry_priority".into(),
            json!({
                "name": "envoy.retry_priorities.previous_priorities",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
                    "update_frequency": 2,
                },
            }),
        );
    }
    if let Some(d) = &r.backoff {
        obj.insert(
            "retry_back_off".into(),
            json!({ "base_interval": duration(vs, &format!("{path}.backoff"), d)? }),
        );
    }
    Ok(Some(p))
}

/// The route action istiod builds for one destination: the cluster, timeout 0s (Istio
/// disables Envoy's 15 s default), the retry policy.
fn route_action(cluster: &str, retry: Option<Value>) -> Value {
    let mut action = json!({ "cluster": cluster, "timeout": "0s", "max_grpc_timeout": "0s" });
    if let (Some(r), Some(obj)) = (retry, action.as_object_mut()) {
        obj.insert("retry_policy".into(), r);
    }
    action
}

/// `BuildDefaultHTTPOutboundRoute`: a service without VirtualService gets one route,
/// prefix `/`, to its default cluster with the default retry policy.
pub fn default_route(cluster: &str) -> Value {
    json!({
        "name": "default",
        "match": { "prefix": "/" },
        "route": route_action(cluster, Some(default_retry_policy())),
        "typed_per_filter_config": route_reader_per_filter_config("default"),
    })
}

/// The one condition of a StringMatch; neither or both is an error.
fn one_of<'v>(
    vs: &Loaded<VirtualService>,
    path: &str,
    m: &'v StringMatch,
) -> Result<Match<'v>, TranslateError> {
    m.get().ok_or_else(|| {
        vs.error(
            path,
            "a StringMatch needs exactly one of `exact`, `prefix`, `regex`",
        )
    })
}

/// `ConvertToEnvoyMatch` (pilot/pkg/networking/util/util.go): an Istio StringMatch as
/// an Envoy StringMatcher.
fn envoy_string_match(m: Match<'_>) -> Value {
    match m {
        Match::Exact(v) => json!({ "exact": v }),
        Match::Prefix(v) => json!({ "prefix": v }),
        Match::Regex(r) => json!({ "safe_regex": { "regex": r } }),
    }
}

/// One VirtualService HTTP route → one Envoy route per match block (none → a single
/// route with prefix `/`): uri exact → `path`, prefix → `prefix`; header matches as
/// `string_match`; `headers.request.remove` → `request_headers_to_remove`.
fn translate_http_route(
    ctx: &Context<'_>,
    vs: &Loaded<VirtualService>,
    index: usize,
    route: &HttpRoute,
) -> Result<Vec<Value>, TranslateError> {
    let path = format!("spec.http[{index}]");
    let [destination] = route.route.as_slice() else {
        return Err(vs.error(
            &format!("{path}.route"),
            format!(
                "{} destinations: geolb renders exactly one per route (no weighted split)",
                route.route.len()
            ),
        ));
    };
    let d = &destination.destination;
    let host = resolve_host(&d.host, vs.value.metadata.namespace());
    let port = match &d.port {
        Some(p) => p.number,
        None => {
            let ports: Vec<u16> = ctx
                .registry
                .workloads
                .iter()
                .filter(|w| w.service == host)
                .map(|w| w.port)
                .collect::<std::collections::BTreeSet<u16>>()
                .into_iter()
                .collect();
            match ports.as_slice() {
                [only] => *only,
                _ => {
                    return Err(vs.error(
                        &format!("{path}.route[0].destination.port"),
                        format!(
                            "no port, and {host} has {} ports in the registry",
                            ports.len()
                        ),
                    ));
                }
            }
        }
    };
    let cluster = cluster_name(port, d.subset.as_deref().unwrap_or(""), &host);
    let retry = retry_policy(vs, &format!("{path}.retries"), route.retries.as_ref())?;
    let remove: Vec<String> = route
        .headers
        .as_ref()
        .and_then(|h| h.request.as_ref())
        .map(|r| r.remove.clone())
        .unwrap_or_default();
    let matches: Vec<Option<&super::objects::HttpMatch>> = if route.matches.is_empty() {
        vec![None]
    } else {
        route.matches.iter().map(Some).collect()
    };
    let mut out = Vec::new();
    for (j, m) in matches.into_iter().enumerate() {
        let mpath = format!("{path}.match[{j}]");
        let mut rm = serde_json::Map::new();
        match m.and_then(|m| m.uri.as_ref()) {
            Some(uri) => match one_of(vs, &format!("{mpath}.uri"), uri)? {
                Match::Exact(p) => rm.insert("path".into(), json!(p)),
                Match::Prefix(p) => rm.insert("prefix".into(), json!(p)),
                Match::Regex(p) => rm.insert("safe_regex".into(), json!({ "regex": p })),
            },
            None => rm.insert("prefix".into(), json!("/")),
        };
        // `TranslateRouteMatch` (route.go): the header matches, then `:method`.
        let method = m.and_then(|m| m.method.as_ref()).map(|sm| (":method", sm));
        let header_matches = m
            .into_iter()
            .flat_map(|m| m.headers.iter().map(|(n, sm)| (n.as_str(), sm)))
            .chain(method);
        let mut headers = Vec::new();
        for (name, sm) in header_matches {
            let string_match =
                envoy_string_match(one_of(vs, &format!("{mpath}.headers.{name}"), sm)?);
            headers.push(json!({ "name": name, "string_match": string_match }));
        }
        if !headers.is_empty() {
            rm.insert("headers".into(), json!(headers));
        }
        let mut r = serde_json::Map::new();
        if let Some(name) = &route.name {
            r.insert("name".into(), json!(name));
        }
        r.insert("match".into(), Value::Object(rm));
        r.insert("route".into(), route_action(&cluster, retry.clone()));
        if !remove.is_empty() {
            r.insert("request_headers_to_remove".into(), json!(remove));
        }
        r.insert(
            "typed_per_filter_config".into(),
            route_reader_per_filter_config(route.name.as_deref().unwrap_or_default()),
        );
        out.push(Value::Object(r));
    }
    Ok(out)
}

/// All Envoy routes of a VirtualService, in order.
fn translate_virtual_service(
    ctx: &Context<'_>,
    vs: &Loaded<VirtualService>,
) -> Result<Vec<Value>, TranslateError> {
    let mut routes = Vec::new();
    for (i, r) in vs.value.spec.http.iter().enumerate() {
        routes.extend(translate_http_route(ctx, vs, i, r)?);
    }
    Ok(routes)
}

/// Whether a VirtualService applies to sidecars: `gateways` absent, or listing `mesh`.
fn applies_to_mesh(vs: &VirtualService) -> bool {
    vs.spec
        .gateways
        .as_ref()
        .is_none_or(|g| g.iter().any(|n| n == "mesh"))
}

/// The mesh VirtualService for a service host, if any. istiod picks the oldest when
/// several claim one host; geolb renders one, so several is an error here.
fn mesh_virtual_service<'m>(
    ctx: &Context<'m>,
    host: &str,
) -> Result<Option<&'m Loaded<VirtualService>>, TranslateError> {
    let mut found = None;
    for vs in ctx
        .manifests
        .virtual_services
        .iter()
        .filter(|v| applies_to_mesh(&v.value))
    {
        for (i, h) in vs.value.spec.hosts.iter().enumerate() {
            let resolved = resolve_host(h, vs.value.metadata.namespace());
            if resolved.contains('*') {
                return Err(vs.error(
                    &format!("spec.hosts[{i}]"),
                    "wildcard hosts on a mesh VirtualService are not rendered by geolb",
                ));
            }
            if resolved == host
                && let Some(first) = found.replace(vs)
            {
                return Err(vs.error(
                    &format!("spec.hosts[{i}]"),
                    format!(
                        "{host} is also routed by {}; the stand-in does not merge VirtualServices",
                        first.file
                    ),
                ));
            }
        }
    }
    Ok(found)
}

/// The domains of a service's virtual host for a sidecar in `proxy_namespace`
/// (`generateVirtualHostDomains` + `GenerateAltVirtualHosts`, httproute.go): the FQDN,
/// then for a Kubernetes service in the proxy's namespace `name`, `name.ns.svc`,
/// `name.ns`, in another namespace `name.ns`, `name.ns.svc`. No `:port` forms: sidecar
/// route configurations set `ignore_port_in_host_matching` (`SidecarIgnorePort`), so
/// `reviews:9080` matches `reviews`. The service VIP is not added (the registry has none).
pub fn sidecar_domains(host: &str, proxy_namespace: &str) -> Vec<String> {
    let mut domains = vec![host.to_string()];
    if let Some(ih) = host.find(".svc.")
        && host.ends_with(".svc.cluster.local")
        && let Some(dot) = host.find('.')
        && dot < ih
    {
        let name = &host[..dot];
        let name_ns = &host[..ih];
        let ns = &host[dot + 1..ih];
        if ns == proxy_namespace {
            domains.extend([
                name.to_string(),
                format!("{name_ns}.svc"),
                name_ns.to_string(),
            ]);
        } else {
            domains.extend([name_ns.to_string(), format!("{name_ns}.svc")]);
        }
    }
    domains
}

/// The route configuration `"<port>"` of a sidecar's outbound listener: one virtual
/// host `<host>:<port>` per service on that port, with its VirtualService's routes or
/// the default route. Istio's catch-all `allow_any` virtual host (PassthroughCluster)
/// is left out: unknown authorities get Envoy's 404 here.
pub fn sidecar_route_config(
    ctx: &Context<'_>,
    port: u16,
    hosts: &[String],
) -> Result<Value, TranslateError> {
    let mut vhosts = Vec::new();
    for host in hosts {
        let routes = match mesh_virtual_service(ctx, host)? {
            Some(vs) => translate_virtual_service(ctx, vs)?,
            None => vec![default_route(&cluster_name(port, "", host))],
        };
        vhosts.push(json!({
            "name": format!("{host}:{port}"),
            "domains": sidecar_domains(host, &ctx.proxy.namespace),
            "routes": routes,
            "include_request_attempt_count": true,
        }));
    }
    Ok(json!({
        "name": port.to_string(),
        "virtual_hosts": vhosts,
        "validate_clusters": false,
        "ignore_port_in_host_matching": true,
    }))
}

/// Whether `vs` is bound to the Gateway `gw` (`gateways` entries are `name` in the
/// VirtualService's namespace or `namespace/name`).
fn bound_to(vs: &VirtualService, gw: &Gateway) -> bool {
    let gw_id = format!("{}/{}", gw.metadata.namespace(), gw.metadata.name);
    vs.spec.gateways.as_ref().is_some_and(|names| {
        names.iter().any(|n| {
            if n.contains('/') {
                *n == gw_id
            } else {
                format!("{}/{n}", vs.metadata.namespace()) == gw_id
            }
        })
    })
}

/// The host two host patterns have in common (`*` and `*.suffix` wildcards), if any.
fn intersect(a: &str, b: &str) -> Option<String> {
    let covers = |wild: &str, h: &str| {
        wild == "*"
            || wild
                .strip_prefix('*')
                .is_some_and(|suffix| h.ends_with(suffix))
    };
    if a == b {
        Some(a.to_string())
    } else if covers(a, b) {
        Some(b.to_string())
    } else if covers(b, a) {
        Some(a.to_string())
    } else {
        None
    }
}

/// The route configuration `http.<port>` of a gateway's HTTP servers on one port: a
/// virtual host `<host>:<port>` per host shared by a server and a VirtualService bound
/// to its Gateway, with those VirtualServices' routes (sorted by namespace/name, where
/// istiod sorts by creation time). Domains: `*` stays `*`; a hostname gets itself and
/// `host:*` [INFERENCE from gateway.go: gateways match any port]. No virtual host at
/// all → `blackhole:<port>` without routes (404), as istiod does.
pub fn gateway_route_config(
    ctx: &Context<'_>,
    port: u16,
    servers: &[(&Loaded<Gateway>, &Server)],
) -> Result<Value, TranslateError> {
    let mut bound: Vec<&Loaded<VirtualService>> = ctx.manifests.virtual_services.iter().collect();
    bound.sort_by(|a, b| {
        (a.value.metadata.namespace(), &a.value.metadata.name)
            .cmp(&(b.value.metadata.namespace(), &b.value.metadata.name))
    });
    // (vhost host, routes) in first-seen order.
    let mut vhosts: Vec<(String, Vec<Value>)> = Vec::new();
    for (gw, server) in servers {
        for server_host in &server.hosts {
            // `namespace/host` server hosts restrict the VirtualService namespace.
            let (ns_filter, server_host) = match server_host.split_once('/') {
                Some((ns, h)) => (Some(ns), h),
                None => (None, server_host.as_str()),
            };
            for vs in bound.iter().filter(|v| bound_to(&v.value, &gw.value)) {
                if ns_filter
                    .is_some_and(|ns| ns != "*" && ns != "." && ns != vs.value.metadata.namespace())
                {
                    continue;
                }
                for vs_host in &vs.value.spec.hosts {
                    let Some(host) = intersect(server_host, vs_host) else {
                        continue;
                    };
                    let routes = translate_virtual_service(ctx, vs)?;
                    match vhosts.iter_mut().find(|(h, _)| *h == host) {
                        Some((_, existing)) => existing.extend(routes),
                        None => vhosts.push((host, routes)),
                    }
                }
            }
        }
    }
    let virtual_hosts: Vec<Value> = if vhosts.is_empty() {
        vec![json!({ "name": format!("blackhole:{port}"), "domains": ["*"], "routes": [] })]
    } else {
        vhosts
            .into_iter()
            .map(|(host, routes)| {
                let domains = if host == "*" {
                    vec![host.clone()]
                } else {
                    vec![host.clone(), format!("{host}:*")]
                };
                json!({
                    "name": format!("{host}:{port}"),
                    "domains": domains,
                    "routes": routes,
                    "include_request_attempt_count": true,
                })
            })
            .collect()
    };
    Ok(json!({
        "name": format!("http.{port}"),
        "virtual_hosts": virtual_hosts,
        "validate_clusters": false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_only_in_the_proxy_namespace() {
        let host = "reviews.default.svc.cluster.local";
        assert_eq!(
            sidecar_domains(host, "default"),
            vec![host, "reviews", "reviews.default.svc", "reviews.default"]
        );
        assert_eq!(
            sidecar_domains(host, "other"),
            vec![host, "reviews.default", "reviews.default.svc"]
        );
        assert_eq!(
            sidecar_domains("example.com", "default"),
            vec!["example.com"]
        );
    }

    #[test]
    fn retry_on_status_codes_become_retriable_status_codes() {
        let (on, codes) = parse_retry_on("connect-failure, 503,refused-stream,504");
        assert_eq!(on, vec!["connect-failure", "refused-stream"]);
        assert_eq!(codes, vec![503, 504]);
    }

    /// istiod takes a number as a status code only when Go's `http.StatusText` knows it.
    #[test]
    fn unknown_status_numbers_stay_retry_conditions() {
        let (on, codes) = parse_retry_on("599,306,+503,0504,-1,5xx");
        assert_eq!(on, vec!["599", "306", "-1", "5xx"]);
        assert_eq!(codes, vec![503, 504]);
    }

    /// `retriable-status-codes` is appended after a substring test, with a comma even
    /// when no condition precedes it.
    #[test]
    fn retriable_status_codes_is_appended_like_istiod() {
        let (on, codes) = parse_retry_on("503");
        assert_eq!(retry_on_text(&on, &codes), ",retriable-status-codes");
        let (on, codes) = parse_retry_on("reset,503");
        assert_eq!(retry_on_text(&on, &codes), "reset,retriable-status-codes");
        let (on, codes) = parse_retry_on("x-retriable-status-codes-y,503");
        assert_eq!(retry_on_text(&on, &codes), "x-retriable-status-codes-y");
        let (on, codes) = parse_retry_on("reset");
        assert_eq!(retry_on_text(&on, &codes), "reset");
    }

    #[test]
    fn wildcard_hosts_intersect() {
        assert_eq!(intersect("*", "a.b"), Some("a.b".into()));
        assert_eq!(intersect("*.b", "a.b"), Some("a.b".into()));
        assert_eq!(intersect("a.b", "c.b"), None);
        assert_eq!(intersect("*", "*"), Some("*".into()));
    }
}
