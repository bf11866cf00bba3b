//! Validation of rendered manifests against Istio's published CRDs, approximating what
//! `kubectl apply --validate=strict` plus the API server (structural OpenAPI schema and the
//! `x-kubernetes-validations` CEL rules) would reject.
//!
//! Usage from an integration test of the `geolb` package:
//!
//! ```ignore
//! mod support;
//! use support::crd;
//!
//! #[test]
//! fn rendered_manifests_are_valid() {
//!     let report = crd::validator().validate_dir("target/some-output-dir");
//!     report.assert_clean();
//! }
//! ```
//!
//! What is checked, per YAML document:
//! * `apiVersion` + `kind` resolve to a served version of a CRD in the file; for a CRD group
//!   with an unknown version or kind that is an error (kubectl: "no matches for kind").
//! * The version's `openAPIV3Schema`: its value keywords (`type`, `enum`, `required`,
//!   `pattern`, `minLength`/`maxLength`, `minItems`/`maxItems`, `minProperties`/
//!   `maxProperties`, `minimum`/`maximum` (+ exclusive), `multipleOf`, `oneOf`/`anyOf`/
//!   `allOf`/`not`, formats `date-time` and `byte`) are checked by the `jsonschema`
//!   crate against the schema's JSON Schema form, which gives them the Kubernetes
//!   meanings: unknown fields are rejected (strict field validation) unless
//!   `x-kubernetes-preserve-unknown-fields` / `additionalProperties` allow them,
//!   `nullable` admits null, `x-kubernetes-int-or-string` is an integer or a string.
//!   Checked here, walking schema and value: formats `int32`/`int64` and
//!   `x-kubernetes-list-type: map|set` uniqueness.
//! * `metadata`: ObjectMeta fields only, `name` required and a DNS-1123 subdomain (label for
//!   Namespace, DNS-1035 label for Service), `namespace` a DNS-1123 label, present for
//!   namespaced kinds (see [`Validator::require_namespace`]) and absent for cluster-scoped ones,
//!   label and annotation keys/values as Kubernetes validates them.
//! * Every `x-kubernetes-validations` rule, at every schema level where one appears, with
//!   `self` bound to the node (transition rules with `oldSelf` do not apply to a create).
//!   Evaluated with the `cel` crate plus the Kubernetes CEL extensions the Istio rules use
//!   (`isURL`, `url(...).getScheme()` & co., `isIP`, `isCIDR`) implemented here. A rule that
//!   cannot be compiled or uses a function we do not provide is reported in
//!   [`Report::not_evaluated`] with its text and schema path, never silently skipped.
//! * YAML: one stream may hold several documents (empty ones are skipped, indexes count from
//!   0 in stream order); non-string keys, duplicate keys and tags are errors, and so are
//!   unquoted `y`/`n`/`yes`/`no`/`on`/`off`, which kubectl's YAML 1.1 parser reads as booleans.
//! * Core kinds without a CRD in the file (Namespace, ConfigMap, Service) are checked against
//!   small hand-written schemas; Kustomization and IstioOperator against hand-written schemas of
//!   their upper levels (deeper free-form parts are reported in [`Report::no_schema`]). Any
//!   other kind is reported in [`Report::no_schema`], so a test can decide.
//!
//! Not covered: istiod's validating webhook (pkg/config/validation), which is stricter than the
//! CRDs (e.g. `distribute` together with `failover`, Gateway port numbers above 65535, subset
//! names), and defaulting/pruning. A transition rule (one using `oldSelf`) is skipped, as the
//! API server skips it on create.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::Deserialize as _;
use serde_json::{Map as JsonMap, Value as Json, json};

/// The vendored copy of Istio 1.30.3's CRDs (from the release's
/// manifests/charts/base/files/crd-all.gen.yaml). Override with `GEOLB_ISTIO_CRDS`.
pub const DEFAULT_CRD_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/istio-1.30.3-crds.yaml"
);

/// The process-wide validator for [`DEFAULT_CRD_FILE`] (or `$GEOLB_ISTIO_CRDS`), parsed once
/// per test binary.
pub fn validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| {
        let path =
            std::env::var("GEOLB_ISTIO_CRDS").unwrap_or_else(|_| DEFAULT_CRD_FILE.to_owned());
        Validator::from_crd_file(path)
    })
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

/// The outcome of validating one or more YAML streams.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Each names the file, the document index (0-based, in stream order), kind/name, the JSON
    /// path and what is wrong.
    pub errors: Vec<String>,
    /// CEL rules that applied to a node but could not be evaluated: rule text, schema path and
    /// the reason. Deduplicated per (kind, schema path, rule).
    pub not_evaluated: Vec<String>,
    /// Documents (or parts of documents) for which no schema was available.
    pub no_schema: Vec<String>,
    /// Number of non-empty documents validated.
    pub documents: usize,
    /// Number of CEL rule evaluations that ran to a boolean.
    pub cel_evaluations: usize,
    /// Documents per `kind` (`<no kind>` when missing).
    pub kinds: std::collections::BTreeMap<String, usize>,
}

