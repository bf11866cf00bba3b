//! Plan validation: every problem at once, each located by field path.
//!
//! Shape errors (unknown field, wrong type) are found against the plan's JSON Schema
//! (`shape`), all at once; everything else is checked here on the parsed plan, one
//! domain per module.

pub mod istio;
mod mesh;
pub(crate) use mesh::target_minor;
mod network;
mod shape;
mod traffic;

use std::collections::BTreeMap;

use crate::finding::{self, Finding};
use crate::plan::{API_VERSION, KIND, Plan};
use crate::source::{FieldPath, Source};
use crate::topology::Topology;

/// The result of loading and checking a plan.
#[derive(Debug)]
pub struct Checked {
    /// The plan, when it parsed.
    pub plan: Option<Plan>,
    /// Errors and warnings, errors first, then in source order.
    pub findings: Vec<Finding>,
}

impl Checked {
    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    /// How many findings are errors.
    pub fn error_count(&self) -> usize {
        finding::error_count(&self.findings)
    }
}

/// Parses and validates the plan in `source`.
pub fn check(source: &Source) -> Checked {
    // The schema first: serde reads a quoted `"90"` as the number 90, the schema (and
    // the filter) do not.
    let shape = shape::findings(source);
    if !shape.is_empty() {
        return Checked {
            plan: None,
            findings: shape,
        };
    }
    let plan = match Plan::from_text(source.text()) {
        Ok(plan) => plan,
        Err(err) => {
            return Checked {
                plan: None,
                findings: vec![shape_finding(source, &err)],
            };
        }
    };
    let mut findings = validate(&plan);
    findings.sort_by_key(|f| (f.severity, source.place(&f.path).map(|p| p.offset)));
    Checked {
        plan: Some(plan),
        findings,
    }
}

/// Validates a parsed plan (no source needed: findings carry field paths).
pub fn validate(plan: &Plan) -> Vec<Finding> {
    let mut c = Checker {
        topo: Topology::new(plan),
        findings: Vec::new(),
    };
    c.top_level();
    network::check(&mut c);
    mesh::check(&mut c);
    // Before traffic: its last pass only runs on an otherwise clean plan.
    istio::check(&mut c);
    traffic::check(&mut c);
    c.findings
}

/// Turns a serde error into a finding at the field it points into, or, when the text
/// is not YAML at all (syntax, duplicate keys, several documents), at the line and
/// column the parser stopped: the field index stops there, so a path would name an
/// ancestor far above the mistake.
fn shape_finding(source: &Source, err: &serde_saphyr::Error) -> Finding {
    let position = err.location().map(|l| {
        (
            usize::try_from(l.line()).unwrap_or(0),
            usize::try_from(l.column()).unwrap_or(0),
        )
    });
    let path = position
        .map(|(line, column)| source.offset_of(line, column))
        .and_then(|offset| source.path_at(offset))
        .unwrap_or_default();
    let message = yaml_message(err.without_snippet());
    let hint = if message.contains("unknown field") {
        "check the spelling against docs/plan.md (field names are camelCase)"
    } else if message.contains("duplicate key") {
        "each key appears once in a mapping: remove or rename one of them"
    } else if matches!(err.without_snippet(), serde_saphyr::Error::Budget { .. }) {
        "docs/plan.md gives the limit; split the plan or drop entries it does not need"
    } else if message.contains("one YAML document") {
        "remove the `---` separator and everything after it, or split the plan into files"
    } else {
        "the plan's shape is described in docs/plan.md and generator/plan.schema.json"
    };
    let finding = Finding::error(path, format!("the plan does not parse: {message}"), hint);
    let is_yaml = serde_saphyr::from_str_with_options::<serde_json::Value>(
        source.text(),
        crate::plan::yaml_options(),
    )
    .is_ok();
    match position {
        Some((line, column)) if !is_yaml && line > 0 => finding.at_position(line, column),
        _ if message.contains("unknown field") => finding.at_key(),
        _ => finding,
    }
}

/// The parser's message in the plan author's terms: no option or function names of
/// the YAML library, and without the position (the finding shows it in our own form).
fn yaml_message(err: &serde_saphyr::Error) -> String {
    match err {
        serde_saphyr::Error::DuplicateMappingKey { key: Some(key), .. } => {
            format!("duplicate key {key:?}")
        }
        serde_saphyr::Error::DuplicateMappingKey { key: None, .. } => "duplicate key".to_owned(),
        serde_saphyr::Error::MultipleDocuments { .. } => {
            "a plan is one YAML document, but the file holds more than one".to_owned()
        }
        serde_saphyr::Error::Budget { .. } => format!(
            "the plan has more than {} YAML nodes (values, lists and mappings), the most a \
             plan may have",
            crate::plan::MAX_NODES
        ),
        other => {
            let text = other.to_string();
            text.split(" at line ")
                .next()
                .unwrap_or(&text)
                .trim()
                .to_owned()
        }
    }
}

