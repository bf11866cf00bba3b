//! Istio's admission rules on the plan values geolb renders into Istio objects: one
//! table per rule, one row per boundary value on either side, each run through
//! `validate::check` on seed scenario A with the `reviews` service's Istio settings
//! replaced. A row expects no error at the field, or an error there naming the value.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use geolb::finding::Severity;
use geolb::render::{ExtensionApi, RenderOptions, render};
use geolb::secret::RouteSecrets;
use geolb::source::Source;
use geolb::topology::Topology;
use geolb::validate;

/// The `reviews` service's Istio settings in scenario A (services[3]).
const REVIEWS_SETTINGS: &str = "    connectionPool:
      http:
        maxRequestsPerConnection: 1
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 1m
";

fn scenario_a() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../manifests/examples/a-failover-distribution/plan.yaml");
    std::fs::read_to_string(path).unwrap()
}

/// Scenario A with the reviews service's settings replaced by `settings` (YAML at
/// the service's indentation).
fn with_reviews(settings: &str) -> String {
    let text = scenario_a();
    assert_eq!(text.matches(REVIEWS_SETTINGS).count(), 1);
    text.replacen(REVIEWS_SETTINGS, settings, 1)
}

/// Errors of `text` at `path` (or below it).
fn errors_at(text: &str, path: &str) -> Vec<String> {
    validate::check(&Source::new("plan.yaml", text.to_owned()))
        .findings
        .into_iter()
        .filter(|f| f.severity == Severity::Error && f.path.as_str().starts_with(path))
        .map(|f| f.message)
        .collect()
}