impl Report {
    /// No errors and no unevaluated CEL rules (`no_schema` entries do not count).
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty() && self.not_evaluated.is_empty()
    }

    pub fn merge(&mut self, other: Report) {
        self.errors.extend(other.errors);
        for n in other.not_evaluated {
            if !self.not_evaluated.contains(&n) {
                self.not_evaluated.push(n);
            }
        }
        self.no_schema.extend(other.no_schema);
        self.documents += other.documents;
        self.cel_evaluations += other.cel_evaluations;
        for (k, n) in other.kinds {
            *self.kinds.entry(k).or_default() += n;
        }
    }

    /// A readable multi-line summary of everything in the report.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{} document(s), {} CEL evaluation(s): {} error(s), {} CEL rule(s) not evaluated, {} without schema\n",
            self.documents,
            self.cel_evaluations,
            self.errors.len(),
            self.not_evaluated.len(),
            self.no_schema.len()
        );
        if !self.kinds.is_empty() {
            let kinds: Vec<String> = self.kinds.iter().map(|(k, n)| format!("{k}×{n}")).collect();
            let _ = writeln!(s, "kinds: {}", kinds.join(", "));
        }
        for (title, list) in [
            ("errors", &self.errors),
            ("CEL rules not evaluated", &self.not_evaluated),
            ("no schema", &self.no_schema),
        ] {
            if !list.is_empty() {
                let _ = writeln!(s, "{title}:");
                for e in list {
                    let _ = writeln!(s, "  - {e}");
                }
            }
        }
        s
    }

    /// Panics with a readable list unless there are no errors and no unevaluated CEL rules.
    #[track_caller]
    pub fn assert_clean(&self) {
        assert!(
            self.is_clean(),
            "manifest validation failed\n{}",
            self.render()
        );
    }

    /// Panics unless there are no errors (unevaluated CEL rules are tolerated).
    #[track_caller]
    pub fn assert_no_errors(&self) {
        assert!(
            self.errors.is_empty(),
            "manifest validation failed\n{}",
            self.render()
        );
    }

    /// Panics unless at least one error contains every one of `needles`.
    #[track_caller]
    pub fn assert_error_containing(&self, needles: &[&str]) {
        assert!(
            self.errors
                .iter()
                .any(|e| needles.iter().all(|n| e.contains(n))),
            "expected an error containing all of {needles:?}\n{}",
            self.render()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Validator
// ---------------------------------------------------------------------------------------------

struct CrdVersion {
    kind: String,
    api_version: String,
    namespaced: bool,
    schema: Json,
    /// The schema's OpenAPI value keywords as a JSON Schema, checked by `jsonschema`.
    structural: jsonschema::Validator,
}

impl CrdVersion {
    fn new(kind: &str, api_version: &str, namespaced: bool, schema: Json) -> CrdVersion {
        let structural = structural_validator(&schema)
            .unwrap_or_else(|e| panic!("{kind} {api_version}: the schema does not compile: {e}"));
        CrdVersion {
            kind: kind.to_owned(),
            api_version: api_version.to_owned(),
            namespaced,
            schema,
            structural,
        }
    }
}

/// What the validator knows about one CEL rule of the CRD file.
#[derive(Debug, Clone)]
pub struct RuleInfo {
    /// e.g. `WasmPlugin extensions.istio.io/v1alpha1`
    pub resource: String,
    /// Schema path in data-path form: `spec.servers[*].port.number`, `{*}` for map values.
    pub schema_path: String,
    pub rule: String,
    /// `None` when evaluable, else why not.
    pub unsupported: Option<String>,
}

enum Compiled {
    Ok(cel::Program),
    Unsupported(String),
}

pub struct Validator {
    crds: HashMap<(String, String), Arc<CrdVersion>>,
    /// group -> every kind any CRD of that group declares (to tell "unknown version" apart).
    groups: HashMap<String, BTreeSet<String>>,
    builtin: HashMap<(String, String), Arc<CrdVersion>>,
    env: Arc<cel::Env>,
    programs: HashMap<String, Compiled>,
    rules: Vec<RuleInfo>,
    /// Report a missing `metadata.namespace` on namespaced kinds as an error (default true).
    pub require_namespace: bool,
}

impl Validator {
    /// Loads every CRD of a multi-document YAML file, every served version.
    /// Panics with a clear message when the file cannot be read or parsed.
    pub fn from_crd_file(path: impl AsRef<Path>) -> Validator {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read CRD file {}: {e}", path.display()));
        Validator::from_crd_yaml(&text, &path.display().to_string())
    }

    pub fn from_crd_yaml(text: &str, label: &str) -> Validator {
        let docs = parse_yaml_stream(text)
            .unwrap_or_else(|e| panic!("cannot parse CRD file {label}: {e}"));
        let mut v = Validator {
            crds: HashMap::new(),
            groups: HashMap::new(),
            builtin: HashMap::new(),
            env: Arc::new(cel_env()),
            programs: HashMap::new(),
            rules: Vec::new(),
            require_namespace: true,
        };
        for doc in docs.into_iter().flatten() {
            if doc.get("kind").and_then(Json::as_str) != Some("CustomResourceDefinition") {
                continue;
            }
            let spec = &doc["spec"];
            let crd_name = doc["metadata"]["name"].as_str().unwrap_or("?").to_owned();
            let group = spec["group"]
                .as_str()
                .unwrap_or_else(|| panic!("{label}: CRD {crd_name} has no spec.group"));
            let kind = spec["names"]["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{label}: CRD {crd_name} has no kind"));
            let namespaced = spec["scope"].as_str() != Some("Cluster");
            v.groups
                .entry(group.to_owned())
                .or_default()
                .insert(kind.to_owned());
            for ver in spec["versions"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                if ver["served"].as_bool() != Some(true) {
                    continue;
                }
                let name = ver["name"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{label}: CRD {crd_name}: version without name"));
                let schema = ver["schema"]["openAPIV3Schema"].clone();
                if !schema.is_object() {
                    panic!("{label}: CRD {crd_name} version {name} has no openAPIV3Schema");
                }
                let api_version = format!("{group}/{name}");
                let cv = CrdVersion::new(kind, &api_version, namespaced, schema);
                v.crds.insert((api_version, kind.to_owned()), Arc::new(cv));
            }
        }
        assert!(
            !v.crds.is_empty(),
            "{label}: no CustomResourceDefinition found"
        );
        for (api_version, kind, namespaced, schema) in builtin_schemas() {
            let cv = CrdVersion::new(kind, api_version, namespaced, schema);
            v.builtin
                .insert((api_version.to_owned(), kind.to_owned()), Arc::new(cv));
        }
        // Precompile every CEL rule and regex pattern of every schema.
        let mut all: Vec<Arc<CrdVersion>> = v.crds.values().cloned().collect();
        all.extend(v.builtin.values().cloned());
        all.sort_by(|a, b| (&a.kind, &a.api_version).cmp(&(&b.kind, &b.api_version)));
        for cv in all {
            let mut found = Vec::new();
            collect_rules(&cv.schema, "", &mut found);
            for (spath, rule) in found {
                if !v.programs.contains_key(&rule) {
                    let c = compile_rule(&v.env, &rule);
                    v.programs.insert(rule.clone(), c);
                }
                let unsupported = match &v.programs[&rule] {
                    Compiled::Ok(_) => None,
                    Compiled::Unsupported(r) => Some(r.clone()),
                };
                v.rules.push(RuleInfo {
                    resource: format!("{} {}", cv.kind, cv.api_version),
                    schema_path: spath,
                    rule,
                    unsupported,
                });
            }
        }
        v
    }

    /// Every CEL rule of every served version, with whether it can be evaluated.
    pub fn cel_rules(&self) -> &[RuleInfo] {
        &self.rules
    }

    /// Rules (deduplicated by text) that cannot be evaluated, with where they occur.
    pub fn unevaluable_rules(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.rules {
            if let Some(why) = &r.unsupported {
                out.push(format!(
                    "{} {}: {:?}: {why}",
                    r.resource, r.schema_path, r.rule
                ));
            }
        }
        out
    }

    /// Evaluates one CEL rule with `self` bound to `value`, as the schema walk does.
    /// `Err` for a parse error, an unsupported function or an evaluation error.
    pub fn eval_rule(&self, rule: &str, value: &Json) -> Result<bool, String> {
        let compiled;
        let c = match self.programs.get(rule) {
            Some(c) => c,
            None => {
                compiled = compile_rule(&self.env, rule);
                &compiled
            }
        };
        let program = match c {
            Compiled::Ok(p) => p,
            Compiled::Unsupported(why) => return Err(format!("not evaluable: {why}")),
        };
        let mut ctx = cel::Context::with_env(self.env.clone());
        register_k8s_functions(&mut ctx);
        ctx.add_variable_from_value("self", to_cel(value));
        match program.execute(&ctx) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("not a bool: {other:?}")),
            Err(e) => Err(format!("evaluation error: {e}")),
        }
    }

    /// `(apiVersion, kind)` of every CRD version loaded.
    pub fn kinds(&self) -> Vec<(String, String)> {
        let mut k: Vec<_> = self.crds.keys().cloned().collect();
        k.sort();
        k
    }

    /// Validates every `*.yaml` / `*.yml` file under `dir` (recursively, sorted by path).
    /// Panics if the directory cannot be read or holds no YAML file.
    pub fn validate_dir(&self, dir: impl AsRef<Path>) -> Report {
        let dir = dir.as_ref();
        let mut files = Vec::new();
        collect_yaml_files(dir, &mut files);
        files.sort();
        assert!(
            !files.is_empty(),
            "no *.yaml / *.yml file under {}",
            dir.display()
        );
        let mut report = Report::default();
        for f in files {
            report.merge(self.validate_file(&f));
        }
        report
    }

    /// Validates one YAML file; the label is its path.
    pub fn validate_file(&self, path: impl AsRef<Path>) -> Report {
        let path = path.as_ref();
        match std::fs::read_to_string(path) {
            Ok(text) => self.validate_documents(&text, &path.display().to_string()),
            Err(e) => Report {
                errors: vec![format!("{}: cannot read: {e}", path.display())],
                ..Report::default()
            },
        }
    }

    /// Validates every document of a YAML stream. Empty documents are skipped (as kubectl
    /// does); document indexes count every document of the stream from 0.
    pub fn validate_documents(&self, yaml_text: &str, file_label: &str) -> Report {
        let mut report = Report::default();
        match parse_yaml_stream(yaml_text) {
            Err(e) => report
                .errors
                .push(format!("{file_label}: YAML parse error: {e}")),
            Ok(docs) => {
                for h in yaml11_hazards(yaml_text) {
                    report.errors.push(format!("{file_label} {h}"));
                }
                for (i, doc) in docs.iter().enumerate() {
                    match doc {
                        None => {}
                        Some(Json::Null) => {}
                        Some(doc) => self.validate_value(doc, file_label, i, &mut report),
                    }
                }
            }
        }
        report
    }

    /// Validates one already-parsed document.
    pub fn validate_value(&self, doc: &Json, file_label: &str, index: usize, report: &mut Report) {
        report.documents += 1;
        let kind = doc.get("kind").and_then(Json::as_str).unwrap_or("");
        *report
            .kinds
            .entry(if kind.is_empty() { "<no kind>" } else { kind }.to_owned())
            .or_default() += 1;
        let name = doc
            .pointer("/metadata/name")
            .and_then(Json::as_str)
            .unwrap_or("<no name>");
        let prefix = format!(
            "{file_label} doc#{index} {}/{name}",
            if kind.is_empty() { "<no kind>" } else { kind }
        );
        let mut w = Walk {
            v: self,
            errors: Vec::new(),
            not_evaluated: Vec::new(),
            cel_evaluations: 0,
            resource: String::new(),
        };
        let Some(obj) = doc.as_object() else {
            report.errors.push(format!(
                "{prefix}: <root>: document must be a mapping, got {}",
                type_name(doc)
            ));
            return;
        };
        let api_version = match obj.get("apiVersion") {
            Some(Json::String(s)) if !s.is_empty() => s.as_str(),
            Some(other) => {
                report.errors.push(format!(
                    "{prefix}: apiVersion: must be a non-empty string, got {}",
                    short(other)
                ));
                return;
            }
            None => {
                report
                    .errors
                    .push(format!("{prefix}: apiVersion: required field missing"));
                return;
            }
        };
        if kind.is_empty() {
            report.errors.push(format!(
                "{prefix}: kind: required field missing (or not a non-empty string)"
            ));
            return;
        }
        let key = (api_version.to_owned(), kind.to_owned());
        let cv = if let Some(cv) = self.crds.get(&key) {
            cv.clone()
        } else if let Some(cv) = self.builtin.get(&key) {
            cv.clone()
        } else {
            let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
            if let Some(kinds) = self.groups.get(group) {
                let served: Vec<String> = self
                    .crds
                    .keys()
                    .filter(|(_, k)| k == kind)
                    .map(|(a, _)| a.clone())
                    .collect();
                report.errors.push(format!(
                    "{prefix}: <root>: no matches for kind {kind:?} in version {api_version:?} (group {group:?} serves kinds {kinds:?}; {kind} is served as {served:?})"
                ));
                return;
            }
            // Unknown kind: only the envelope can be checked.
            self.check_metadata(&mut w, obj, kind, None);
            report.no_schema.push(format!(
                "{prefix}: no schema for {kind} {api_version}: only apiVersion, kind and metadata checked"
            ));
            finish(report, &prefix, w);
            return;
        };
        w.resource = format!("{} {}", cv.kind, cv.api_version);
        self.check_metadata(&mut w, obj, kind, Some(cv.namespaced));
        // Root: apiVersion, kind and metadata are implicit; everything else goes by the schema.
        let mut rest = obj.clone();
        for k in ["apiVersion", "kind", "metadata"] {
            rest.remove(k);
        }
        let rest = Json::Object(rest);
        w.structural(&cv, &rest);
        w.extensions(&cv.schema, &rest, "", "");
        // Root-level CEL rules see the whole object.
        if cv.schema.get("x-kubernetes-validations").is_some() {
            w.cel(&cv.schema, doc, "<root>", "");
        }
        for p in partial_schema_notes(kind, api_version, doc) {
            report.no_schema.push(format!("{prefix}: {p}"));
        }
        finish(report, &prefix, w);
    }

    fn check_metadata(
        &self,
        w: &mut Walk<'_>,
        obj: &JsonMap<String, Json>,
        kind: &str,
        namespaced: Option<bool>,
    ) {
        let name_optional = matches!(kind, "Kustomization" | "Component");
        let Some(meta) = obj.get("metadata") else {
            if !name_optional {
                w.err(
                    "metadata",
                    "required field missing (metadata.name is required)",
                );
            }
            return;
        };
        let Some(meta) = meta.as_object() else {
            w.err(
                "metadata",
                format!("must be an object, got {}", type_name(meta)),
            );
            return;
        };
        for k in meta.keys() {
            if !OBJECT_META_FIELDS.contains(&k.as_str()) {
                w.err(
                    &format!("metadata.{k}"),
                    "unknown field (not an ObjectMeta field)",
                );
            }
        }
        match meta.get("name") {
            None if name_optional => {}
            None => {
                if meta.contains_key("generateName") {
                    w.err(
                        "metadata.name",
                        "required field missing (generateName does not work with kubectl apply)",
                    );
                } else {
                    w.err("metadata.name", "required field missing");
                }
            }
            Some(Json::String(n)) => {
                let problem = match kind {
                    "Namespace" => dns1123_label(n),
                    "Service" => dns1035_label(n),
                    _ if name_optional => None,
                    _ => dns1123_subdomain(n),
                };
                if let Some(p) = problem {
                    w.err("metadata.name", format!("invalid name {n:?}: {p}"));
                }
            }
            Some(other) => w.err(
                "metadata.name",
                format!("must be a string, got {}", type_name(other)),
            ),
        }
        match (meta.get("namespace"), namespaced) {
            (Some(Json::String(ns)), Some(false)) => {
                w.err("metadata.namespace", format!("{kind} is cluster-scoped; namespace {ns:?} must not be set"))
            }
            (Some(Json::String(ns)), _) => {
                if let Some(p) = dns1123_label(ns) {
                    w.err("metadata.namespace", format!("invalid namespace {ns:?}: {p}"));
                }
            }
            (Some(other), _) => w.err("metadata.namespace", format!("must be a string, got {}", type_name(other))),
            (None, Some(true)) if self.require_namespace => {
                w.err("metadata.namespace", format!("required: {kind} is namespaced and geolb must not rely on the kubectl context's namespace"))
            }
            (None, _) => {}
        }
        for field in ["labels", "annotations"] {
            let Some(m) = meta.get(field) else { continue };
            let Some(m) = m.as_object() else {
                w.err(
                    &format!("metadata.{field}"),
                    format!("must be a map of string to string, got {}", type_name(m)),
                );
                continue;
            };
            let mut total = 0usize;
            for (k, val) in m {
                let p = format!("metadata.{field}[{k}]");
                if let Some(why) = qualified_name(k) {
                    w.err(&p, format!("invalid key {k:?}: {why}"));
                }
                match val {
                    Json::String(s) => {
                        total += k.len() + s.len();
                        if field == "labels"
                            && let Some(why) = label_value(s)
                        {
                            w.err(&p, format!("invalid label value {s:?}: {why}"));
                        }
                    }
                    other => w.err(
                        &p,
                        format!("must be a string, got {} (quote it in YAML)", short(other)),
                    ),
                }
            }
            if field == "annotations" && total > 256 * 1024 {
                w.err(
                    "metadata.annotations",
                    format!("total size {total} exceeds 262144 bytes"),
                );
            }
        }
    }
}

