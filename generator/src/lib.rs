//! geolb generator: one multi-region plan in; a validated network plan and
//! deterministic Istio manifests for GitOps out.

pub mod addressing;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "cli")]
pub mod drift;
#[cfg(feature = "cli")]
pub mod files;
pub mod finding;
pub mod netplan;
pub mod pipeline;
pub mod plan;
pub mod policy;
pub mod render;
pub mod secret;
pub mod simulate;
pub mod source;
pub mod topology;
pub mod validate;

#[cfg(feature = "cli")]
use std::path::Path;

/// Loads, validates and renders a plan file (what `geolb render` does, minus
/// writing): the entry point for tests and the benchmark.
#[cfg(feature = "cli")]
pub fn render_file(
    path: &Path,
    extension_api: render::ExtensionApi,
    route_secrets: &secret::RouteSecrets,
) -> Result<render::Manifests, pipeline::Refusal> {
    let source = source::Source::new(path.display().to_string(), files::read_plan(path)?);
    let plan = pipeline::valid_plan(validate::check(&source))
        .map_err(|findings| pipeline::Refusal::invalid(&findings, &source))?;
    pipeline::render_plan(&plan, extension_api, |_| Ok(route_secrets.clone()))
}
