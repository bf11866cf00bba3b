//! Every WasmPlugin `geolb render` committed under manifests/ configures the real
//! filter: Envoy's validate mode runs `on_configure` on the pluginConfig, turned into
//! the JSON string istiod sends. (The filter accepts an invalid *first* policy in
//! pass-through rather than stopping Envoy, so the test reads its log, and a broken
//! policy is checked to be reported.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use std::path::{Path, PathBuf};

use geolb_e2e::*;

fn wasmplugins(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            wasmplugins(&path, out);
        } else if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("wasmplugin"))
        {
            out.push(path);
        }
    }
}

fn validate(plugin_config: &str) -> String {
    let upstream = "127.0.0.1:9".parse().expect("address");
    let cfg = MeshConfig::new(vec![RegionSpec::new("cn-hangzhou", [upstream])])
        .with_wasm(WasmFilter::geolb(plugin_config));
    Envoy::validate(&cfg).unwrap_or_else(|log| panic!("envoy --mode validate failed:\n{log}"))
}

#[test]
fn every_rendered_plugin_config_configures_the_filter() {
    let mut files = Vec::new();
    for scenario in [
        "a-failover-distribution",
        "b-locality-preferred",
        "c-multi-primary",
        "d-multi-network",
    ] {
        wasmplugins(&repo_root().join("manifests").join(scenario), &mut files);
    }
    // Per scenario the mesh WasmPlugin, and one for the ingress gateways of A and B.
    assert!(files.len() >= 6, "rendered WasmPlugins found: {files:?}");
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read manifest");
        let doc: serde_json::Value =
            serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let plugin_config = &doc["spec"]["pluginConfig"];
        assert!(
            plugin_config.is_object(),
            "{}: no pluginConfig",
            file.display()
        );
        let log = validate(&plugin_config.to_string());
        assert!(
            log.contains("geolb: policy")
                && log.contains("active")
                && !log.contains("invalid policy"),
            "{}: the filter did not accept its pluginConfig:\n{log}",
            file.display()
        );
    }
}

#[test]
fn a_broken_plugin_config_is_reported_by_validate_mode() {
    let log = validate(
        r#"{"apiVersion": "geolb.io/v1alpha1", "routeToken": "e2e-test-route-token-0123", "regions": ["cn-hangzhou"], "services": []}"#,
    );
    assert!(
        log.contains("geolb: invalid policy") && log.contains("services: must not be empty"),
        "{log}"
    );
}