fn finish(report: &mut Report, prefix: &str, w: Walk<'_>) {
    report.cel_evaluations += w.cel_evaluations;
    for e in w.errors {
        report.errors.push(format!("{prefix}: {e}"));
    }
    for n in w.not_evaluated {
        if !report.not_evaluated.contains(&n) {
            report.not_evaluated.push(n);
        }
    }
}

const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

// ---------------------------------------------------------------------------------------------
// Schema walk
// ---------------------------------------------------------------------------------------------

struct Walk<'a> {
    v: &'a Validator,
    errors: Vec<String>,
    not_evaluated: Vec<String>,
    cel_evaluations: usize,
    resource: String,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl Walk<'_> {
    fn err(&mut self, path: &str, msg: impl AsRef<str>) {
        let path = if path.is_empty() { "<root>" } else { path };
        self.errors.push(format!("{path}: {}", msg.as_ref()));
    }

    /// The OpenAPI value keywords, checked by `jsonschema` against the schema's
    /// JSON Schema form, each error told at its data path.
    fn structural(&mut self, cv: &CrdVersion, value: &Json) {
        for error in cv.structural.iter_errors(value) {
            let pointer = error.instance_path().to_string();
            let path = data_path(&cv.schema, value, &pointer);
            let at = value.pointer(&pointer).unwrap_or(&Json::Null);
            let node = keyword_node(&cv.schema, &error.schema_path().to_string());
            for (p, message) in explain(&error, node, at, &path) {
                self.err(&p, message);
            }
        }
    }

    /// What only Kubernetes checks, walking the schema and the value together: list
    /// types, integer formats and the `x-kubernetes-validations` (CEL) below the root.
    /// A value of the wrong type was reported by [`Walk::structural`] and is not
    /// walked further.
    fn extensions(&mut self, schema: &Json, value: &Json, path: &str, spath: &str) {
        let Some(s) = schema.as_object() else { return };
        if !has_schema_type(s, value) {
            return;
        }
        match value {
            Json::Number(_) => self.integer_format(s, value, path),
            Json::Array(items) => {
                self.list_type_checks(s, items, path);
                if let Some(item_schema) = s.get("items") {
                    for (i, it) in items.iter().enumerate() {
                        let (p, sp) = (format!("{path}[{i}]"), format!("{spath}[*]"));
                        self.extensions(item_schema, it, &p, &sp);
                    }
                }
            }
            Json::Object(map) => {
                let props = s.get("properties").and_then(Json::as_object);
                for (k, v) in map {
                    if let Some(ps) = props.and_then(|p| p.get(k)) {
                        self.extensions(ps, v, &join(path, k), &join(spath, k));
                    } else if let Some(a @ Json::Object(_)) = s.get("additionalProperties") {
                        let (p, sp) = (format!("{path}[{k}]"), format!("{spath}{{*}}"));
                        self.extensions(a, v, &p, &sp);
                    }
                }
            }
            _ => {}
        }
        // Root-level rules are evaluated by the caller, with the whole object as `self`.
        if !path.is_empty() && s.contains_key("x-kubernetes-validations") {
            self.cel(schema, value, path, spath);
        }
    }

    /// Kubernetes' integer formats (JSON Schema formats only apply to strings).
    fn integer_format(&mut self, s: &JsonMap<String, Json>, value: &Json, path: &str) {
        match s.get("format").and_then(Json::as_str) {
            Some("int32") if value.as_i64().is_none_or(|i| i32::try_from(i).is_err()) => {
                self.err(path, format!("{value} does not fit format int32"))
            }
            Some("int64") if value.as_i64().is_none() => {
                self.err(path, format!("{value} does not fit format int64"))
            }
            _ => {}
        }
    }

    fn list_type_checks(&mut self, s: &JsonMap<String, Json>, items: &[Json], path: &str) {
        match s.get("x-kubernetes-list-type").and_then(Json::as_str) {
            Some("map") => {
                let keys: Vec<&str> = s
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Json::as_array)
                    .map(|a| a.iter().filter_map(Json::as_str).collect())
                    .unwrap_or_default();
                let mut seen: HashMap<String, usize> = HashMap::new();
                for (i, it) in items.iter().enumerate() {
                    let tuple: Vec<String> = keys
                        .iter()
                        .map(|k| {
                            it.get(*k)
                                .map(|v| v.to_string())
                                .unwrap_or_else(|| "null".into())
                        })
                        .collect();
                    let t = tuple.join(",");
                    if let Some(j) = seen.insert(t.clone(), i) {
                        self.err(&format!("{path}[{i}]"), format!("duplicate entry for list-map key(s) {keys:?} = [{t}] (also at index {j})"));
                    }
                }
            }
            Some("set") => {
                for (i, it) in items.iter().enumerate() {
                    if let Some(j) = items[..i].iter().position(|o| o == it) {
                        self.err(
                            &format!("{path}[{i}]"),
                            format!("duplicate value {} in a set (also at index {j})", short(it)),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    /// Evaluates the `x-kubernetes-validations` of `schema` with `self` = `value`.
    fn cel(&mut self, schema: &Json, value: &Json, path: &str, spath: &str) {
        let Some(Json::Array(rules)) = schema.get("x-kubernetes-validations") else {
            return;
        };
        let self_value = to_cel(value);
        for r in rules {
            let Some(rule) = r.get("rule").and_then(Json::as_str) else {
                continue;
            };
            let spath_shown = if spath.is_empty() { "<root>" } else { spath };
            if rule.contains("oldSelf")
                && r.get("optionalOldSelf").and_then(Json::as_bool) != Some(true)
            {
                // A transition rule: the API server only runs it on update.
                continue;
            }
            let program = match self.v.programs.get(rule) {
                Some(Compiled::Ok(p)) => p,
                Some(Compiled::Unsupported(why)) => {
                    self.not_evaluated
                        .push(format!("{} {spath_shown}: {rule:?}: {why}", self.resource));
                    continue;
                }
                None => {
                    self.not_evaluated.push(format!(
                        "{} {spath_shown}: {rule:?}: not precompiled",
                        self.resource
                    ));
                    continue;
                }
            };
            let mut ctx = cel::Context::with_env(self.v.env.clone());
            register_k8s_functions(&mut ctx);
            ctx.add_variable_from_value("self", self_value.clone());
            let message = r
                .get("message")
                .and_then(Json::as_str)
                .unwrap_or("failed rule");
            let at = match r.get("fieldPath").and_then(Json::as_str) {
                Some(fp) => format!("{path}{fp}"),
                None => path.to_owned(),
            };
            match program.execute(&ctx) {
                Ok(cel::Value::Bool(true)) => self.cel_evaluations += 1,
                Ok(cel::Value::Bool(false)) => {
                    self.cel_evaluations += 1;
                    let reason = r
                        .get("reason")
                        .and_then(Json::as_str)
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default();
                    self.err(
                        &at,
                        format!("{message}{reason} [CEL rule {rule:?} at {spath_shown} is false]"),
                    );
                }
                Ok(other) => self.err(
                    &at,
                    format!("CEL rule {rule:?} returned {other:?}, not a bool"),
                ),
                Err(e) if is_library_gap(&e) => {
                    self.not_evaluated.push(format!(
                        "{} {spath_shown}: {rule:?}: evaluation error in the CEL library: {e}",
                        self.resource
                    ));
                }
                Err(e) => {
                    self.cel_evaluations += 1;
                    self.err(
                        &at,
                        format!(
                            "{message} [CEL rule {rule:?} at {spath_shown} failed to evaluate: {e}]"
                        ),
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Structural schema as JSON Schema
// ---------------------------------------------------------------------------------------------

/// The JSON Schema (draft 2020-12) that checks what a structural OpenAPI v3 schema's
/// value keywords say, with the Kubernetes meanings: an object rejects fields its
/// schema does not declare unless `x-kubernetes-preserve-unknown-fields` or
/// `additionalProperties` allows them (not inside `oneOf`/`anyOf`/`allOf`/`not`,
/// which only constrain values); `nullable` admits `null`; an
/// `x-kubernetes-int-or-string` is an integer or a string; OpenAPI 3.0's boolean
/// `exclusiveMinimum`/`exclusiveMaximum` qualify `minimum`/`maximum`. Formats other
/// than `date-time` and `byte` are left to [`Walk::integer_format`] or unchecked,
/// as the API server leaves them. Patterns use the `regex` crate (RE2 syntax, like
/// Go's regexp).
fn structural_validator(schema: &Json) -> Result<jsonschema::Validator, String> {
    let converted = to_json_schema(schema, false);
    jsonschema::options()
        .should_validate_formats(true)
        .with_format("byte", is_base64)
        .with_format("date-time", is_rfc3339)
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(&converted)
        .map_err(|e| e.to_string())
}

fn to_json_schema(node: &Json, in_logic: bool) -> Json {
    let Some(s) = node.as_object() else {
        return node.clone();
    };
    let flag = |key: &str| s.get(key).and_then(Json::as_bool) == Some(true);
    let (int_or_string, nullable) = (flag("x-kubernetes-int-or-string"), flag("nullable"));
    let preserve = flag("x-kubernetes-preserve-unknown-fields");
    let mut out = JsonMap::new();
    for (key, value) in s {
        let converted = match key.as_str() {
            "type" if int_or_string => continue,
            "type" if nullable => json!([value, "null"]),
            "properties" => Json::Object(
                value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), to_json_schema(v, in_logic)))
                    .collect(),
            ),
            "items" | "additionalProperties" => to_json_schema(value, in_logic),
            "anyOf" if int_or_string => continue,
            "oneOf" | "anyOf" | "allOf" => Json::Array(
                value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| to_json_schema(v, true))
                    .collect(),
            ),
            "not" => to_json_schema(value, true),
            "minimum" | "maximum" => {
                let exclusive = format!("exclusive{}", &capitalized(key));
                if flag(&exclusive) {
                    out.insert(exclusive, value.clone());
                    continue;
                }
                value.clone()
            }
            "format" if matches!(value.as_str(), Some("date-time" | "byte")) => value.clone(),
            "type" | "enum" | "required" | "pattern" | "minLength" | "maxLength" | "minItems"
            | "maxItems" | "minProperties" | "maxProperties" | "multipleOf" => value.clone(),
            _ => continue,
        };
        out.insert(key.clone(), converted);
    }
    if int_or_string {
        let types = if nullable {
            json!(["integer", "string", "null"])
        } else {
            json!(["integer", "string"])
        };
        out.insert("type".to_owned(), types);
    }
    if !in_logic && !preserve && !out.contains_key("additionalProperties") {
        out.insert("additionalProperties".to_owned(), Json::Bool(false));
    }
    Json::Object(out)
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Whether `value` has the type `s` declares (any, when it declares none).
fn has_schema_type(s: &JsonMap<String, Json>, value: &Json) -> bool {
    if s.get("x-kubernetes-int-or-string").and_then(Json::as_bool) == Some(true) {
        return is_integer(value) || value.is_string();
    }
    match s.get("type").and_then(Json::as_str) {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => is_integer(value),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    }
}

/// A JSON pointer into `value` written as the API server writes data paths:
/// `spec.servers[0].port`, `[key]` for the keys of a map (`additionalProperties`).
fn data_path(schema: &Json, value: &Json, pointer: &str) -> String {
    let mut path = String::new();
    let (mut node, mut at) = (Some(schema), Some(value));
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        let declared = node
            .and_then(|n| n.get("properties"))
            .and_then(|p| p.get(&token));
        if let Some(declared) = declared {
            path = join(&path, &token);
            node = Some(declared);
        } else if at.is_some_and(Json::is_array) {
            path.push_str(&format!("[{token}]"));
            node = node.and_then(|n| n.get("items"));
        } else {
            path.push_str(&format!("[{token}]"));
            node = node.and_then(|n| n.get("additionalProperties"));
        }
        at = at.and_then(|a| match a {
            Json::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
            other => other.get(&token),
        });
    }
    path
}

/// The node of the original schema that holds the keyword at `keyword_path` (a JSON
/// pointer into the converted schema, whose nodes sit where the original's do).
fn keyword_node<'s>(schema: &'s Json, keyword_path: &str) -> Option<&'s JsonMap<String, Json>> {
    let tokens: Vec<String> = keyword_path
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let parent = tokens.len().saturating_sub(1);
    let mut node = schema;
    for token in tokens.iter().take(parent) {
        node = match node {
            Json::Array(items) => items.get(token.parse::<usize>().ok()?)?,
            other => other.get(token)?,
        };
    }
    node.as_object()
}

/// The errors one `jsonschema` error stands for, as (data path, message).
fn explain(
    error: &jsonschema::ValidationError<'_>,
    node: Option<&JsonMap<String, Json>>,
    value: &Json,
    path: &str,
) -> Vec<(String, String)> {
    use jsonschema::error::ValidationErrorKind as Kind;
    let keyword = |k: &str| node.and_then(|n| n.get(k));
    let number = |k: &str| keyword(k).map(Json::to_string).unwrap_or_default();
    let message = match error.kind() {
        Kind::Type { .. } if value.is_null() => {
            let ty = keyword("type").and_then(Json::as_str).unwrap_or("a value");
            format!("null is not allowed here (expected {ty})")
        }
        Kind::Type { .. }
            if node.is_some_and(|n| n.get("x-kubernetes-int-or-string").is_some()) =>
        {
            format!("must be an integer or a string, got {}", short(value))
        }
        Kind::Type { .. } => {
            let ty = keyword("type").and_then(Json::as_str).unwrap_or("?");
            format!("must be of type {ty}, got {}", short(value))
        }
        Kind::Enum { options } => {
            let list: Vec<String> = options
                .as_array()
                .into_iter()
                .flatten()
                .map(Json::to_string)
                .collect();
            format!(
                "unsupported value {}: must be one of [{}]",
                short(value),
                list.join(", ")
            )
        }
        Kind::Required { property } => {
            let field = property.as_str().unwrap_or("?");
            return vec![(join(path, field), "required field missing".to_owned())];
        }
        // `additionalProperties: false` beside no `properties` reports the object,
        // not its fields: every field of it is unknown.
        Kind::AdditionalProperties { .. } | Kind::FalseSchema => {
            let unexpected: Vec<&String> = match error.kind() {
                Kind::AdditionalProperties { unexpected } => unexpected.iter().collect(),
                _ => value
                    .as_object()
                    .map(|o| o.keys().collect())
                    .unwrap_or_default(),
            };
            let known: Vec<&str> = keyword("properties")
                .and_then(Json::as_object)
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let message = if known.is_empty() {
                "unknown field (this object accepts no fields)".to_owned()
            } else {
                format!("unknown field (known: {})", known.join(", "))
            };
            return unexpected
                .into_iter()
                .map(|k| (join(path, k), message.clone()))
                .collect();
        }
        Kind::MaxLength { limit } => format!(
            "too long: {} characters > maxLength {limit}",
            value.as_str().map_or(0, |s| s.chars().count())
        ),
        Kind::MinLength { limit } => format!(
            "too short: {} characters < minLength {limit} (value {value})",
            value.as_str().map_or(0, |s| s.chars().count())
        ),
        Kind::Pattern { pattern } => format!("{value} does not match pattern {pattern:?}"),
        Kind::Format { format } if format == "date-time" => {
            format!("{value} is not an RFC 3339 date-time")
        }
        Kind::Format { .. } => format!("{value} is not valid base64 (format byte)"),
        Kind::MaxItems { limit } => format!(
            "too many items: {} > maxItems {limit}",
            value.as_array().map_or(0, Vec::len)
        ),
        Kind::MinItems { limit } => format!(
            "too few items: {} < minItems {limit}",
            value.as_array().map_or(0, Vec::len)
        ),
        Kind::MaxProperties { limit } => format!(
            "too many properties: {} > maxProperties {limit}",
            value.as_object().map_or(0, JsonMap::len)
        ),
        Kind::MinProperties { limit } => format!(
            "too few properties: {} < minProperties {limit}",
            value.as_object().map_or(0, JsonMap::len)
        ),
        Kind::Minimum { .. } => format!("{value} must be >= {}", number("minimum")),
        Kind::ExclusiveMinimum { .. } => format!("{value} must be > {}", number("minimum")),
        Kind::Maximum { .. } => format!("{value} must be <= {}", number("maximum")),
        Kind::ExclusiveMaximum { .. } => format!("{value} must be < {}", number("maximum")),
        Kind::MultipleOf { .. } => {
            format!("{value} must be a multiple of {}", number("multipleOf"))
        }
        Kind::OneOfMultipleValid { .. } | Kind::OneOfNotValid { .. } => {
            let alts = keyword("oneOf").and_then(Json::as_array);
            match alts.and_then(|a| at_most_one_of(a)) {
                Some(fields) => {
                    let present: Vec<&String> = fields
                        .iter()
                        .filter(|f| value.get(f.as_str()).is_some())
                        .collect();
                    format!("at most one of {fields:?} may be set, found {present:?}")
                }
                None => format!("must match exactly one oneOf alternative: {error}"),
            }
        }
        Kind::AnyOf { .. } => format!(
            "must match at least one anyOf alternative: {}",
            keyword("anyOf").cloned().unwrap_or_default()
        ),
        Kind::Not { schema } => format!("must not match schema {schema}"),
        _ => error.to_string(),
    };
    vec![(path.to_owned(), message)]
}

fn is_library_gap(e: &cel::ExecutionError) -> bool {
    matches!(
        e,
        cel::ExecutionError::NoSuchOverload(_)
            | cel::ExecutionError::UndeclaredReference(_)
            | cel::ExecutionError::NotSupportedAsMethod { .. }
            | cel::ExecutionError::UnsupportedTargetType { .. }
    )
}

/// Recognises Istio's `oneOf: [{not: {anyOf: [{required: [a]}, ...]}}, {required: [a]}, ...]`.
fn at_most_one_of(alts: &[Json]) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut saw_not = false;
    for a in alts {
        let o = a.as_object()?;
        if let Some(n) = o.get("not") {
            saw_not = true;
            for x in n.get("anyOf")?.as_array()? {
                let _ = x.get("required")?;
            }
        } else {
            let req = o.get("required")?.as_array()?;
            if o.len() != 1 || req.len() != 1 {
                return None;
            }
            fields.push(req[0].as_str()?.to_owned());
        }
    }
    saw_not.then_some(fields)
}

/// Every CEL rule of a schema: (schema path, rule).
fn collect_rules(schema: &Json, spath: &str, out: &mut Vec<(String, String)>) {
    let Some(s) = schema.as_object() else { return };
    if let Some(Json::Array(rules)) = s.get("x-kubernetes-validations") {
        for r in rules {
            if let Some(rule) = r.get("rule").and_then(Json::as_str) {
                let shown = if spath.is_empty() { "<root>" } else { spath };
                out.push((shown.to_owned(), rule.to_owned()));
            }
        }
    }
    if let Some(Json::Object(props)) = s.get("properties") {
        for (k, v) in props {
            collect_rules(v, &join(spath, k), out);
        }
    }
    if let Some(items) = s.get("items") {
        collect_rules(items, &format!("{spath}[*]"), out);
    }
    if let Some(a @ Json::Object(_)) = s.get("additionalProperties") {
        collect_rules(a, &format!("{spath}{{*}}"), out);
    }
    for k in ["oneOf", "anyOf", "allOf"] {
        if let Some(Json::Array(alts)) = s.get(k) {
            for a in alts {
                collect_rules(a, spath, out);
            }
        }
    }
    if let Some(n) = s.get("not") {
        collect_rules(n, spath, out);
    }
}

// ---------------------------------------------------------------------------------------------
// CEL
// ---------------------------------------------------------------------------------------------

/// Functions provided by [`register_k8s_functions`] (Kubernetes CEL library extensions).
const K8S_FUNCTIONS: &[&str] = &[
    "isURL",
    "url",
    "getScheme",
    "getHost",
    "getHostname",
    "getPort",
    "getEscapedPath",
    "getQuery",
    "isIP",
    "isCIDR",
];

fn cel_env() -> cel::Env {
    let mut env = cel::Env::stdlib();
    env.add_extension(cel::extensions::strings)
        .expect("cel strings extension");
    env.add_extension(cel::extensions::lists)
        .expect("cel lists extension");
    env.add_extension(cel::extensions::math)
        .expect("cel math extension");
    env
}

fn compile_rule(env: &Arc<cel::Env>, rule: &str) -> Compiled {
    let program = match env.compile(rule) {
        Ok(p) => p,
        Err(e) => return Compiled::Unsupported(format!("parse error: {e}")),
    };
    // Every function the rule calls must be declared by the environment or provided here.
    let probe_env = env.clone();
    let missing: Vec<String> = program
        .references()
        .functions()
        .into_iter()
        .filter(|f| {
            let operator =
                f.starts_with('_') || f.starts_with('@') || f.starts_with('!') || *f == "-_";
            if operator || K8S_FUNCTIONS.contains(f) {
                return false;
            }
            // `add_function` refuses a name the environment already declares.
            let mut probe = cel::Context::with_env(probe_env.clone());
            probe.add_function(f, |a: i64| a).is_ok()
        })
        .map(str::to_owned)
        .collect();
    if missing.is_empty() {
        Compiled::Ok(program)
    } else {
        Compiled::Unsupported(format!(
            "function(s) not available in the cel crate: {}",
            missing.join(", ")
        ))
    }
}

fn to_cel(v: &Json) -> cel::Value {
    match v {
        Json::Null => cel::Value::Null,
        Json::Bool(b) => cel::Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                cel::Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                cel::Value::UInt(u)
            } else {
                cel::Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => cel::Value::String(Arc::new(s.clone())),
        Json::Array(a) => cel::Value::List(Arc::new(a.iter().map(to_cel).collect())),
        Json::Object(m) => {
            let map: HashMap<cel::objects::Key, cel::Value> = m
                .iter()
                .map(|(k, v)| (cel::objects::Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            cel::Value::Map(cel::objects::Map { map: Arc::new(map) })
        }
    }
}

const URL_MARKER: &str = "@k8s.io/url";

fn url_part(u: &cel::Value, part: &str) -> Result<cel::Value, cel::ExecutionError> {
    if let cel::Value::Map(m) = u
        && m.map
            .contains_key(&cel::objects::Key::String(Arc::new(URL_MARKER.to_owned())))
        && let Some(v) = m
            .map
            .get(&cel::objects::Key::String(Arc::new(part.to_owned())))
    {
        return Ok(v.clone());
    }
    Err(cel::ExecutionError::function_error(
        part,
        "receiver is not a URL (use url(string))",
    ))
}

/// The Kubernetes CEL library functions the Istio rules use (k8s.io/apiserver/pkg/cel/library):
/// `isURL(string)`, `url(string)` and its getters, plus `isIP(string)` and `isCIDR(string)`.
fn register_k8s_functions(ctx: &mut cel::Context<'_, '_>) {
    use cel::extractors::This;
    let _ = ctx.add_function("isURL", |s: Arc<String>| parse_request_uri(&s).is_ok());
    let _ = ctx.add_function(
        "url",
        |s: Arc<String>| -> Result<cel::Value, cel::ExecutionError> {
            let u = parse_request_uri(&s).map_err(|e| {
                cel::ExecutionError::function_error(
                    "url",
                    format!("URL parse error during conversion from string: {e}"),
                )
            })?;
            let mut m: HashMap<cel::objects::Key, cel::Value> = HashMap::new();
            let mut put = |k: &str, v: String| {
                m.insert(
                    cel::objects::Key::String(Arc::new(k.to_owned())),
                    cel::Value::String(Arc::new(v)),
                );
            };
            put(URL_MARKER, String::new());
            put("getScheme", u.scheme.clone());
            put("getHost", u.host.clone());
            put("getHostname", u.hostname());
            put("getPort", u.port());
            put("getEscapedPath", u.path.clone());
            put("getQuery", u.raw_query.clone());
            Ok(cel::Value::Map(cel::objects::Map { map: Arc::new(m) }))
        },
    );
    let _ = ctx.add_function("getScheme", |This(u): This<cel::Value>| {
        url_part(&u, "getScheme")
    });
    let _ = ctx.add_function("getHost", |This(u): This<cel::Value>| {
        url_part(&u, "getHost")
    });
    let _ = ctx.add_function("getHostname", |This(u): This<cel::Value>| {
        url_part(&u, "getHostname")
    });
    let _ = ctx.add_function("getPort", |This(u): This<cel::Value>| {
        url_part(&u, "getPort")
    });
    let _ = ctx.add_function("getEscapedPath", |This(u): This<cel::Value>| {
        url_part(&u, "getEscapedPath")
    });
    let _ = ctx.add_function("getQuery", |This(u): This<cel::Value>| {
        url_part(&u, "getQuery")
    });
    let _ = ctx.add_function("isIP", |s: Arc<String>| {
        s.parse::<std::net::IpAddr>().is_ok() && !s.contains('%')
    });
    let _ = ctx.add_function("isCIDR", |s: Arc<String>| is_cidr(&s));
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    !bits.is_empty()
        && bits.len() <= 3
        && bits.bytes().all(|b| b.is_ascii_digit())
        && bits.parse::<u32>().is_ok_and(|b| b <= max)
}

/// Go's `url.ParseRequestURI`, which Kubernetes' `isURL`/`url` use. Returns the parts the
/// getters need.
struct ParsedUrl {
    scheme: String,
    host: String,
    path: String,
    raw_query: String,
}

impl ParsedUrl {
    fn hostname(&self) -> String {
        let h = &self.host;
        if let Some(rest) = h.strip_prefix('[') {
            return rest.split(']').next().unwrap_or("").to_owned();
        }
        h.rsplit_once(':')
            .map(|(a, _)| a.to_owned())
            .unwrap_or_else(|| h.clone())
    }
    fn port(&self) -> String {
        let h = &self.host;
        let after = match h.rfind(']') {
            Some(i) => &h[i + 1..],
            None => h.as_str(),
        };
        after
            .rsplit_once(':')
            .map(|(_, p)| p.to_owned())
            .unwrap_or_default()
    }
}

/// Kubernetes' CEL `isURL(s)`: whether Go's `url.ParseRequestURI` accepts `s`; the scheme
/// (lowercased) when it does.
pub fn k8s_url_scheme(s: &str) -> Result<String, String> {
    parse_request_uri(s).map(|u| u.scheme)
}

fn parse_request_uri(raw: &str) -> Result<ParsedUrl, String> {
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("invalid control character in URL".into());
    }
    if raw.is_empty() {
        return Err("empty url".into());
    }
    if raw == "*" {
        return Ok(ParsedUrl {
            scheme: String::new(),
            host: String::new(),
            path: "*".into(),
            raw_query: String::new(),
        });
    }
    // getScheme
    let mut scheme = String::new();
    let mut rest = raw;
    for (i, c) in raw.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i == 0 => break,
            '0'..='9' | '+' | '-' | '.' => {}
            ':' => {
                if i == 0 {
                    return Err("missing protocol scheme".into());
                }
                scheme = raw[..i].to_ascii_lowercase();
                rest = &raw[i + 1..];
                break;
            }
            _ => break,
        }
    }
    let (mut rest, raw_query) = if rest.ends_with('?') && rest.matches('?').count() == 1 {
        (&rest[..rest.len() - 1], String::new())
    } else {
        match rest.split_once('?') {
            Some((a, q)) => (a, q.to_owned()),
            None => (rest, String::new()),
        }
    };
    if !rest.starts_with('/') {
        if !scheme.is_empty() {
            // Opaque URL such as mailto:x.
            return Ok(ParsedUrl {
                scheme,
                host: String::new(),
                path: String::new(),
                raw_query,
            });
        }
        return Err("invalid URI for request".into());
    }
    let mut host = String::new();
    if !scheme.is_empty() && rest.starts_with("//") {
        let after = &rest[2..];
        let (authority, r) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        rest = r;
        let hostpart = match authority.rfind('@') {
            Some(i) => {
                let user = &authority[..i];
                if !user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c))
                {
                    return Err("net/url: invalid userinfo".into());
                }
                &authority[i + 1..]
            }
            None => authority,
        };
        host = parse_host(hostpart)?;
    }
    unescape(rest, false)?;
    Ok(ParsedUrl {
        scheme,
        host,
        path: rest.to_owned(),
        raw_query,
    })
}