/// Shared state of the validation passes.
pub(crate) struct Checker<'a> {
    pub(crate) topo: Topology<'a>,
    pub(crate) findings: Vec<Finding>,
}

impl<'a> Checker<'a> {
    pub(crate) fn plan(&self) -> &'a Plan {
        self.topo.plan
    }

    pub(crate) fn error(
        &mut self,
        path: FieldPath,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.findings.push(Finding::error(path, message, hint));
    }

    pub(crate) fn warning(
        &mut self,
        path: FieldPath,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.findings.push(Finding::warning(path, message, hint));
    }

    /// A DNS-1123 label (Kubernetes object names, namespaces, subsets).
    pub(crate) fn dns_label(&mut self, path: FieldPath, what: &str, value: &str, max: usize) {
        if let Err(why) = dns_label(value, max) {
            self.error(
                path,
                format!("{what} {value:?} is not a valid DNS-1123 label: {why}"),
                "use lowercase letters, digits and '-', starting and ending with a letter or digit",
            );
        }
    }

    /// Reports names that appear twice in one list.
    pub(crate) fn unique<'n>(
        &mut self,
        what: &str,
        items: impl Iterator<Item = (FieldPath, &'n str)>,
    ) {
        let mut seen: BTreeMap<&str, FieldPath> = BTreeMap::new();
        for (path, name) in items {
            if let Some(first) = seen.get(name) {
                let message = format!("duplicate {what} {name:?} (first defined at {first})");
                self.findings.push(Finding::error(
                    path,
                    message,
                    format!("give each {what} a unique name"),
                ));
            } else {
                seen.insert(name, path);
            }
        }
    }

    /// Reports a reference to something not declared.
    pub(crate) fn unknown(&mut self, path: FieldPath, what: &str, value: &str, known: &[&str]) {
        let known = if known.is_empty() {
            String::from("none are declared")
        } else {
            format!("declared: {}", known.join(", "))
        };
        self.error(
            path,
            format!("unknown {what} {value:?}"),
            format!("{known}; fix the name or declare it"),
        );
    }

    fn top_level(&mut self) {
        let plan = self.plan();
        let root = FieldPath::root();
        if plan.api_version != API_VERSION {
            self.error(
                root.key("apiVersion"),
                format!("apiVersion {:?} is not supported", plan.api_version),
                format!("use {API_VERSION:?}"),
            );
        }
        if plan.kind != KIND {
            self.error(
                root.key("kind"),
                format!("kind {:?} is not a plan", plan.kind),
                format!("use {KIND:?}"),
            );
        }
        for (field, empty) in [
            ("meshes", plan.meshes.is_empty()),
            ("regions", plan.regions.is_empty()),
            ("clusters", plan.clusters.is_empty()),
            ("services", plan.services.is_empty()),
        ] {
            if empty {
                self.error(
                    root.key(field),
                    format!("{field} must not be empty"),
                    format!("declare at least one entry in {field}"),
                );
            }
        }
        let regions = root.key("regions");
        for (i, r) in plan.regions.iter().enumerate() {
            // Regions become subset names `geolb-<region>`: 63 - 6 characters.
            self.dns_label(regions.index(i).key("name"), "region", &r.name, 57);
        }
        self.unique(
            "region",
            plan.regions
                .iter()
                .enumerate()
                .map(|(i, r)| (regions.index(i).key("name"), r.name.as_str())),
        );
        let networks = root.key("networks");
        for (i, n) in plan.networks.iter().enumerate() {
            self.dns_label(networks.index(i).key("name"), "network", &n.name, 63);
        }
        self.unique(
            "network",
            plan.networks
                .iter()
                .enumerate()
                .map(|(i, n)| (networks.index(i).key("name"), n.name.as_str())),
        );
    }
}

/// Kubernetes label value rules, empty excluded: Istio carries cluster IDs in the
/// `topology.istio.io/cluster` label.
pub fn label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(String::from("it is empty"));
    }
    if value.len() > 63 {
        return Err(String::from("longer than 63 characters"));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(String::from(
            "only letters, digits, '-', '_' and '.' are allowed",
        ));
    }
    let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    if !alnum(value.bytes().next()) || !alnum(value.bytes().last()) {
        return Err(String::from("must start and end with a letter or digit"));
    }
    Ok(())
}

/// DNS-1123 label rules; `max` is the length limit for this use.
pub fn dns_label(value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() {
        return Err(String::from("it is empty"));
    }
    if value.len() > max {
        return Err(format!("longer than {max} characters"));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(String::from(
            "only lowercase letters, digits and '-' are allowed",
        ));
    }
    let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !alnum(value.bytes().next()) || !alnum(value.bytes().last()) {
        return Err(String::from("must start and end with a letter or digit"));
    }
    Ok(())
}
