//! Route tokens: derivation, the header value format, its precompute in the compiled
//! policy, and the routing header a refused configuration still names.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use geolb_policy::token::{
    MIN_SECRET_LEN, RouteSecret, SecretError, check_route_token, derive_route_token,
    route_header_value,
};
use geolb_policy::{DEFAULT_ROUTING_HEADER, parse_policy, passthrough_routing_header};
use proptest::prelude::*;
use serde_json::{Value, json};

use geolb_policy::testing::SEED_A;
use geolb_policy::testing::THREE_REGIONS as THREE;

fn secret(text: &str) -> RouteSecret {
    RouteSecret::new(text.as_bytes().to_vec()).unwrap()
}

#[test]
fn derivation_matches_an_independent_hmac_sha256() {
    // Expected values from Python's hmac/hashlib/base64 (not from this crate):
    // urlsafe_b64encode(HMAC-SHA256(secret, b"geolb.io/v1alpha1 route token\n" + mesh)[:16]),
    // padding stripped.
    assert_eq!(
        derive_route_token(
            &secret("geolb-example-route-secret-NOT-FOR-PRODUCTION"),
            "mesh-1"
        ),
        "PxdnERUi-ECDk26BCIyeeA"
    );
    assert_eq!(
        derive_route_token(&secret("0123456789abcdef0123456789abcdef"), "prod"),
        "GrLDs0v7_whk8CV2me02hA"
    );
}

#[test]
fn a_short_secret_is_refused_and_never_printed() {
    let short = "x".repeat(MIN_SECRET_LEN - 1);
    assert_eq!(
        RouteSecret::new(short.clone().into_bytes()),
        Err(SecretError::TooShort {
            len: MIN_SECRET_LEN - 1,
            min: MIN_SECRET_LEN
        })
    );
    let ok = secret(&"s3cr3t".repeat(6));
    assert_eq!(format!("{ok:?}"), "RouteSecret(36 bytes, redacted)");
}

#[test]
fn the_header_value_is_region_dot_token() {
    assert_eq!(
        route_header_value("cn-hangzhou", "PxdnERUi-ECDk26BCIyeeA"),
        "cn-hangzhou.PxdnERUi-ECDk26BCIyeeA"
    );
}

#[test]
fn the_compiled_policy_precomputes_every_regions_value() {
    for text in [SEED_A, THREE] {
        let wire: Value = serde_json::from_str(text).unwrap();
        let token = wire["routeToken"].as_str().unwrap();
        let policy = parse_policy(text.as_bytes()).unwrap();
        for name in policy.regions() {
            let id = policy.region_id(name).unwrap();
            assert_eq!(policy.routing_value(id), format!("{name}.{token}"));
        }
    }
}

#[test]
fn the_routing_header_of_a_refused_configuration() {
    let cases: Vec<(&[u8], &str)> = vec![
        // Invalid policy (no services, no token) with a valid custom header: that one.
        (
            br#"{"apiVersion": "geolb.io/v1alpha1", "routingHeader": "x-my-region", "services": []}"#,
            "x-my-region",
        ),
        // Wrong shape elsewhere does not hide it.
        (
            br#"{"routingHeader": "x-my-region", "regions": 7, "bogus": true}"#,
            "x-my-region",
        ),
        // An invalid name: the default (the generator never renders one).
        (br#"{"routingHeader": "X-My-Region"}"#, DEFAULT_ROUTING_HEADER),
        (br#"{"routingHeader": "x-envoy-foo"}"#, DEFAULT_ROUTING_HEADER),
        (br#"{"routingHeader": 7}"#, DEFAULT_ROUTING_HEADER),
        (br#"{"routingHeader": ""}"#, DEFAULT_ROUTING_HEADER),
        // No configuration, not JSON, not an object.
        (b"", DEFAULT_ROUTING_HEADER),
        (b"{", DEFAULT_ROUTING_HEADER),
        (b"[]", DEFAULT_ROUTING_HEADER),
        (b"{}", DEFAULT_ROUTING_HEADER),
    ];
    for (config, want) in cases {
        assert_eq!(
            passthrough_routing_header(config),
            want,
            "{}",
            String::from_utf8_lossy(config)
        );
    }
}

#[test]
fn a_valid_policy_and_its_passthrough_header_agree() {
    let mut policy: Value = serde_json::from_str(SEED_A).unwrap();
    policy["routingHeader"] = json!("x-region-choice");
    let bytes = policy.to_string().into_bytes();
    assert_eq!(
        parse_policy(&bytes).unwrap().routing_header(),
        passthrough_routing_header(&bytes)
    );
}

proptest! {
    #[test]
    fn derivation_is_deterministic_well_formed_and_separates_meshes_and_secrets(
        a in proptest::collection::vec(any::<u8>(), MIN_SECRET_LEN..80),
        b in proptest::collection::vec(any::<u8>(), MIN_SECRET_LEN..80),
        mesh_a in "[a-z0-9-]{1,20}",
        mesh_b in "[a-z0-9-]{1,20}",
    ) {
        let (sa, sb) = (RouteSecret::new(a.clone()).unwrap(), RouteSecret::new(b.clone()).unwrap());
        let token = derive_route_token(&sa, &mesh_a);
        prop_assert_eq!(&token, &derive_route_token(&sa, &mesh_a));
        prop_assert_eq!(token.len(), 22);
        prop_assert!(check_route_token(&token).is_ok());
        if mesh_a != mesh_b {
            prop_assert_ne!(&token, &derive_route_token(&sa, &mesh_b));
        }
        if a != b {
            prop_assert_ne!(&token, &derive_route_token(&sb, &mesh_a));
        }
    }

    #[test]
    fn the_passthrough_header_is_always_a_valid_header(config in proptest::collection::vec(any::<u8>(), 0..64), name in "[ -~]{0,12}") {
        for bytes in [config, format!("{{\"routingHeader\": {}}}", json!(name)).into_bytes()] {
            let header = passthrough_routing_header(&bytes);
            // Valid: a policy naming it compiles with it.
            let mut policy: Value = serde_json::from_str(SEED_A).unwrap();
            policy["routingHeader"] = json!(header);
            let compiled = parse_policy(policy.to_string().as_bytes()).unwrap();
            prop_assert_eq!(compiled.routing_header(), header.as_str());
        }
    }

    #[test]
    fn only_url_safe_tokens_of_22_to_64_characters_are_accepted(token in "[ -~]{0,70}") {
        let ok = (22..=64).contains(&token.len())
            && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        prop_assert_eq!(check_route_token(&token).is_ok(), ok);
    }
}