fn parse_host(host: &str) -> Result<String, String> {
    let valid_port = |p: &str| {
        p.is_empty() || (p.starts_with(':') && p[1..].bytes().all(|b| b.is_ascii_digit()))
    };
    if host.starts_with('[') {
        let Some(i) = host.rfind(']') else {
            return Err("missing ']' in host".into());
        };
        if !valid_port(&host[i + 1..]) {
            return Err(format!("invalid port {:?} after host", &host[i + 1..]));
        }
    } else if let Some(i) = host.rfind(':')
        && !valid_port(&host[i..])
    {
        return Err(format!("invalid port {:?} after host", &host[i..]));
    }
    unescape(host, true)?;
    Ok(host.to_owned())
}

fn unescape(s: &str, host_mode: bool) -> Result<(), String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if i + 2 >= b.len() {
                return Err(format!("invalid URL escape {:?}", &s[i..]));
            }
            if !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return Err(format!(
                    "invalid URL escape {:?}",
                    &s[i..(i + 3).min(s.len())]
                ));
            }
            if host_mode && &s[i..i + 3] != "%25" && b[i + 1] < b'8' {
                return Err(format!("invalid URL escape {:?} in host", &s[i..i + 3]));
            }
            i += 3;
            continue;
        }
        if host_mode
            && c < 0x80
            && !(c.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:[]<>\"".contains(&c))
        {
            return Err(format!("invalid character {:?} in host name", c as char));
        }
        i += 1;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// YAML
