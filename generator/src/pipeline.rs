//! A plan's way to its manifests, written once for every front end (the CLI, the
//! library's [`render_file`](crate::render_file), the playground): checked, refused on
//! any error, given its route secrets, rendered. Each front end only decides where
//! the findings and the failure are shown.

use crate::finding::{self, Finding};
use crate::plan::Plan;
use crate::render::{self, ExtensionApi, Manifests, RenderError, RenderOptions};
use crate::secret::{RouteSecrets, SecretError};
use crate::source::Source;
use crate::topology::Topology;
use crate::validate::Checked;

/// Why a plan produced no manifests.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Refusal {
    /// The plan file could not be read.
    #[cfg(feature = "cli")]
    #[error("the plan cannot be read: {0}")]
    #[diagnostic(code(geolb::plan::unreadable))]
    Unreadable(#[from] crate::files::FileError),
    /// Validation found errors.
    #[error("the plan has {errors} error(s):\n{report}")]
    #[diagnostic(code(geolb::plan::invalid))]
    Invalid {
        /// How many.
        errors: usize,
        /// Every finding, warnings too, as the CLI prints them (no color).
        report: String,
    },
    /// The route secret the plan names is not usable.
    #[error(transparent)]
    #[diagnostic(transparent)]
    RouteSecret(#[from] SecretError),
    /// The render failed (a bug).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Render(#[from] RenderError),
}

/// The plan of `checked` when validation found no error; else its findings, left
/// unrendered for a front end that already showed them.
pub fn valid_plan(checked: Checked) -> Result<Plan, Vec<Finding>> {
    match checked.plan {
        Some(plan) if !checked.has_errors() => Ok(plan),
        _ => Err(checked.findings),
    }
}

impl Refusal {
    /// The refusal of a plan with errors: every finding of it, as the CLI prints them.
    pub fn invalid(findings: &[Finding], source: &Source) -> Refusal {
        Refusal::Invalid {
            errors: finding::error_count(findings).max(1),
            report: findings
                .iter()
                .map(|f| finding::render(&f.locate(source), false))
                .collect(),
        }
    }
}

/// The manifests of a valid plan, with the route secrets `secrets` picks for it.
pub fn render_plan(
    plan: &Plan,
    extension_api: ExtensionApi,
    secrets: impl FnOnce(&Plan) -> Result<RouteSecrets, SecretError>,
) -> Result<Manifests, Refusal> {
    let options = RenderOptions {
        extension_api,
        route_secrets: secrets(plan)?,
    };
    Ok(render::render(&Topology::new(plan), &options)?)
}
