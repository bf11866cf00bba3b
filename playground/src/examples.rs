//! The seed plans the page offers, the same files `manifests/examples/` holds.

use serde::Serialize;

/// One example plan.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Example {
    /// Its folder under `manifests/examples/`, such as `a-failover-distribution`.
    pub name: &'static str,
    /// What it shows.
    pub title: &'static str,
    /// The plan's text.
    pub text: &'static str,
}

/// Every example, the first one loaded when the page opens.
pub const EXAMPLES: [Example; 4] = [
    Example {
        name: "a-failover-distribution",
        title: "Two regions: failover and a 90/10 split at once (managed mesh)",
        text: include_str!("../../manifests/examples/a-failover-distribution/plan.yaml"),
    },
    Example {
        name: "b-locality-preferred",
        title: "Locality preferred: local first, the other region's v3 when local fails",
        text: include_str!("../../manifests/examples/b-locality-preferred/plan.yaml"),
    },
    Example {
        name: "c-multi-primary",
        title: "Multi-primary: two meshes sharing one root CA, on two networks",
        text: include_str!("../../manifests/examples/c-multi-primary/plan.yaml"),
    },
    Example {
        name: "d-multi-network",
        title: "Multi-cloud, multi-network, hosted control plane",
        text: include_str!("../../manifests/examples/d-multi-network/plan.yaml"),
    },
];
