//! The published JSON Schema of the plan (`generator/plan.schema.json`) must match the
//! types; regenerate with `geolb schema > generator/plan.schema.json`.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

fn generated() -> String {
    serde_json::to_string_pretty(&geolb::plan::json_schema()).unwrap() + "\n"
}

#[test]
fn committed_schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("plan.schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated(),
        "generator/plan.schema.json is stale; run `cargo run -p geolb -- schema > generator/plan.schema.json`"
    );
}

#[test]
fn schema_snapshot() {
    insta::assert_snapshot!("plan-schema", generated());
}

/// Every example plan is valid against the schema's required top-level fields.
#[test]
fn schema_names_the_top_level_fields() {
    let schema: serde_json::Value = serde_json::from_str(&generated()).unwrap();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for field in [
        "apiVersion",
        "kind",
        "meshes",
        "regions",
        "clusters",
        "services",
        "filter",
    ] {
        assert!(required.contains(&field), "{field}");
    }
}