// ---------------------------------------------------------------------------------------------

/// Parses a YAML stream into JSON documents (`None` for an empty document). Mapping keys must be
/// strings, as the API server's JSON requires.
pub fn parse_yaml_stream(text: &str) -> Result<Vec<Option<Json>>, String> {
    let mut out = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        let y = serde_norway::Value::deserialize(de).map_err(|e| format!("document {i}: {e}"))?;
        if y.is_null() {
            out.push(None);
            continue;
        }
        out.push(Some(
            yaml_to_json(&y, "").map_err(|e| format!("document {i}: {e}"))?,
        ));
    }
    Ok(out)
}

/// Plain (unquoted) scalars that YAML 1.2 (serde_norway) reads as strings but kubectl's YAML
/// 1.1 parser (sigs.k8s.io/yaml, a go-yaml v2 fork) reads as booleans: `y`, `n`, `yes`, `no`,
/// `on`, `off` in any of their cases. A region named `no` (Norway) or a flag `on` would reach
/// the API server as `true`/`false`. Line-based: block scalars (`|`, `>`) are skipped.
pub fn yaml11_hazards(text: &str) -> Vec<String> {
    const WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
        "OFF",
    ];
    let mut out = Vec::new();
    let mut doc: usize = 0;
    let mut seen_content = false;
    let mut block_indent: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if let Some(bi) = block_indent {
            if trimmed.is_empty() || indent > bi {
                continue;
            }
            block_indent = None;
        }
        if line.starts_with("---") {
            if seen_content {
                doc += 1;
            }
            seen_content = true;
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        seen_content = true;
        // Strip a trailing comment (only " #", as YAML requires whitespace before it).
        let body = match trimmed.find(" #") {
            Some(i) => trimmed[..i].trim_end(),
            None => trimmed,
        };
        if re(r"[:-]\s*[|>][-+0-9]*$").is_match(body) || body == "|" || body == ">" {
            block_indent = Some(indent);
            continue;
        }
        // Strip sequence markers, then split `key: value`.
        let mut rest = body;
        while let Some(r) = rest.strip_prefix("- ") {
            rest = r.trim_start();
        }
        if rest == "-" {
            continue;
        }
        let (key, value) = match rest.find(": ") {
            Some(i) => (Some(&rest[..i]), rest[i + 2..].trim()),
            None => match rest.strip_suffix(':') {
                Some(k) => (Some(k), ""),
                None => (None, rest),
            },
        };
        if let Some(k) = key
            && WORDS.contains(&k.trim())
        {
            out.push(format!(
                "doc#{doc} line {}: unquoted key `{}` is a boolean for kubectl (YAML 1.1); quote it",
                n + 1,
                k.trim()
            ));
        }
        if WORDS.contains(&value) {
            out.push(format!(
                "doc#{doc} line {}: unquoted value `{value}` is a boolean for kubectl (YAML 1.1), a string here; quote it",
                n + 1
            ));
        }
    }
    out
}

