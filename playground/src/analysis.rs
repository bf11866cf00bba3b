//! What the editor shows after each edit: the findings of `geolb validate` and, when
//! the plan is valid, the files of `geolb render`.

use std::collections::BTreeMap;

use geolb::finding::{self, Finding, Severity};
use geolb::pipeline;
use geolb::plan::Plan;
use geolb::render::ExtensionApi;
use geolb::secret::{EXAMPLE_ROUTE_SECRET, RouteSecrets};
use geolb::source::Source;
use geolb::topology::Topology;
use geolb::validate;
use serde::Serialize;

use crate::PLAN_NAME;

/// One finding, placed for the editor and rendered as the CLI prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnostic {
    /// `error` or `warning`.
    pub severity: &'static str,
    /// The field path, such as `services[3].traffic.distribute`.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// 1-based line and column, when the finding has a place.
    pub line: Option<usize>,
    /// See `line`.
    pub column: Option<usize>,
    /// The marked range in UTF-16 code units (JavaScript string indices).
    pub start: Option<usize>,
    /// See `start`; at least one unit past it.
    pub end: Option<usize>,
    /// The finding exactly as `geolb validate` prints it (no colour).
    pub text: String,
}

/// The editor's view of one plan text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    /// Every finding, errors first, as `geolb validate` orders them.
    pub diagnostics: Vec<Diagnostic>,
    /// The count of errors.
    pub errors: usize,
    /// The count of warnings.
    pub warnings: usize,
    /// `geolb render`'s files (path under the output directory, content) when the
    /// plan has no errors.
    pub files: Option<BTreeMap<String, String>>,
    /// Why a valid plan did not render (a valid plan always should).
    pub render_error: Option<String>,
    /// The plan's regions, for the what-if controls.
    pub regions: Vec<String>,
}

/// Validates `text` and renders it when valid, with the public example route secret
/// (what `GEOLB_ROUTE_SECRET=$(cat manifests/examples/route-secret.example) geolb
/// render` writes: the page never holds a real secret).
pub fn analyse(text: &str, extension_api: &str) -> Result<Analysis, String> {
    let extension_api = match extension_api {
        "wasmplugin" => ExtensionApi::Wasmplugin,
        "trafficextension" => ExtensionApi::Trafficextension,
        other => {
            return Err(format!(
                "extension API {other:?} is neither wasmplugin nor trafficextension"
            ));
        }
    };
    let source = Source::new(PLAN_NAME, text);
    let checked = validate::check(&source);
    let diagnostics: Vec<Diagnostic> = checked
        .findings
        .iter()
        .map(|f| diagnostic(f, &source))
        .collect();
    let errors = checked.error_count();
    let mut analysis = Analysis {
        warnings: diagnostics.len() - errors,
        errors,
        diagnostics,
        files: None,
        render_error: None,
        regions: Vec::new(),
    };
    if let (Some(plan), 0) = (checked.plan, errors) {
        analysis.regions = Topology::new(&plan)
            .regions()
            .into_iter()
            .map(str::to_owned)
            .collect();
        // Every variable the plan names reads the example secret.
        let example =
            |plan: &Plan| RouteSecrets::from_env(plan, |_| Some(EXAMPLE_ROUTE_SECRET.into()));
        match pipeline::render_plan(&plan, extension_api, example) {
            Ok(files) => analysis.files = Some(files),
            Err(e) => analysis.render_error = Some(e.to_string()),
        }
    }
    Ok(analysis)
}

fn diagnostic(finding: &Finding, source: &Source) -> Diagnostic {
    let place = finding.place(source);
    let units = |byte: usize| {
        source
            .text()
            .get(..byte)
            .map_or(0, |before| before.encode_utf16().count())
    };
    let start = place.map(|p| units(p.offset));
    let end = place.map(|p| units(p.offset + p.len).max(units(p.offset) + 1));
    Diagnostic {
        severity: match finding.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        },
        path: finding.path.to_string(),
        message: finding.message.clone(),
        hint: finding.hint.clone(),
        line: place.map(|p| p.line),
        column: place.map(|p| p.column),
        start,
        end,
        text: finding::render(&finding.locate(source), false),
    }
}
