//! Istio's admission rules for every plan value geolb renders into an Istio object,
//! checked before rendering so that a plan Istio's webhook would refuse is refused
//! here, at its own line, with what Istio allows.
//!
//! Each rule mirrors one function of Istio 1.30.3 `pkg/config/validation`
//! (`validation.go`, `agent/validation.go`), bound for bound, and what istiod's
//! legacy `jsonpb` decoding refuses before validation runs (`pkg/util/protomarshal`:
//! `int32` fields, durations parsed by Go's `time.ParseDuration`). What those
//! functions leave alone is left alone here too (an `int32` count of 0, an empty
//! `retryOn`). docs/plan.md lists the rules per field.

use geolb_policy::units::DurationText;

use super::Checker;
use crate::plan::{ConnectionPool, OutlierDetection, Retries, Service};
use crate::source::FieldPath;

/// Why Istio refuses a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What is wrong with the value.
    pub why: String,
    /// What the field accepts.
    pub allowed: &'static str,
    /// The Istio function (or decoding step) that refuses it.
    pub rule: &'static str,
}

/// Nanoseconds in a millisecond.
const MILLI: u128 = 1_000_000;
/// The longest duration istiod can read: Go's `time.Duration` is an `int64` of
/// nanoseconds, and `time.ParseDuration` refuses anything longer.
const GO_DURATION_MAX_NANOS: u128 = i64::MAX as u128;
/// `int32` fields: istiod's `jsonpb` refuses larger numbers.
const INT32_MAX: u64 = i32::MAX as u64;

/// What a duration field accepts, for messages and docs.
pub const DURATION_ALLOWED: &str =
    "a whole number of milliseconds from 1ms to 2562047h47m16.854s (e.g. 500ms, 10s, 1m)";

/// `agent.ValidateDuration` (agent/validation.go): at least 1ms, whole milliseconds;
/// and readable by istiod, which parses durations with Go's `time.ParseDuration`
/// into a `time.Duration` (`int64` nanoseconds, about 292 years).
pub fn duration(d: &DurationText) -> Result<(), Refusal> {
    let refuse = |why: &str| Refusal {
        why: why.to_owned(),
        allowed: DURATION_ALLOWED,
        rule: "ValidateDuration",
    };
    let nanos = d.nanos();
    if nanos > GO_DURATION_MAX_NANOS {
        return Err(Refusal {
            rule: "time.ParseDuration",
            ..refuse(
                "is longer than istiod can read (Go durations end at 2562047h47m16.854775807s)",
            )
        });
    }
    if nanos < MILLI {
        return Err(refuse("is shorter than 1ms"));
    }
    if !nanos.is_multiple_of(MILLI) {
        return Err(refuse("is not a whole number of milliseconds"));
    }
    Ok(())
}

/// `ValidatePercent` (validation.go): 0..100.
pub fn percent(value: u32) -> Result<(), Refusal> {
    if value > 100 {
        return Err(Refusal {
            why: String::from("is not a percentage"),
            allowed: "0..100",
            rule: "ValidatePercent",
        });
    }
    Ok(())
}

/// An `int32` field (connection pool limits, retry attempts): `jsonpb` refuses what
/// does not fit, `validateConnectionPool` / `validateHTTPRetry` refuse negatives
/// (which a plan cannot hold). 0 passes: istiod then keeps Envoy's default.
pub fn int32(value: u32) -> Result<(), Refusal> {
    if u64::from(value) > INT32_MAX {
        return Err(Refusal {
            why: String::from("does not fit Istio's int32 field"),
            allowed: "0..2147483647",
            rule: "jsonpb int32",
        });
    }
    Ok(())
}

/// Envoy retry conditions `validateHTTPRetry` accepts (validation.go
/// `supportedRetryOnPolicies`), besides HTTP status codes.
pub const RETRY_ON_CONDITIONS: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "envoy-ratelimited",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// The codes Go's `http.StatusText` knows (net/http/status.go), which
/// `validateHTTPRetry` takes as status-code retry conditions.
const GO_STATUS_CODES: &[i64] = &[
    100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304,
    305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415,
    416, 417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505,
    506, 507, 508, 510, 511,
];

/// One retry condition, as `validateHTTPRetry` reads it: a name from
/// [`RETRY_ON_CONDITIONS`], or a number (Go `strconv.Atoi`: optional sign, digits)
/// that Go's `http.StatusText` names.
fn retry_condition(condition: &str) -> bool {
    RETRY_ON_CONDITIONS.contains(&condition)
        || condition
            .parse::<i64>()
            .is_ok_and(|code| GO_STATUS_CODES.contains(&code))
}

/// `validateHTTPRetry` (validation.go) on `retryOn`: a comma-separated list (split on
/// every comma, so an empty item is refused) of conditions; empty text passes.
pub fn retry_on(text: &str) -> Result<(), Refusal> {
    if text.is_empty() {
        return Ok(());
    }
    let bad: Vec<String> = text
        .split(',')
        .filter(|c| !retry_condition(c))
        .map(|c| format!("{c:?}"))
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    Err(Refusal {
        why: format!(
            "names {}, which {}",
            bad.join(", "),
            if bad.len() == 1 {
                "is not a retry condition"
            } else {
                "are not retry conditions"
            }
        ),
        allowed: "comma-separated Envoy retry conditions (5xx, gateway-error, reset, reset-before-request, connect-failure, retriable-4xx, refused-stream, retriable-status-codes, retriable-headers, envoy-ratelimited, http3-post-connect-failure, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable) or HTTP status codes such as 503, without spaces or empty items",
        rule: "validateHTTPRetry",
    })
}

