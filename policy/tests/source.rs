//! The proxy's source region: pin, then the cluster table, then the node locality;
//! disagreements and absences are told apart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use geolb_policy::source::{Origin, ProxyIdentity, SourceRegion};
use geolb_policy::{CompiledPolicy, RegionId, parse_policy};
use proptest::prelude::*;
use serde_json::json;

const REGIONS: [&str; 3] = ["cn-hangzhou", "cn-shanghai", "cn-beijing"];

fn policy(pin: Option<&str>) -> CompiledPolicy {
    let mut p = json!({
        "apiVersion": "geolb.io/v1alpha1",
        "routeToken": "test-route-token-not-a-secret",
        "regions": REGIONS,
        "clusterRegions": {
            "ack-hangzhou": "cn-hangzhou",
            "c5f1e2d3a4b5": "cn-shanghai",
        },
        "services": [{
            "name": "reviews.default",
            "hosts": ["reviews.default.svc.cluster.local"],
            "regions": ["cn-hangzhou", "cn-shanghai"],
        }],
    });
    if let Some(pin) = pin {
        p["sourceRegion"] = json!(pin);
    }
    parse_policy(p.to_string().as_bytes()).unwrap()
}

fn region(policy: &CompiledPolicy, name: &str) -> RegionId {
    policy.region_id(name).unwrap()
}

fn identity<'a>(cluster_id: Option<&'a str>, locality: Option<&'a str>) -> ProxyIdentity<'a> {
    ProxyIdentity {
        cluster_id,
        locality_region: locality,
        node_id: None,
    }
}

#[test]
fn the_cluster_table_names_the_region_when_the_node_has_no_locality() {
    // As on ACK, on-prem or MetalLB: istio-agent wrote no locality.
    let p = policy(None);
    let found = p.source_region(identity(Some("c5f1e2d3a4b5"), None));
    assert_eq!(
        found,
        SourceRegion::Known {
            region: region(&p, "cn-shanghai"),
            origin: Origin::ClusterId,
            locality_disagrees: None,
        }
    );
}

#[test]
fn the_pin_comes_before_the_table_and_the_locality() {
    let p = policy(Some("cn-beijing"));
    let found = p.source_region(identity(Some("ack-hangzhou"), Some("cn-hangzhou")));
    assert_eq!(found.region(), Some(region(&p, "cn-beijing")));
    assert!(matches!(
        &found,
        SourceRegion::Known { origin: Origin::Pinned, locality_disagrees: Some(l), .. } if l == "cn-hangzhou"
    ));
}

#[test]
fn the_table_comes_before_the_locality_and_a_disagreement_is_reported() {
    let p = policy(None);
    let found = p.source_region(identity(Some("ack-hangzhou"), Some("cn-shanghai")));
    assert_eq!(
        found,
        SourceRegion::Known {
            region: region(&p, "cn-hangzhou"),
            origin: Origin::ClusterId,
            locality_disagrees: Some("cn-shanghai".to_owned()),
        }
    );
    let text = found.explain(&p).to_string();
    assert!(
        text.contains("cn-hangzhou") && text.contains("\"cn-shanghai\""),
        "{text}"
    );
}

#[test]
fn the_locality_serves_a_cluster_missing_from_the_table() {
    let p = policy(None);
    let found = p.source_region(identity(Some("not-in-plan"), Some("cn-beijing")));
    assert_eq!(
        found,
        SourceRegion::Known {
            region: region(&p, "cn-beijing"),
            origin: Origin::NodeLocality,
            locality_disagrees: None,
        }
    );
}

#[test]
fn nothing_usable_is_unknown_and_says_which_inputs_were_missing() {
    let p = policy(None);
    let none = p.source_region(identity(None, None));
    assert_eq!(
        none,
        SourceRegion::Unknown {
            cluster_id: None,
            locality_region: None
        }
    );
    assert!(
        none.explain(&p)
            .to_string()
            .contains("no node.metadata.CLUSTER_ID")
    );

    let unknown = p.source_region(identity(Some("other"), Some("eu-west-1")));
    assert_eq!(unknown.region(), None);
    let text = unknown.explain(&p).to_string();
    assert!(
        text.contains("\"other\" is not in clusterRegions") && text.contains("\"eu-west-1\""),
        "{text}"
    );
}

#[test]
fn a_table_entry_must_name_a_known_region_and_a_valid_cluster_id() {
    let bad = json!({
        "apiVersion": "geolb.io/v1alpha1",
        "routeToken": "test-route-token-not-a-secret",
        "regions": ["cn-hangzhou"],
        "clusterRegions": { "ack-hangzhou": "cn-shenzhen", "bad id": "cn-hangzhou" },
        "services": [{ "name": "r", "hosts": ["r.d.svc.cluster.local"], "regions": ["cn-hangzhou"] }],
    });
    let errors = parse_policy(bad.to_string().as_bytes()).unwrap_err();
    let text = errors.to_string();
    assert!(
        text.contains(r#"clusterRegions["ack-hangzhou"]: unknown region "cn-shenzhen""#),
        "{text}"
    );
    assert!(
        text.contains(r#"clusterRegions["bad id"]: "bad id" is not a valid Istio cluster ID"#),
        "{text}"
    );
}

#[test]
fn a_shape_error_inside_the_table_names_the_key() {
    let bad = r#"{"apiVersion":"geolb.io/v1alpha1","routeToken":"test-route-token-not-a-secret","regions":["a"],"clusterRegions":{"c1":7},"services":[]}"#;
    let text = parse_policy(bad.as_bytes()).unwrap_err().to_string();
    assert!(text.starts_with(r#"clusterRegions["c1"]"#), "{text}");
}

proptest! {
    /// Whatever the inputs, the result follows the documented order: the pin if any,
    /// else the table's region if the cluster ID is in it, else the locality if it
    /// names a policy region, else unknown; a disagreement is reported exactly when
    /// the locality names something other than the chosen region.
    #[test]
    fn the_order_is_pin_table_locality(
        pin in proptest::option::of(0usize..3),
        cluster in proptest::option::of(prop_oneof![
            Just("ack-hangzhou"), Just("c5f1e2d3a4b5"), Just("unlisted")
        ]),
        locality in proptest::option::of(prop_oneof![
            Just("cn-hangzhou"), Just("cn-shanghai"), Just("cn-beijing"), Just("elsewhere")
        ]),
    ) {
        let p = policy(pin.map(|i| REGIONS[i]));
        let found = p.source_region(identity(cluster, locality));
        let table = match cluster {
            Some("ack-hangzhou") => Some("cn-hangzhou"),
            Some("c5f1e2d3a4b5") => Some("cn-shanghai"),
            _ => None,
        };
        let known_locality = locality.filter(|l| REGIONS.contains(l));
        let expected = pin.map(|i| (REGIONS[i], Origin::Pinned))
            .or(table.map(|r| (r, Origin::ClusterId)))
            .or(known_locality.map(|r| (r, Origin::NodeLocality)));
        match (expected, &found) {
            (Some((name, origin)), SourceRegion::Known { region: r, origin: o, locality_disagrees }) => {
                prop_assert_eq!(p.region_name(*r), name);
                prop_assert_eq!(*o, origin);
                prop_assert_eq!(locality_disagrees.as_deref(), locality.filter(|l| *l != name));
            }
            (None, SourceRegion::Unknown { cluster_id, locality_region }) => {
                prop_assert_eq!(cluster_id.as_deref(), cluster);
                prop_assert_eq!(locality_region.as_deref(), locality);
            }
            (expected, found) => prop_assert!(false, "expected {:?}, found {:?}", expected, found),
        }
    }
}
