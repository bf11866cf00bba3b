//! The published JSON Schema of the plan (`generator/plan.schema.json`, the one pin of
//! it) must match the types, and must accept the plans geolb ships.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

fn committed_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plan.schema.json")
}

fn generated() -> String {
    serde_json::to_string_pretty(&geolb::plan::json_schema()).unwrap() + "\n"
}

#[test]
fn committed_schema_is_current() {
    if std::env::var_os("GEOLB_BLESS").is_some() {
        // Replaced whole: the other tests here read it meanwhile.
        let fresh = committed_path().with_extension("json.tmp");
        std::fs::write(&fresh, generated()).unwrap();
        std::fs::rename(&fresh, committed_path()).unwrap();
    }
    let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
    assert!(
        committed == generated(),
        "generator/plan.schema.json is stale; run scripts/bless.sh"
    );
}

/// Every example plan validates against the committed schema, the file editors and CI
/// jobs outside geolb check plans with; a schema that refused one of them would flag
/// a valid plan in every editor.
#[test]
fn the_committed_schema_accepts_every_example_plan() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(committed_path()).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let plan_path = entry.unwrap().path().join("plan.yaml");
        if !plan_path.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&plan_path).unwrap();
        let plan: serde_json::Value =
            serde_saphyr::from_str_with_options(&text, geolb::plan::yaml_options()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&plan)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", plan_path.display());
        checked += 1;
    }
    assert_eq!(checked, 4, "the four example plans");
}

/// The schema refuses a plan without one of its required top-level fields, so an
/// editor flags the omission before geolb runs.
#[test]
fn the_committed_schema_refuses_a_plan_without_a_required_field() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(committed_path()).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../manifests/examples/a-failover-distribution/plan.yaml"),
    )
    .unwrap();
    let plan: serde_json::Value =
        serde_saphyr::from_str_with_options(&text, geolb::plan::yaml_options()).unwrap();
    for field in [
        "apiVersion",
        "kind",
        "meshes",
        "regions",
        "clusters",
        "services",
        "filter",
    ] {
        let mut without = plan.clone();
        without.as_object_mut().unwrap().remove(field).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&without)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors
                .iter()
                .any(|e| e.contains(&format!("\"{field}\" is a required property"))),
            "{field}: {errors:?}"
        );
    }
}