fn yaml_to_json(y: &serde_norway::Value, path: &str) -> Result<Json, String> {
    use serde_norway::Value as Y;
    Ok(match y {
        Y::Null => Json::Null,
        Y::Bool(b) => Json::Bool(*b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Json::Number)
                    .ok_or_else(|| format!("{path}: {f} is not representable in JSON"))?
            }
        }
        Y::String(s) => Json::String(s.clone()),
        Y::Sequence(seq) => Json::Array(
            seq.iter()
                .enumerate()
                .map(|(i, v)| yaml_to_json(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut o = JsonMap::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s.clone(),
                    other => {
                        return Err(format!(
                            "{}: mapping key {other:?} is not a string (quote it; the API server's JSON only has string keys)",
                            if path.is_empty() { "<root>" } else { path }
                        ));
                    }
                };
                let child = yaml_to_json(v, &join(path, &key))?;
                if o.insert(key.clone(), child).is_some() {
                    return Err(format!("{}: duplicate key", join(path, &key)));
                }
            }
            Json::Object(o)
        }
        Y::Tagged(t) => {
            return Err(format!(
                "{path}: YAML tag {} is not supported by Kubernetes",
                t.tag
            ));
        }
    })
}

fn collect_yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let rd = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read directory {}: {e}", dir.display()));
    for entry in rd {
        let path = entry
            .unwrap_or_else(|e| panic!("cannot read an entry of {}: {e}", dir.display()))
            .path();
        if path.is_dir() {
            collect_yaml_files(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

fn is_integer(v: &Json) -> bool {
    v.is_i64() || v.is_u64()
}

fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(n) if n.is_f64() => "number",
        Json::Number(_) => "integer",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// A value for a message: scalars in full, containers by type.
fn short(v: &Json) -> String {
    match v {
        Json::Array(a) => format!("array of {} item(s)", a.len()),
        Json::Object(_) => "object".to_owned(),
        Json::String(s) if s.chars().count() > 80 => {
            format!("string {:?}…", s.chars().take(80).collect::<String>())
        }
        Json::String(s) => format!("string {s:?}"),
        other => format!("{} {other}", type_name(other)),
    }
}

fn re(p: &str) -> &'static regex::Regex {
    static CACHE: OnceLock<std::sync::Mutex<HashMap<String, &'static regex::Regex>>> =
        OnceLock::new();
    let mut m = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    m.entry(p.to_owned())
        .or_insert_with(|| Box::leak(Box::new(regex::Regex::new(p).expect("built-in regex"))))
}

/// A name checked against a length limit and a pattern, in Kubernetes' words.
fn kubernetes_name(s: &str, max: usize, pattern: &str, rule: &str) -> Option<String> {
    if s.len() > max {
        return Some(format!(
            "must be no more than {max} characters (has {})",
            s.len()
        ));
    }
    (!re(pattern).is_match(s)).then(|| format!("must be a {rule}"))
}

fn dns1123_label(s: &str) -> Option<String> {
    kubernetes_name(
        s,
        63,
        r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        "DNS-1123 label: lowercase alphanumerics or '-', starting and ending with an alphanumeric",
    )
}

fn dns1035_label(s: &str) -> Option<String> {
    kubernetes_name(
        s,
        63,
        r"^[a-z]([-a-z0-9]*[a-z0-9])?$",
        "DNS-1035 label: lowercase alphanumerics or '-', starting with a letter and ending with an alphanumeric",
    )
}

fn dns1123_subdomain(s: &str) -> Option<String> {
    kubernetes_name(
        s,
        253,
        r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        "DNS-1123 subdomain: lowercase alphanumerics, '-' or '.', starting and ending with an alphanumeric",
    )
}

fn qualified_name(s: &str) -> Option<String> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            return Some("prefix part must be non-empty".into());
        }
        if let Some(why) = dns1123_subdomain(p) {
            return Some(format!("prefix part {why}"));
        }
    }
    if name.is_empty() || name.len() > 63 {
        return Some("name part must be 1-63 characters".into());
    }
    (!re(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$").is_match(name))
        .then(|| "name part must consist of alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric".into())
}

fn label_value(s: &str) -> Option<String> {
    if s.len() > 63 {
        return Some(format!(
            "must be no more than 63 characters (has {})",
            s.len()
        ));
    }
    (!re(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$").is_match(s))
        .then(|| "must be empty or alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric".into())
}

fn is_rfc3339(s: &str) -> bool {
    re(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$").is_match(s)
}

fn is_base64(s: &str) -> bool {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    t.len().is_multiple_of(4) && re(r"^[A-Za-z0-9+/]*={0,2}$").is_match(&t)
}

// ---------------------------------------------------------------------------------------------
// Hand-written schemas for kinds the CRD file does not have
// ---------------------------------------------------------------------------------------------

fn string_map() -> Json {
    json!({"type": "object", "additionalProperties": {"type": "string"}})
}

fn strings() -> Json {
    json!({"type": "array", "items": {"type": "string"}})
}

fn free_object() -> Json {
    json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

fn free_list() -> Json {
    json!({"type": "array", "items": {"x-kubernetes-preserve-unknown-fields": true}})
}

/// `(apiVersion, kind, namespaced, schema)`. The root schema excludes apiVersion/kind/metadata.
fn builtin_schemas() -> Vec<(&'static str, &'static str, bool, Json)> {
    let namespace = json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"finalizers": strings()}},
            "status": free_object(),
        }
    });
    let config_map = json!({
        "type": "object",
        "properties": {
            "data": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "x-kubernetes-validations": [
                    {"rule": "self.all(k, k.size() <= 253 && k.matches('^[-._a-zA-Z0-9]+$'))",
                     "message": "ConfigMap keys must consist of alphanumerics, '-', '_' or '.' (at most 253 characters)"}
                ]
            },
            "binaryData": {
                "type": "object",
                "additionalProperties": {"type": "string", "format": "byte"},
                "x-kubernetes-validations": [
                    {"rule": "self.all(k, k.size() <= 253 && k.matches('^[-._a-zA-Z0-9]+$'))",
                     "message": "ConfigMap keys must consist of alphanumerics, '-', '_' or '.' (at most 253 characters)"}
                ]
            },
            "immutable": {"type": "boolean"},
        },
        "x-kubernetes-validations": [
            {"rule": "!has(self.data) || !has(self.binaryData) || self.data.all(k, !(k in self.binaryData))",
             "message": "a key may not be in both data and binaryData"}
        ]
    });
    let service_port = json!({
        "type": "object",
        "required": ["port"],
        "properties": {
            "name": {"type": "string", "maxLength": 63, "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
            "protocol": {"type": "string", "enum": ["TCP", "UDP", "SCTP"]},
            "appProtocol": {"type": "string"},
            "port": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 65535},
            "targetPort": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "nodePort": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 65535},
        }
    });
    let service = json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "ports": {"type": "array", "items": service_port,
                              "x-kubernetes-validations": [
                                  {"rule": "self.size() <= 1 || self.all(p, has(p.name))", "message": "when a Service has several ports, each must have a name"}
                              ]},
                    "selector": string_map(),
                    "type": {"type": "string", "enum": ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]},
                    "clusterIP": {"type": "string"},
                    "clusterIPs": strings(),
                    "externalIPs": strings(),
                    "externalName": {"type": "string"},
                    "sessionAffinity": {"type": "string", "enum": ["ClientIP", "None"]},
                    "sessionAffinityConfig": free_object(),
                    "loadBalancerIP": {"type": "string"},
                    "loadBalancerSourceRanges": strings(),
                    "loadBalancerClass": {"type": "string"},
                    "externalTrafficPolicy": {"type": "string", "enum": ["Cluster", "Local"]},
                    "internalTrafficPolicy": {"type": "string", "enum": ["Cluster", "Local"]},
                    "healthCheckNodePort": {"type": "integer", "format": "int32"},
                    "publishNotReadyAddresses": {"type": "boolean"},
                    "ipFamilies": {"type": "array", "items": {"type": "string", "enum": ["IPv4", "IPv6"]}},
                    "ipFamilyPolicy": {"type": "string", "enum": ["SingleStack", "PreferDualStack", "RequireDualStack"]},
                    "allocateLoadBalancerNodePorts": {"type": "boolean"},
                    "trafficDistribution": {"type": "string"},
                }
            },
            "status": free_object(),
        }
    });
    let kustomization = json!({
        "type": "object",
        "properties": {
            "resources": strings(),
            "components": strings(),
            "bases": strings(),
            "crds": strings(),
            "configurations": strings(),
            "transformers": strings(),
            "generators": strings(),
            "validators": strings(),
            "buildMetadata": strings(),
            "patchesStrategicMerge": strings(),
            "namespace": {"type": "string"},
            "namePrefix": {"type": "string"},
            "nameSuffix": {"type": "string"},
            "commonLabels": string_map(),
            "commonAnnotations": string_map(),
            "labels": {"type": "array", "items": {"type": "object", "properties": {
                "pairs": string_map(), "includeSelectors": {"type": "boolean"},
                "includeTemplates": {"type": "boolean"}, "fields": free_list()}}},
            "patches": {"type": "array", "items": {"type": "object", "properties": {
                "path": {"type": "string"}, "patch": {"type": "string"},
                "target": {"type": "object", "properties": {
                    "group": {"type": "string"}, "version": {"type": "string"}, "kind": {"type": "string"},
                    "name": {"type": "string"}, "namespace": {"type": "string"},
                    "labelSelector": {"type": "string"}, "annotationSelector": {"type": "string"}}},
                "options": {"type": "object", "properties": {
                    "allowNameChange": {"type": "boolean"}, "allowKindChange": {"type": "boolean"}}}}}},
            "patchesJson6902": free_list(),
            "images": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"}, "newName": {"type": "string"}, "newTag": {"type": "string"},
                "digest": {"type": "string"}, "tagSuffix": {"type": "string"}}}},
            "replicas": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"}, "count": {"type": "integer"}}}},
            "configMapGenerator": free_list(),
            "secretGenerator": free_list(),
            "generatorOptions": free_object(),
            "replacements": free_list(),
            "vars": free_list(),
            "openapi": free_object(),
            "sortOptions": free_object(),
            "helmCharts": free_list(),
            "helmGlobals": free_object(),
        }
    });
    let component = json!({
        "type": "object",
        "properties": {
            "enabled": {"type": "boolean"},
            "namespace": {"type": "string"},
            "hub": {"type": "string"},
            "tag": {"x-kubernetes-preserve-unknown-fields": true},
            "label": string_map(),
            "k8s": free_object(),
            "kubernetes": free_object(),
        }
    });
    let gateway = json!({
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "enabled": {"type": "boolean"},
            "namespace": {"type": "string"},
            "hub": {"type": "string"},
            "tag": {"x-kubernetes-preserve-unknown-fields": true},
            "label": string_map(),
            "k8s": free_object(),
        }
    });
    let istio_operator = json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "profile": {"type": "string"},
                    "installPackagePath": {"type": "string"},
                    "hub": {"type": "string"},
                    "tag": {"x-kubernetes-preserve-unknown-fields": true},
                    "namespace": {"type": "string"},
                    "revision": {"type": "string"},
                    "compatibilityVersion": {"type": "string"},
                    "meshConfig": free_object(),
                    "values": free_object(),
                    "unvalidatedValues": free_object(),
                    "components": {
                        "type": "object",
                        "properties": {
                            "base": component.clone(),
                            "pilot": component.clone(),
                            "cni": component.clone(),
                            "ztunnel": component.clone(),
                            "istiodRemote": component,
                            "ingressGateways": {"type": "array", "items": gateway.clone()},
                            "egressGateways": {"type": "array", "items": gateway},
                        }
                    },
                }
            },
            "status": free_object(),
        }
    });
    vec![
        ("v1", "Namespace", false, namespace),
        ("v1", "ConfigMap", true, config_map),
        ("v1", "Service", true, service),
        (
            "kustomize.config.k8s.io/v1beta1",
            "Kustomization",
            false,
            kustomization.clone(),
        ),
        (
            "kustomize.config.k8s.io/v1alpha1",
            "Component",
            false,
            kustomization,
        ),
        (
            "install.istio.io/v1alpha1",
            "IstioOperator",
            true,
            istio_operator,
        ),
    ]
}

/// Notes for the parts of built-in kinds whose schema is only hand-written or free-form.
fn partial_schema_notes(kind: &str, api_version: &str, doc: &Json) -> Vec<String> {
    let mut notes = Vec::new();
    match kind {
        "Kustomization" | "Component" => notes.push(format!(
            "{kind} {api_version}: hand-written schema of kustomize's fields; generator/patch/replacement entries not checked"
        )),
        "IstioOperator" => {
            let spec = &doc["spec"];
            let mut free = Vec::new();
            for k in ["values", "meshConfig", "unvalidatedValues"] {
                if spec.get(k).is_some() {
                    free.push(format!("spec.{k}"));
                }
            }
            if spec.pointer("/components").is_some() {
                free.push("spec.components.*.k8s".to_owned());
            }
            notes.push(format!(
                "IstioOperator {api_version}: hand-written schema of the upper levels; not checked: {}",
                if free.is_empty() { "-".to_owned() } else { free.join(", ") }
            ));
        }
        _ => {}
    }
    notes
}
