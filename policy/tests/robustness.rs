//! The parser never panics and never accepts garbage, whatever arrives as pluginConfig.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use geolb_policy::parse_policy;
use proptest::prelude::*;
use serde_json::Value;

use geolb_policy::testing::SEED_A;

/// Arbitrary JSON documents, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-zA-Z]{1,16}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replaces the `pick`-th node of `doc` (pre-order) with `with`.
fn replace_at(doc: &mut Value, pick: usize, with: Value) {
    fn visit(node: &mut Value, counter: &mut usize, pick: usize, with: &mut Option<Value>) {
        if *counter == pick {
            if let Some(v) = with.take() {
                *node = v;
            }
            return;
        }
        *counter += 1;
        match node {
            Value::Array(items) => items.iter_mut().for_each(|n| visit(n, counter, pick, with)),
            Value::Object(map) => map.values_mut().for_each(|n| visit(n, counter, pick, with)),
            _ => {}
        }
    }
    visit(doc, &mut 0, pick, &mut Some(with));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        prop_assert!(parse_policy(&bytes).is_err());
    }

    #[test]
    fn arbitrary_json_is_refused_without_panicking(doc in json_value()) {
        prop_assert!(parse_policy(doc.to_string().as_bytes()).is_err());
    }

    /// A valid policy with one node replaced by anything: either still valid, or
    /// refused with a field path — never a panic.
    #[test]
    fn mutated_policies_are_judged_without_panicking(pick in 0usize..60, with in json_value()) {
        let mut doc: Value = serde_json::from_str(SEED_A).unwrap();
        replace_at(&mut doc, pick, with);
        if let Err(errors) = parse_policy(doc.to_string().as_bytes()) {
            prop_assert!(!errors.0.is_empty());
            prop_assert!(errors.0.iter().all(|e| !e.path.to_string().is_empty()));
        }
    }
}

#[test]
fn deep_nesting_and_huge_inputs_are_refused() {
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    assert!(parse_policy(deep.as_bytes()).is_err());
    let many_regions: Vec<String> = (0..70_000).map(|i| format!("r{i}")).collect();
    let huge = serde_json::json!({"apiVersion": "geolb.io/v1alpha1", "routeToken": "test-route-token-not-a-secret", "regions": many_regions, "services": []});
    let errors = parse_policy(huge.to_string().as_bytes()).unwrap_err();
    assert!(
        errors.to_string().contains("at most 65535 regions"),
        "{errors}"
    );
}
