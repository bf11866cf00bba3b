//! WasmPlugins (and TrafficExtensions) to ECDS-delivered HTTP filters, as istiod and
//! istio-agent do it (pilot/pkg/model/extensions.go, pilot/pkg/networking/core/
//! extension/extensionfilter.go, pkg/wasm/convert.go; reference-istio-envoy.md C.1-C.2).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::load::Loaded;
use super::objects::{Metadata, TrafficSelector, WorkloadSelector};
use super::{Environment, Proxy, TranslateError};

/// Istio's root namespace: a WasmPlugin there applies mesh-wide.
pub const ROOT_NAMESPACE: &str = "istio-system";
pub const WASM_TYPE_URL: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
/// istio-agent may answer an ECDS request with an RBAC filter (allow-all when the
/// module cannot be fetched and the plugin fails open), so istiod lists both types.
pub const RBAC_TYPE_URL: &str = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC";
/// The directory (relative to the Envoy run directory) holding the ECDS files.
pub const ECDS_DIR: &str = "ecds";

/// A WasmPlugin or TrafficExtension, reduced to what the filter needs.
struct Extension<'a, T> {
    loaded: &'a Loaded<T>,
    metadata: &'a Metadata,
    /// Prefix of the wasm fields' paths (`spec` or `spec.wasm`).
    wasm_path: &'static str,
    selector: Option<&'a WorkloadSelector>,
    matches: &'a [TrafficSelector],
    phase: Option<&'a str>,
    priority: i32,
    url: &'a str,
    sha256: Option<&'a str>,
    plugin_name: &'a str,
    fail_strategy: Option<&'a str>,
    plugin_type: Option<&'a str>,
    image_pull_policy: Option<&'a str>,
    plugin_config: Option<&'a serde_json::Map<String, Value>>,
}

/// One wasm filter of the proxy: its HCM entry and its ECDS file.
#[derive(Clone, Debug, PartialEq)]
pub struct WasmFilterConfig {
    /// ECDS resource and HTTP filter name:
    /// `extensions.istio.io/trafficextension/<ns>.<name>` (Istio 1.30).
    pub resource_name: String,
    /// File name relative to the run directory (`ecds/<ns>.<name>.json`).
    pub ecds_file: String,
    /// The `TypedExtensionConfig.typed_config` (an `envoy.extensions.filters.http.wasm.v3.Wasm`).
    pub typed_config: Value,
}

impl WasmFilterConfig {
    /// The HTTP filter entry of the connection manager: config discovery from the
    /// watched ECDS file (istiod uses ADS; the file stands in for it).
    pub fn http_filter(&self) -> Value {
        json!({
            "name": self.resource_name,
            "config_discovery": {
                "config_source": {
                    "resource_api_version": "V3",
                    "path_config_source": {
                        "path": self.ecds_file,
                        "watched_directory": { "path": ECDS_DIR },
                    },
                },
                "type_urls": [WASM_TYPE_URL, RBAC_TYPE_URL],
            },
        })
    }

    /// The same filter configured inline (for `envoy --mode validate`, which does not
    /// fetch ECDS).
    pub fn inline_http_filter(&self) -> Value {
        json!({ "name": self.resource_name, "typed_config": self.typed_config })
    }

    /// The ECDS file content (a DiscoveryResponse) at `version`.
    pub fn ecds_response(&self, version: u64) -> Value {
        json!({
            "version_info": version.to_string(),
            "resources": [{
                "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
                "name": self.resource_name,
                "typed_config": self.typed_config,
            }],
        })
    }
}

/// Execution order within a filter chain: AUTHN, AUTHZ, STATS plugins before Istio's
/// filters of that kind, unspecified phase last before the router.
fn phase_rank(phase: Option<&str>) -> Option<u8> {
    Some(match phase.unwrap_or("UNSPECIFIED_PHASE") {
        "AUTHN" => 0,
        "AUTHZ" => 1,
        "STATS" => 2,
        "UNSPECIFIED_PHASE" | "UNSPECIFIED" => 3,
        _ => return None,
    })
}

