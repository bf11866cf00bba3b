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
/// writing): the entry point for tests and the benchmark. Errors are rendered text.
#[cfg(feature = "cli")]
pub fn render_file(
    path: &Path,
    extension_api: render::ExtensionApi,
    route_secrets: &secret::RouteSecrets,
) -> Result<render::Manifests, String> {
    let text = files::read_plan(path).map_err(|e| e.to_string())?;
    let source = source::Source::new(path.display().to_string(), text);
    let checked = validate::check(&source);
    if checked.has_errors() {
        let shown: Vec<String> = checked
            .findings
            .iter()
            .map(|f| finding::render(&f.locate(&source), false))
            .collect();
        return Err(shown.concat());
    }
    let plan = checked.plan.ok_or_else(|| String::from("no plan"))?;
    let options = render::RenderOptions {
        extension_api,
        route_secrets: route_secrets.clone(),
    };
    render::render(&topology::Topology::new(&plan), &options).map_err(|e| e.to_string())
}