/// Runs rows of (settings, field path, expected error fragment or `None` for
/// accepted), collecting every mismatch.
fn run(rows: &[(String, String, Option<&str>)]) {
    let mut failures = Vec::new();
    for (settings, path, expected) in rows {
        let errors = errors_at(&with_reviews(settings), path);
        let ok = match expected {
            None => errors.is_empty(),
            Some(fragment) => errors.iter().any(|e| e.contains(fragment)),
        };
        if !ok {
            failures.push(format!(
                "{settings}\n  at {path}: expected {expected:?}, got {errors:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every duration field geolb renders, as (settings with `{}` for the value, path).
const DURATION_FIELDS: &[(&str, &str)] = &[
    (
        "    outlierDetection:\n      interval: {}\n",
        "services[3].outlierDetection.interval",
    ),
    (
        "    outlierDetection:\n      baseEjectionTime: {}\n",
        "services[3].outlierDetection.baseEjectionTime",
    ),
    (
        "    connectionPool:\n      tcp:\n        connectTimeout: {}\n",
        "services[3].connectionPool.tcp.connectTimeout",
    ),
    (
        "    connectionPool:\n      http:\n        idleTimeout: {}\n",
        "services[3].connectionPool.http.idleTimeout",
    ),
    (
        "    retries:\n      perTryTimeout: {}\n",
        "services[3].retries.perTryTimeout",
    ),
];

/// Istio 1.30.3 `agent.ValidateDuration` (pkg/config/validation/agent/validation.go):
/// at least 1ms, whole milliseconds; and Go's `time.ParseDuration`, which istiod's
/// jsonpb decodes durations with, ends at `int64` nanoseconds.
#[test]
fn durations_follow_validate_duration() {
    let values: &[(&str, Option<&str>)] = &[
        ("0s", Some("\"0s\" is shorter than 1ms")),
        ("0.999ms", Some("is shorter than 1ms")),
        ("1ms", None),
        (
            "1.5ms",
            Some("\"1.5ms\" is not a whole number of milliseconds"),
        ),
        ("1.0001s", Some("is not a whole number of milliseconds")),
        ("0.001s", None),
        ("10s", None),
        ("2562047h47m16.854s", None),
        ("2562047h47m16.855s", Some("is longer than istiod can read")),
        (
            "18446744073709551615ms",
            Some("\"18446744073709551615ms\" is longer than istiod can read"),
        ),
    ];
    let mut rows = Vec::new();
    for (template, path) in DURATION_FIELDS {
        for (value, expected) in values {
            rows.push((template.replace("{}", value), (*path).to_owned(), *expected));
        }
    }
    run(&rows);
}

/// Istio 1.30.3 `ValidatePercent` (pkg/config/validation/validation.go), called by
/// `validateOutlierDetection` for `maxEjectionPercent` and `minHealthPercent`: 0..100.
#[test]
fn outlier_percentages_follow_validate_percent() {
    let mut rows = Vec::new();
    for field in ["maxEjectionPercent", "minHealthPercent"] {
        for (value, expected) in [
            ("0", None),
            ("100", None),
            ("101", Some("101 is not a percentage; Istio accepts 0..100")),
            ("250", Some("250 is not a percentage")),
            ("4294967295", Some("4294967295 is not a percentage")),
        ] {
            rows.push((
                format!("    outlierDetection:\n      {field}: {value}\n"),
                format!("services[3].outlierDetection.{field}"),
                expected,
            ));
        }
    }
    run(&rows);
}

/// Istio 1.30.3 `validateConnectionPool` and `validateHTTPRetry` (validation.go) on
/// the `int32` fields: negatives are refused there (a plan cannot hold one), and
/// istiod's jsonpb refuses what does not fit an `int32`. 0 passes.
#[test]
fn int32_fields_fit_istio() {
    let fields = [
        (
            "    connectionPool:\n      tcp:\n        maxConnections: {}\n",
            "services[3].connectionPool.tcp.maxConnections",
        ),
        (
            "    connectionPool:\n      http:\n        http1MaxPendingRequests: {}\n",
            "services[3].connectionPool.http.http1MaxPendingRequests",
        ),
        (
            "    connectionPool:\n      http:\n        http2MaxRequests: {}\n",
            "services[3].connectionPool.http.http2MaxRequests",
        ),
        (
            "    connectionPool:\n      http:\n        maxRequestsPerConnection: {}\n",
            "services[3].connectionPool.http.maxRequestsPerConnection",
        ),
        (
            "    connectionPool:\n      http:\n        maxRetries: {}\n",
            "services[3].connectionPool.http.maxRetries",
        ),
        (
            "    retries:\n      attempts: {}\n",
            "services[3].retries.attempts",
        ),
    ];
    let mut rows = Vec::new();
    for (template, path) in fields {
        for (value, expected) in [
            ("0", None),
            ("2147483647", None),
            (
                "2147483648",
                Some("2147483648 does not fit Istio's int32 field"),
            ),
            (
                "4294967295",
                Some("4294967295 does not fit Istio's int32 field; Istio accepts 0..2147483647"),
            ),
        ] {
            rows.push((template.replace("{}", value), path.to_owned(), expected));
        }
    }
    run(&rows);
}

/// Istio 1.30.3 `validateHTTPRetry` (validation.go) on `retryOn`: split on every comma;
/// each item is one of `supportedRetryOnPolicies` or a number Go's `strconv.Atoi`
/// reads and `http.StatusText` names; an empty `retryOn` is not checked.
#[test]
fn retry_on_follows_validate_http_retry() {
    let rows: Vec<(String, String, Option<&str>)> = [
        ("5xx", None),
        ("connect-failure,refused-stream,unavailable,cancelled,503", None),
        (
            "reset,reset-before-request,gateway-error,retriable-4xx,retriable-status-codes,retriable-headers,envoy-ratelimited,http3-post-connect-failure,deadline-exceeded,internal,resource-exhausted",
            None,
        ),
        ("''", None),
        ("'503'", None),
        ("'+503'", None),
        ("'418'", None),
        ("'511'", None),
        ("'100'", None),
        ("'-503'", Some("\"-503\", which is not a retry condition")),
        ("'306'", Some("\"306\", which is not a retry condition")),
        ("'509'", Some("\"509\", which is not a retry condition")),
        ("'599'", Some("\"599\", which is not a retry condition")),
        (
            "'bogus,,condition'",
            Some("names \"bogus\", \"\", \"condition\", which are not retry conditions"),
        ),
        ("'5xx,'", Some("\"\", which is not a retry condition")),
        ("'5xx, reset'", Some("\" reset\", which is not a retry condition")),
        ("RESET", Some("\"RESET\", which is not a retry condition")),
    ]
    .into_iter()
    .map(|(value, expected)| {
        (
            format!("    retries:\n      retryOn: {value}\n"),
            String::from("services[3].retries.retryOn"),
            expected,
        )
    })
    .collect();
    run(&rows);
}

/// Istio 1.30.3 `validateHTTPRetry` (validation.go): with attempts 0 (retries off) no
/// other retry field may be set; geolb then renders `attempts: 0` alone.
#[test]
fn zero_attempts_stand_alone() {
    run(&[
        (
            "    retries:\n      attempts: 0\n".to_owned(),
            "services[3].retries".to_owned(),
            None,
        ),
        (
            "    retries:\n      attempts: 0\n      retryOn: 5xx\n".to_owned(),
            "services[3].retries.retryOn".to_owned(),
            Some("retryOn is set although attempts is 0"),
        ),
        (
            "    retries:\n      attempts: 0\n      perTryTimeout: 1s\n".to_owned(),
            "services[3].retries.perTryTimeout".to_owned(),
            Some("perTryTimeout is set although attempts is 0"),
        ),
        (
            "    retries:\n      attempts: 1\n      perTryTimeout: 1s\n      retryOn: 5xx\n"
                .to_owned(),
            "services[3].retries".to_owned(),
            None,
        ),
    ]);
    let text = with_reviews("    retries:\n      attempts: 0\n");
    let plan = validate::check(&Source::new("plan.yaml", text))
        .plan
        .unwrap();
    let topo = Topology::new(&plan);
    let files = render(
        &topo,
        &RenderOptions {
            extension_api: ExtensionApi::Wasmplugin,
            route_secrets: RouteSecrets::example().unwrap(),
        },
    )
    .unwrap();
    let vs = &files["mesh/default/virtualservice-reviews.yaml"];
    assert!(vs.contains("retries:\n      attempts: 0\n"), "{vs}");
    assert!(!vs.contains("retryOn"), "{vs}");
    assert!(!vs.contains("retryRemoteLocalities"), "{vs}");
}

/// Istio 1.30.3 `validateConnectionPool` (validation.go): a connection pool must set
/// tcp or http ("connection pool must have at least one field").
#[test]
fn connection_pool_sets_something() {
    run(&[
        (
            "    connectionPool: {}\n".to_owned(),
            "services[3].connectionPool".to_owned(),
            Some("the connection pool sets neither tcp nor http"),
        ),
        (
            "    connectionPool:\n      tcp: {}\n".to_owned(),
            "services[3].connectionPool".to_owned(),
            None,
        ),
        (
            "    connectionPool:\n      http: {}\n".to_owned(),
            "services[3].connectionPool".to_owned(),
            None,
        ),
    ]);
}

/// Istio 1.30.3 `validateWorkloadSelector` (validation.go) on a gateway's selector,
/// which its WasmPlugin selects with: no empty key, no `*` in key or value.
#[test]
fn gateway_selectors_follow_validate_workload_selector() {
    let mut failures = Vec::new();
    for (selector, expected) in [
        ("{istio: ingressgateway}", None),
        ("{app: my-gateway, istio: ingressgateway}", None),
        (
            "{'': ingressgateway}",
            Some("has an empty key or a wildcard"),
        ),
        ("{istio: '*'}", Some("has an empty key or a wildcard")),
        (
            "{'istio*': ingressgateway}",
            Some("has an empty key or a wildcard"),
        ),
    ] {
        let text = scenario_a().replacen(
            "    port: 80\n    routes:",
            &format!("    port: 80\n    selector: {selector}\n    routes:"),
            1,
        );
        let errors = errors_at(&text, "gateways[0].selector");
        let ok = match expected {
            None => errors.is_empty(),
            Some(fragment) => errors.iter().any(|e| e.contains(fragment)),
        };
        if !ok {
            failures.push(format!("{selector}: expected {expected:?}, got {errors:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The filter's health follows the service's outlier detection; the filter's own
/// rules (`consecutiveFailures` 1..10000, owned by the policy crate) are reported at
/// the field the value came from, and a 0 (a detector Envoy does not enforce) implies
/// nothing.
#[test]
fn implied_health_is_reported_where_it_was_written() {
    run(&[
        (
            "    outlierDetection:\n      consecutive5xxErrors: 0\n".to_owned(),
            "services[3]".to_owned(),
            None,
        ),
        (
            "    outlierDetection:\n      consecutive5xxErrors: 0\n      consecutiveGatewayErrors: 3\n"
                .to_owned(),
            "services[3]".to_owned(),
            None,
        ),
        (
            "    outlierDetection:\n      consecutive5xxErrors: 10000\n".to_owned(),
            "services[3]".to_owned(),
            None,
        ),
        (
            "    outlierDetection:\n      consecutive5xxErrors: 10001\n".to_owned(),
            "services[3].outlierDetection.consecutive5xxErrors".to_owned(),
            Some("the filter would refuse this policy"),
        ),
        (
            "    outlierDetection:\n      consecutive5xxErrors: 0\n      consecutiveGatewayErrors: 10001\n"
                .to_owned(),
            "services[3].outlierDetection.consecutiveGatewayErrors".to_owned(),
            Some("10001 is out of range"),
        ),
        (
            "    outlierDetection:\n      consecutive5xxErrors: 10001\n    health:\n      consecutiveFailures: 5\n"
                .to_owned(),
            "services[3]".to_owned(),
            None,
        ),
        (
            "    health:\n      consecutiveFailures: 10001\n".to_owned(),
            "services[3].health.consecutiveFailures".to_owned(),
            Some("10001 is out of range"),
        ),
    ]);
}

/// The examples of refused plans, each at its field (the CRD check of the rendered
/// objects in `examples.rs` stays; this is earlier).
#[test]
fn plans_istio_refuses_do_not_validate() {
    let text = with_reviews(
        "    outlierDetection:
      interval: 0s
      maxEjectionPercent: 101
      minHealthPercent: 250
      baseEjectionTime: 18446744073709551615ms
    retries: {attempts: 4294967295, retryOn: 'bogus,,condition', perTryTimeout: 0s}
    connectionPool:
      tcp: {maxConnections: 0, connectTimeout: 0s}
",
    );
    let checked = validate::check(&Source::new("plan.yaml", text));
    let mut paths: Vec<&str> = checked
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.path.as_str())
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "services[3].connectionPool.tcp.connectTimeout",
            "services[3].outlierDetection.baseEjectionTime",
            "services[3].outlierDetection.interval",
            "services[3].outlierDetection.maxEjectionPercent",
            "services[3].outlierDetection.minHealthPercent",
            "services[3].retries.attempts",
            "services[3].retries.perTryTimeout",
            "services[3].retries.retryOn",
        ]
    );
}
