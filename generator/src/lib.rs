//! geolb generator: one multi-region plan in; a validated network plan and
//! deterministic Istio manifests for GitOps out.

pub mod addressing;
pub mod cli;
pub mod drift;
pub mod finding;
pub mod module;
pub mod netplan;
pub mod plan;
pub mod policy;
pub mod render;
pub mod source;
pub mod topology;
pub mod validate;