/// Checks every Istio-bound value of the plan.
pub(super) fn check(c: &mut Checker) {
    let plan = c.plan();
    for (i, s) in plan.services.iter().enumerate() {
        let at = FieldPath::root().key("services").index(i);
        service(c, s, &at);
    }
    for (i, g) in plan.gateways.iter().enumerate() {
        let at = FieldPath::root().key("gateways").index(i).key("selector");
        for (key, value) in &g.selector {
            workload_label(c, at.key(key), key, value);
        }
    }
}

fn service(c: &mut Checker, s: &Service, at: &FieldPath) {
    if let Some(od) = &s.outlier_detection {
        outlier_detection(c, od, &at.key("outlierDetection"));
    }
    if let Some(pool) = &s.connection_pool {
        connection_pool(c, pool, &at.key("connectionPool"));
    }
    if let Some(r) = &s.retries {
        retries(c, r, &at.key("retries"));
    }
}

/// Reports `result` at `path` for a field shown as `value`.
fn report(c: &mut Checker, path: FieldPath, value: &str, result: Result<(), Refusal>) {
    if let Err(r) = result {
        c.error(
            path,
            format!(
                "{value} {}; Istio accepts {} ({} in Istio 1.30.3)",
                r.why, r.allowed, r.rule
            ),
            "Istio's webhook would refuse the rendered object; docs/plan.md lists what each Istio field accepts",
        );
    }
}

fn duration_field(c: &mut Checker, path: FieldPath, d: Option<&DurationText>) {
    if let Some(d) = d {
        report(c, path, &format!("{:?}", d.as_str()), duration(d));
    }
}

fn int32_field(c: &mut Checker, path: FieldPath, value: Option<u32>) {
    if let Some(v) = value {
        report(c, path, &v.to_string(), int32(v));
    }
}

/// `validateOutlierDetection` (validation.go).
fn outlier_detection(c: &mut Checker, od: &OutlierDetection, at: &FieldPath) {
    duration_field(c, at.key("interval"), od.interval.as_ref());
    duration_field(
        c,
        at.key("baseEjectionTime"),
        od.base_ejection_time.as_ref(),
    );
    for (field, value) in [
        ("maxEjectionPercent", od.max_ejection_percent),
        ("minHealthPercent", od.min_health_percent),
    ] {
        if let Some(v) = value {
            report(c, at.key(field), &v.to_string(), percent(v));
        }
    }
}

/// `validateConnectionPool` (validation.go).
fn connection_pool(c: &mut Checker, pool: &ConnectionPool, at: &FieldPath) {
    if pool.tcp.is_none() && pool.http.is_none() {
        c.error(
            at.clone(),
            "the connection pool sets neither tcp nor http; Istio refuses an empty one (validateConnectionPool in Istio 1.30.3: \"connection pool must have at least one field\")",
            "set tcp or http settings, or drop connectionPool",
        );
    }
    if let Some(tcp) = &pool.tcp {
        let at = at.key("tcp");
        int32_field(c, at.key("maxConnections"), tcp.max_connections);
        duration_field(c, at.key("connectTimeout"), tcp.connect_timeout.as_ref());
    }
    if let Some(http) = &pool.http {
        let at = at.key("http");
        for (field, value) in [
            ("http1MaxPendingRequests", http.http1_max_pending_requests),
            ("http2MaxRequests", http.http2_max_requests),
            ("maxRequestsPerConnection", http.max_requests_per_connection),
            ("maxRetries", http.max_retries),
        ] {
            int32_field(c, at.key(field), value);
        }
        duration_field(c, at.key("idleTimeout"), http.idle_timeout.as_ref());
    }
}

/// `validateHTTPRetry` (validation.go). Attempts 0 disables retries; Istio then
/// refuses any other retry setting, so geolb renders `attempts: 0` alone.
fn retries(c: &mut Checker, r: &Retries, at: &FieldPath) {
    int32_field(c, at.key("attempts"), r.attempts);
    if r.attempts == Some(0) {
        for (field, set) in [
            ("perTryTimeout", r.per_try_timeout.is_some()),
            ("retryOn", r.retry_on.is_some()),
        ] {
            if set {
                c.error(
                    at.key(field),
                    format!("{field} is set although attempts is 0 (retries disabled); Istio refuses retry settings without attempts (validateHTTPRetry in Istio 1.30.3)"),
                    "drop it, or set attempts to 1 or more",
                );
            }
        }
    }
    duration_field(c, at.key("perTryTimeout"), r.per_try_timeout.as_ref());
    if let Some(text) = &r.retry_on {
        report(c, at.key("retryOn"), &format!("{text:?}"), retry_on(text));
    }
}

/// `validateWorkloadSelector` (validation.go) on a label the gateway WasmPlugins
/// select their pods with: no empty key, no wildcard.
fn workload_label(c: &mut Checker, path: FieldPath, key: &str, value: &str) {
    if key.is_empty() || key.contains('*') || value.contains('*') {
        c.error(
            path,
            format!("selector label {key:?}: {value:?} has an empty key or a wildcard; Istio accepts plain labels in a workload selector (validateWorkloadSelector in Istio 1.30.3)"),
            "select the gateway pods by their real labels, e.g. istio: ingressgateway",
        );
    }
}
