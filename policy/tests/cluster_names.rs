//! Istio's outbound cluster names (`outbound|PORT|SUBSET|HOST`): the parser never panics,
//! accepts only names that print back exactly, and reads back every name istiod builds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use geolb_policy::cluster::OutboundCluster;
use proptest::prelude::*;

/// Strings near the shape: pieces of real names and separators, so that the parser's
/// branches (direction, port, field count) are all reached, not just "no `|`".
fn near_cluster_name() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("outbound".to_string()),
        Just("inbound".to_string()),
        Just("|".to_string()),
        Just("||".to_string()),
        "[0-9]{1,6}",
        "[+-]?0?[0-9]{1,5}",
        "[a-z0-9.-]{0,12}",
        "\\PC{0,4}",
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4_000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic_and_what_parses_prints_back(name in "\\PC{0,64}") {
        if let Some(parsed) = OutboundCluster::parse(&name) {
            prop_assert_eq!(parsed.to_string(), name);
        }
    }

    #[test]
    fn near_misses_never_panic_and_what_parses_prints_back(name in near_cluster_name()) {
        if let Some(parsed) = OutboundCluster::parse(&name) {
            prop_assert_eq!(parsed.to_string(), name.clone());
            prop_assert!(name.starts_with("outbound|"));
            prop_assert!(parsed.port != 0 && !parsed.host.is_empty());
        }
    }

    /// What istiod's `BuildSubsetKey` writes for an outbound cluster parses back into
    /// its parts.
    #[test]
    fn names_istiod_builds_round_trip(
        port in 1u16..,
        subset in "([a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?)?",
        host in "[a-z0-9*]([a-z0-9.-]{0,40}[a-z0-9])?",
    ) {
        let name = format!("outbound|{port}|{subset}|{host}");
        let parsed = OutboundCluster::parse(&name);
        prop_assert_eq!(
            parsed,
            Some(OutboundCluster { port, subset: &subset, host: &host })
        );
        prop_assert_eq!(parsed.map(|p| p.to_string()), Some(name));
    }
}