/// Whether an extension applies to this proxy: same namespace (no selector = every
/// workload there) or the root namespace (mesh-wide), the selector's labels matching
/// the pod labels; and a match mode that includes client traffic (outbound sidecar
/// listeners and gateways): CLIENT, CLIENT_AND_SERVER, UNDEFINED, or no `match`.
fn applies<T>(ext: &Extension<'_, T>, proxy: &Proxy) -> Result<bool, TranslateError> {
    let ns = ext.metadata.namespace();
    if ns != proxy.namespace && ns != ROOT_NAMESPACE {
        return Ok(false);
    }
    if let Some(sel) = ext.selector
        && !sel
            .match_labels
            .iter()
            .all(|(k, v)| proxy.labels.get(k) == Some(v))
    {
        return Ok(false);
    }
    if ext.matches.is_empty() {
        return Ok(true);
    }
    let mut client = false;
    for (i, m) in ext.matches.iter().enumerate() {
        match m.mode.as_str() {
            "CLIENT" | "CLIENT_AND_SERVER" | "UNDEFINED" => client = true,
            "SERVER" => {}
            other => {
                return Err(ext.loaded.error(
                    &format!("spec.match[{i}].mode"),
                    format!("unknown mode `{other}`"),
                ));
            }
        }
    }
    Ok(client)
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `Wasm` filter config istiod builds (`PluginConfig{name: <ns>.<name>, root_id:
/// pluginName, configuration: StringValue(JSON of pluginConfig), vm_config{runtime v8,
/// code}, failure_policy}`, vm_id unset) with the code rewritten to the local file as
/// istio-agent does after fetching the module and checking the pin.
fn filter_config<T>(
    ext: &Extension<'_, T>,
    env: &Environment,
) -> Result<WasmFilterConfig, TranslateError> {
    let at = |field: &str| format!("{}.{field}", ext.wasm_path);
    match ext.plugin_type.unwrap_or("HTTP") {
        "HTTP" | "UNSPECIFIED_PLUGIN_TYPE" => {}
        other => {
            return Err(ext.loaded.error(
                &at("type"),
                format!("plugin type `{other}` is not translated (geolb is an HTTP filter)"),
            ));
        }
    }
    if let Some(p) = ext.image_pull_policy
        && !matches!(p, "IfNotPresent" | "Always" | "UNSPECIFIED_POLICY")
    {
        return Err(ext
            .loaded
            .error(&at("imagePullPolicy"), format!("unknown policy `{p}`")));
    }
    let failure_policy = match ext.fail_strategy.unwrap_or("FAIL_CLOSE") {
        "FAIL_CLOSE" => "FAIL_CLOSED",
        "FAIL_OPEN" => "FAIL_OPEN",
        "FAIL_RELOAD" => "FAIL_RELOAD",
        other => {
            return Err(ext
                .loaded
                .error(&at("failStrategy"), format!("unknown strategy `{other}`")));
        }
    };
    let local = if ext.url.starts_with("oci://") {
        pulled_module(ext, env)?
    } else if ext.url.starts_with("file://") {
        file_module(ext, env)?
    } else {
        return Err(ext.loaded.error(
            &at("url"),
            format!(
                "`{}`: only oci:// and file:// modules are translated (the test machine has no web server)",
                ext.url
            ),
        ));
    };
    let config_json = match ext.plugin_config {
        Some(map) => serde_json::to_string(map).unwrap_or_default(),
        None => String::new(),
    };
    let qualified = format!("{}.{}", ext.metadata.namespace(), ext.metadata.name);
    let typed_config = json!({
        "@type": WASM_TYPE_URL,
        "config": {
            "name": qualified,
            "root_id": ext.plugin_name,
            "vm_config": {
                "runtime": "envoy.wasm.runtime.v8",
                "code": { "local": { "filename": local.to_string_lossy() } },
            },
            "configuration": {
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": config_json,
            },
            "failure_policy": failure_policy,
        },
    });
    Ok(WasmFilterConfig {
        resource_name: format!("extensions.istio.io/trafficextension/{qualified}"),
        ecds_file: format!("{ECDS_DIR}/{qualified}.json"),
        typed_config,
    })
}

/// A `file://` module: its file, checked against the pin like a download.
fn file_module<T>(ext: &Extension<'_, T>, env: &Environment) -> Result<PathBuf, TranslateError> {
    let at = |field: &str| format!("{}.{field}", ext.wasm_path);
    let local = env.wasm_files.get(ext.url).ok_or_else(|| {
        ext.loaded.error(
            &at("url"),
            format!(
                "`{}` is not mapped to a module on this machine (Environment::wasm_files)",
                ext.url
            ),
        )
    })?;
    let bytes = std::fs::read(local).map_err(|e| {
        ext.loaded.error(
            &at("url"),
            format!("{} (for `{}`): {e}", local.display(), ext.url),
        )
    })?;
    if let Some(want) = ext.sha256 {
        let have = sha256_hex(&bytes);
        if !want.eq_ignore_ascii_case(&have) {
            return Err(ext.loaded.error(
                &at("sha256"),
                format!(
                    "the manifest pins {want}, but {} has sha256 {have} (istio-agent would refuse the module)",
                    local.display()
                ),
            ));
        }
    }
    Ok(local.clone())
}

/// An `oci://` module as istio-agent pulls it (pkg/wasm/cache.go, imagefetcher.go): the
/// pin is compared with the image's manifest digest, not the module's sha256, then
/// `plugin.wasm` is extracted. Envoy loads the mapped module file, which must hold it.
fn pulled_module<T>(ext: &Extension<'_, T>, env: &Environment) -> Result<PathBuf, TranslateError> {
    let at = |field: &str| format!("{}.{field}", ext.wasm_path);
    let image = env.wasm_images.get(ext.url).ok_or_else(|| {
        ext.loaded.error(
            &at("url"),
            format!(
                "`{}` is not mapped to an image on this machine (Environment::wasm_images)",
                ext.url
            ),
        )
    })?;
    let pulled = geolb_image::read_layout(&image.layout, None).map_err(|e| {
        ext.loaded.error(
            &at("url"),
            format!(
                "the image for `{}` (layout {}): {e}; run scripts/build-wasm.sh",
                ext.url,
                image.layout.display()
            ),
        )
    })?;
    if let Some(want) = ext.sha256
        && !want.eq_ignore_ascii_case(pulled.manifest_digest_hex())
    {
        return Err(ext.loaded.error(
            &at("sha256"),
            format!(
                "the manifest pins {want}, but the image for `{}` (layout {}) has manifest digest {}; istio-agent compares an oci:// pin with the manifest digest and would refuse the image (after a module change: scripts/repin.sh)",
                ext.url,
                image.layout.display(),
                pulled.manifest_digest
            ),
        ));
    }
    let module = std::fs::read(&image.module).map_err(|e| {
        ext.loaded.error(
            &at("url"),
            format!("{} (for `{}`): {e}", image.module.display(), ext.url),
        )
    })?;
    if module != pulled.module {
        return Err(ext.loaded.error(
            &at("url"),
            format!(
                "the plugin.wasm of the image for `{}` (layout {}, sha256 {}) is not {} (sha256 {}): run scripts/build-wasm.sh",
                ext.url,
                image.layout.display(),
                sha256_hex(&pulled.module),
                image.module.display(),
                sha256_hex(&module)
            ),
        ));
    }
    Ok(image.module.clone())
}

/// The wasm filters that apply to `proxy`'s client-side chains, in execution order
/// (phase, then priority descending, then namespace/name).
pub fn filters_for(
    manifests: &super::ClusterManifests,
    proxy: &Proxy,
    env: &Environment,
) -> Result<Vec<WasmFilterConfig>, TranslateError> {
    let mut ordered: BTreeMap<(u8, i64, String, String), WasmFilterConfig> = BTreeMap::new();
    for p in &manifests.wasm_plugins {
        let s = &p.value.spec;
        let ext = Extension {
            loaded: p,
            metadata: &p.value.metadata,
            wasm_path: "spec",
            selector: s.selector.as_ref(),
            matches: &s.matches,
            phase: s.phase.as_deref(),
            priority: s.priority.unwrap_or(0),
            url: &s.url,
            sha256: s.sha256.as_deref(),
            plugin_name: &s.plugin_name,
            fail_strategy: s.fail_strategy.as_deref(),
            plugin_type: s.plugin_type.as_deref(),
            image_pull_policy: s.image_pull_policy.as_deref(),
            plugin_config: s.plugin_config.as_ref(),
        };
        insert(&mut ordered, &ext, proxy, env)?;
    }
    for t in &manifests.traffic_extensions {
        let s = &t.value.spec;
        let ext = Extension {
            loaded: t,
            metadata: &t.value.metadata,
            wasm_path: "spec.wasm",
            selector: s.selector.as_ref(),
            matches: &s.matches,
            phase: s.phase.as_deref(),
            priority: s.priority.unwrap_or(0),
            url: &s.wasm.url,
            sha256: s.wasm.sha256.as_deref(),
            plugin_name: &s.wasm.plugin_name,
            fail_strategy: s.wasm.fail_strategy.as_deref(),
            plugin_type: s.wasm.plugin_type.as_deref(),
            image_pull_policy: s.wasm.image_pull_policy.as_deref(),
            plugin_config: s.wasm.plugin_config.as_ref(),
        };
        insert(&mut ordered, &ext, proxy, env)?;
    }
    Ok(ordered.into_values().collect())
}

fn insert<T>(
    ordered: &mut BTreeMap<(u8, i64, String, String), WasmFilterConfig>,
    ext: &Extension<'_, T>,
    proxy: &Proxy,
    env: &Environment,
) -> Result<(), TranslateError> {
    let rank = phase_rank(ext.phase).ok_or_else(|| {
        ext.loaded.error(
            "spec.phase",
            format!("unknown phase `{}`", ext.phase.unwrap_or_default()),
        )
    })?;
    if !applies(ext, proxy)? {
        return Ok(());
    }
    let config = filter_config(ext, env)?;
    ordered.insert(
        (
            rank,
            -i64::from(ext.priority),
            ext.metadata.namespace().to_string(),
            ext.metadata.name.clone(),
        ),
        config,
    );
    Ok(())
}
