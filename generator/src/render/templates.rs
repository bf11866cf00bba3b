//! The embedded templates: one minijinja environment, strict about undefined values,
//! `.yaml.j2` names so every `{{ value }}` is JSON-quoted (valid YAML, no injection).

use std::sync::OnceLock;

use minijinja::{Environment, UndefinedBehavior, Value};

use super::yaml;

/// Template id of a kind of manifest.
pub type TemplateId = &'static str;

/// DestinationRule of a service.
pub const DESTINATION_RULE: TemplateId = "destinationrule.yaml.j2";
/// VirtualService (service routes, or an ingress gateway's routes).
pub const VIRTUAL_SERVICE: TemplateId = "virtualservice.yaml.j2";
/// WasmPlugin carrying the policy.
pub const WASM_PLUGIN: TemplateId = "wasmplugin.yaml.j2";
/// TrafficExtension carrying the policy (Istio 1.30+).
pub const TRAFFIC_EXTENSION: TemplateId = "trafficextension.yaml.j2";
/// Gateway (ingress or cross-network).
pub const GATEWAY: TemplateId = "gateway.yaml.j2";
/// istiod exposure for remote clusters.
pub const ISTIOD_EXPOSURE: TemplateId = "istiod-exposure.yaml.j2";
/// Namespace with labels.
pub const NAMESPACE: TemplateId = "namespace.yaml.j2";
/// Per-cluster IstioOperator install values.
pub const ISTIO_OPERATOR: TemplateId = "istiooperator.yaml.j2";
/// East-west gateway IstioOperator.
pub const EAST_WEST_GATEWAY: TemplateId = "eastwest-gateway.yaml.j2";
/// What a managed mesh's vendor console needs for one cluster (Markdown).
pub const VENDOR_CONSOLE: TemplateId = "vendor-console.md.j2";
/// kustomization.yaml.
pub const KUSTOMIZATION: TemplateId = "kustomization.yaml.j2";
/// `geolb simulate --timeline`'s plot (SVG: values are XML-escaped).
pub const TIMELINE_SVG: TemplateId = "timeline.svg.j2";

const SOURCES: &[(TemplateId, &str)] = &[
    (
        "header.yaml.j2",
        include_str!("../../templates/header.yaml.j2"),
    ),
    (
        DESTINATION_RULE,
        include_str!("../../templates/destinationrule.yaml.j2"),
    ),
    (
        VIRTUAL_SERVICE,
        include_str!("../../templates/virtualservice.yaml.j2"),
    ),
    (
        WASM_PLUGIN,
        include_str!("../../templates/wasmplugin.yaml.j2"),
    ),
    (
        TRAFFIC_EXTENSION,
        include_str!("../../templates/trafficextension.yaml.j2"),
    ),
    (GATEWAY, include_str!("../../templates/gateway.yaml.j2")),
    (
        ISTIOD_EXPOSURE,
        include_str!("../../templates/istiod-exposure.yaml.j2"),
    ),
    (NAMESPACE, include_str!("../../templates/namespace.yaml.j2")),
    (
        ISTIO_OPERATOR,
        include_str!("../../templates/istiooperator.yaml.j2"),
    ),
    (
        EAST_WEST_GATEWAY,
        include_str!("../../templates/eastwest-gateway.yaml.j2"),
    ),
    (
        VENDOR_CONSOLE,
        include_str!("../../templates/vendor-console.md.j2"),
    ),
    (
        KUSTOMIZATION,
        include_str!("../../templates/kustomization.yaml.j2"),
    ),
    (
        TIMELINE_SVG,
        include_str!("../../templates/timeline.svg.j2"),
    ),
];

/// The environment with every template loaded, built once per process: compiling the
/// templates costs more than rendering a small plan with them.
pub fn environment() -> Result<&'static Environment<'static>, minijinja::Error> {
    static LOADED: OnceLock<Environment<'static>> = OnceLock::new();
    if let Some(env) = LOADED.get() {
        return Ok(env);
    }
    let env = load()?;
    Ok(LOADED.get_or_init(|| env))
}

/// A new environment with every template loaded.
fn load() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.add_filter("yaml", yaml_filter);
    env.set_auto_escape_callback(|name| match name.strip_suffix(".svg.j2") {
        Some(_) => minijinja::AutoEscape::Html,
        None => minijinja::default_auto_escape_callback(name),
    });
    for (id, text) in SOURCES {
        env.add_template(id, text)?;
    }
    Ok(env)
}

/// `{{ value | yaml(indent) }}`: a nested value as block YAML (see [`yaml::block`]).
fn yaml_filter(value: Value, indent: usize) -> Result<Value, minijinja::Error> {
    let json = serde_json::to_value(&value).map_err(|e| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("not serializable: {e}"),
        )
    })?;
    Ok(Value::from_safe_string(yaml::block(&json, indent)))
}
