//! Every example plan under manifests/examples/*/plan.yaml, rendered by the `geolb` binary,
//! must pass the CRD + CEL validator (tests/support/crd.rs): what `kubectl apply
//! --validate=strict` and the API server would accept.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn example_plans() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/examples");
    let mut plans: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path().join("plan.yaml")))
        .filter(|p| p.is_file())
        .collect();
    plans.sort();
    plans
}

#[test]
fn rendered_example_manifests_pass_crd_and_cel_validation() {
    let plans = example_plans();
    assert!(!plans.is_empty(), "no manifests/examples/*/plan.yaml found");
    let validator = support::crd::validator();
    let mut failures = Vec::new();
    for plan in &plans {
        let out = tempfile::tempdir().expect("temp dir");
        let run = Command::new(env!("CARGO_BIN_EXE_geolb"))
            .arg("render")
            .arg(plan)
            .arg("-o")
            .arg(out.path())
            .output()
            .expect("run geolb render");
        assert!(
            run.status.success(),
            "geolb render {} failed ({}):\n{}{}",
            plan.display(),
            run.status,
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        let report = validator.validate_dir(out.path());
        println!("{}: {}", plan.display(), report.render());
        // Only the kinds with hand-written partial schemas may lack a full schema.
        let unexpected: Vec<&String> = report
            .no_schema
            .iter()
            .filter(|n| !(n.contains("Kustomization") || n.contains("IstioOperator")))
            .collect();
        if !report.is_clean() || !unexpected.is_empty() {
            failures.push(format!("{}:\n{}", plan.display(), report.render()));
        }
        for kind in ["DestinationRule", "VirtualService"] {
            if !report.kinds.contains_key(kind) {
                failures.push(format!(
                    "{}: rendered no {kind}:\n{}",
                    plan.display(),
                    report.render()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
