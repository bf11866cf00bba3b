//! Shape errors (unknown fields, wrong types, missing fields), all at once.
//!
//! serde stops at the first shape error, so when the plan does not deserialize, the
//! document is checked against the plan's own JSON Schema (generated from the same
//! types) to report every shape problem with its field path.

use std::sync::OnceLock;

use serde_json::Value;

use crate::finding::Finding;
use crate::plan::json_schema;
use crate::source::{FieldPath, Source};

/// Every shape problem of the document in `source`; empty when the schema finds none
/// (serde's own error, if any, is then reported).
pub(super) fn findings(source: &Source) -> Vec<Finding> {
    let Ok(document) =
        serde_saphyr::from_str_with_options::<Value>(source.text(), crate::plan::yaml_options())
    else {
        return Vec::new();
    };
    let Some((schema, validator)) = compiled_schema() else {
        return Vec::new();
    };
    let mut findings = Vec::new();
    for error in validator.iter_errors(&document) {
        explain(schema, &document, &error, &mut findings);
    }
    findings.sort_by(|a, b| a.path.cmp(&b.path).then_with(|| a.message.cmp(&b.message)));
    findings.dedup_by(|a, b| a.path == b.path && a.message == b.message);
    findings
}

/// The plan's schema and its compiled validator, built once per process (compiling it
/// costs more than checking a plan against it); `None` only if the schema the plan
/// types generate does not compile, which the schema tests rule out.
fn compiled_schema() -> Option<&'static (Value, jsonschema::Validator)> {
    static COMPILED: OnceLock<Option<(Value, jsonschema::Validator)>> = OnceLock::new();
    COMPILED
        .get_or_init(|| {
            let schema = serde_json::to_value(json_schema()).ok()?;
            let validator = jsonschema::validator_for(&schema).ok()?;
            Some((schema, validator))
        })
        .as_ref()
}

/// The findings that explain `error`. An `anyOf` (schemars' form of an optional
/// field) stands for the errors of its branches other than `null`, so the finding
/// names the bad value at its own path rather than dumping its parent.
fn explain(
    schema: &Value,
    document: &Value,
    error: &jsonschema::ValidationError<'_>,
    findings: &mut Vec<Finding>,
) {
    use jsonschema::error::ValidationErrorKind;
    let pointer = error.instance_path().to_string();
    let path = field_path(document, &pointer);
    match error.kind() {
        ValidationErrorKind::AnyOf { context } => {
            let branches: Vec<_> = context
                .iter()
                .filter(|branch| !branch.iter().all(is_null_branch))
                .collect();
            if branches.is_empty() {
                findings.push(Finding::error(
                    path,
                    format!("the plan does not parse: {error}"),
                    "the plan's shape is described in docs/plan.md and generator/plan.schema.json",
                ));
            }
            for inner in branches.into_iter().flatten() {
                explain(schema, document, inner, findings);
            }
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let names: Vec<&str> = unexpected.iter().map(String::as_str).collect();
            let field = names.first().map_or(path.clone(), |name| path.key(name));
            let known = known_fields(schema, &error.schema_path().to_string());
            let message = match known.is_empty() {
                true => format!("unknown field {}", quoted(&names)),
                false => format!(
                    "unknown field {}; expected one of {}",
                    quoted(&names),
                    known.join(", ")
                ),
            };
            findings.push(
                Finding::error(
                    field,
                    message,
                    "check the spelling against docs/plan.md (field names are camelCase)",
                )
                .at_key(),
            );
        }
        _ => {
            // What the field accepts, in the schema's words when it has them.
            let allowed = schema_node(schema, &error.schema_path().to_string())
                .and_then(|node| node.get("description"))
                .and_then(Value::as_str)
                .map(|d| d.trim_end_matches('.'))
                .map(|d| {
                    let mut chars = d.chars();
                    let first = chars.next().map(|c| c.to_lowercase().to_string());
                    format!("; expected {}{}", first.unwrap_or_default(), chars.as_str())
                })
                .unwrap_or_default();
            findings.push(Finding::error(
                path,
                format!("{error}{allowed}"),
                "the plan's shape is described in docs/plan.md and generator/plan.schema.json",
            ));
        }
    }
}

/// Whether `error` only says the value is not `null` (the other branch of an
/// optional field).
fn is_null_branch(error: &jsonschema::ValidationError<'_>) -> bool {
    matches!(
        error.kind(),
        jsonschema::error::ValidationErrorKind::Type { .. }
    ) && error.to_string().ends_with("is not of type \"null\"")
}

/// The schema object holding the keyword at `keyword_path` (e.g. `.../pattern`),
/// following `$ref`s through the schema's `$defs`.
fn schema_node<'s>(schema: &'s Value, keyword_path: &str) -> Option<&'s Value> {
    let mut node = Some(schema);
    let segments: Vec<String> = keyword_path
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let parent = segments.len().saturating_sub(1);
    for segment in segments.iter().take(parent) {
        node = match (node, segment.as_str()) {
            (Some(current), "$ref") => current
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|target| target.strip_prefix('#'))
                .and_then(|pointer| schema.pointer(pointer)),
            (Some(Value::Array(items)), index) => {
                index.parse::<usize>().ok().and_then(|i| items.get(i))
            }
            (Some(current), key) => current.get(key),
            (None, _) => None,
        };
    }
    node
}

/// The fields the object schema at `keyword_path` (ending in `/additionalProperties`)
/// allows, following `$ref`s through the schema's `$defs`.
fn known_fields(schema: &Value, keyword_path: &str) -> Vec<String> {
    schema_node(schema, keyword_path)
        .and_then(|n| n.get("properties"))
        .and_then(Value::as_object)
        .map(|properties| properties.keys().cloned().collect())
        .unwrap_or_default()
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A JSON pointer (`/clusters/1/podCidrs/0`) as a field path
/// (`clusters[1].podCidrs[0]`), deciding index or key by walking the document.
fn field_path(document: &Value, pointer: &str) -> FieldPath {
    let mut path = FieldPath::root();
    let mut node = Some(document);
    for raw in pointer.split('/').skip(1) {
        let segment = raw.replace("~1", "/").replace("~0", "~");
        match node {
            Some(Value::Array(items)) => match segment.parse::<usize>() {
                Ok(index) => {
                    path = path.index(index);
                    node = items.get(index);
                }
                Err(_) => {
                    path = path.key(&segment);
                    node = None;
                }
            },
            Some(Value::Object(map)) => {
                node = map.get(&segment);
                path = path.key(&segment);
            }
            _ => {
                path = path.key(&segment);
                node = None;
            }
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_become_field_paths() {
        let doc: Value =
            serde_json::json!({"clusters": [{"podCidrs": ["x"]}], "m": {"cn-hangzhou": [1]}});
        assert_eq!(
            field_path(&doc, "/clusters/0/podCidrs/0").as_str(),
            "clusters[0].podCidrs[0]"
        );
        assert_eq!(
            field_path(&doc, "/m/cn-hangzhou/0").as_str(),
            "m[\"cn-hangzhou\"][0]"
        );
        assert_eq!(field_path(&doc, "").as_str(), "");
    }
}
