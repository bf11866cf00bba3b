//! The routing header may not be a name HTTP, Envoy or Istio give a meaning to.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use geolb_policy::header::{RESERVED_NAMES, RESERVED_PREFIXES};
use geolb_policy::parse_policy;
use serde_json::Value;

use geolb_policy::testing::SEED_A;

/// The first error of seed A's policy with `routingHeader` set to `name`, if refused.
fn refusal(name: &str) -> Option<String> {
    let mut policy: Value = serde_json::from_str(SEED_A).unwrap();
    policy["routingHeader"] = Value::from(name);
    parse_policy(policy.to_string().as_bytes())
        .err()
        .map(|errors| errors.first().unwrap().to_string())
}

#[test]
fn headers_that_carry_meaning_are_refused_with_the_reason() {
    let table = [
        ("keep-alive", "a hop-by-hop header, which proxies consume"),
        ("trailer", "a hop-by-hop header, which proxies consume"),
        (
            "proxy-connection",
            "a hop-by-hop header, which proxies consume",
        ),
        (
            "proxy-authorization",
            "a hop-by-hop header, which proxies consume",
        ),
        ("authorization", "it carries credentials in HTTP"),
        ("cookie", "it carries credentials in HTTP"),
        ("content-type", "it describes the request body in HTTP"),
        ("host", "HTTP or Envoy route or trace the request by it"),
        (
            "x-forwarded-for",
            "HTTP or Envoy route or trace the request by it",
        ),
        (
            "x-request-id",
            "HTTP or Envoy route or trace the request by it",
        ),
        ("x-envoy-retry-on", "Envoy or Istio read or write it"),
        ("x-istio-attributes", "Envoy or Istio read or write it"),
        ("traceparent", "tracing propagates it"),
        ("x-b3-traceid", "tracing propagates it"),
        ("grpc-timeout", "gRPC gives it a meaning"),
        (
            "if-none-match",
            "HTTP gives it a meaning (conditions, ranges, caching, negotiation)",
        ),
        (
            "sec-websocket-key",
            "browsers set it (fetch metadata, WebSocket)",
        ),
    ];
    for (name, why) in table {
        assert_eq!(
            refusal(name).as_deref(),
            Some(format!(r#"routingHeader: "{name}" is not a valid header name: {why}"#).as_str()),
            "{name}"
        );
    }
}

#[test]
fn names_of_ones_own_are_accepted() {
    for name in [
        "x-geolb-region",
        "x-region",
        "x-team-route",
        "geolb",
        "x-envoy",
        "proxy",
    ] {
        assert_eq!(refusal(name), None, "{name}");
    }
}

#[test]
fn every_reserved_name_is_refused() {
    for (name, _) in RESERVED_NAMES {
        assert!(refusal(name).is_some(), "{name}");
    }
    for (prefix, _) in RESERVED_PREFIXES {
        assert!(refusal(&format!("{prefix}anything")).is_some(), "{prefix}");
    }
}

/// docs/policy.md lists exactly the reserved names and prefixes.
#[test]
fn the_docs_list_every_reserved_name() {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/policy.md")).unwrap();
    let section = docs
        .split("### Reserved header names")
        .nth(1)
        .and_then(|rest| rest.split("\n#").next())
        .expect("docs/policy.md has a section \"Reserved header names\"");
    let listed: Vec<&str> = section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .flat_map(|line| line.split('|').nth(1).unwrap_or("").split(','))
        .map(|cell| cell.trim().trim_matches('`'))
        .collect();
    let mut expected: Vec<String> = RESERVED_NAMES
        .iter()
        .map(|(n, _)| (*n).to_owned())
        .collect();
    expected.extend(RESERVED_PREFIXES.iter().map(|(p, _)| format!("{p}*")));
    let mut listed: Vec<String> = listed.into_iter().map(str::to_owned).collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);
}
